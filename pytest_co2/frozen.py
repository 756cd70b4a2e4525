"""The value methods of the package's frozen dataclasses, written once.

Each record type is ``@dataclass(frozen=True, eq=False, repr=False)`` over :class:`Frozen`:
the dataclass makes ``__init__`` and the frozen ``__setattr__``/``__delattr__``, and this base
gives the ``__eq__``, ``__hash__`` and ``__repr__`` that ``@dataclass(frozen=True)`` would
generate: equal when of the same class with equal fields in order, hashed by the fields,
shown as ``Name(field=value, ...)``. Before Python 3.13 ``dataclass`` compiles every method it
generates on its own, at import: a frozen class costs six compilations, three of them these.
The plugin defines some thirty such classes on the way to its first measurement.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

_NAMES: dict[type, tuple[str, ...]] = {}


def _names(cls: type) -> tuple[str, ...]:
    """The dataclass fields of ``cls``, in order (looked up once per class)."""
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


class Frozen:
    """Equality, hash and repr by the dataclass fields (see the module)."""

    __slots__ = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in _names(type(self)))

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in _names(type(self)))
        return f"{type(self).__qualname__}({shown})"
