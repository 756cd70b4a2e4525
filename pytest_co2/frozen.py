"""The package's record types: frozen dataclasses whose methods are written once, here.

Each record is ``@record`` over :class:`Frozen`. ``record`` makes the class a dataclass
(``fields``, ``replace``, ``asdict`` and type checkers see one, frozen) without generating
code: before Python 3.13 ``dataclass`` compiles every method it generates on its own, at
import, six for a frozen class, and the plugin defines some thirty records on the way to its
first measurement (about 0.5 ms each). Instead:

- ``__init__`` is one function per class made from a closure over the fields: it takes the
  same arguments as the generated one (positional or keyword, defaults, ``default_factory``
  called per instance, ``init=False`` fields, ``__post_init__``) and raises ``TypeError`` for
  the same calls;
- :class:`Frozen` gives ``__setattr__``/``__delattr__`` (``FrozenInstanceError``), and the
  ``__eq__`` (same class, fields in order), ``__hash__`` and ``__repr__`` that
  ``@dataclass(frozen=True)`` would;
- the fields are made here too (:func:`_fields_of`): ``dataclass`` itself spends some 5,000
  bytecodes a class on checks the records do not need (``ClassVar``/``InitVar`` annotations
  matched by regular expression, ``KW_ONLY``, slots). The class gets the same
  ``__dataclass_fields__``, ``__dataclass_params__`` and ``__match_args__``; a class whose
  annotations the short path does not cover goes through ``dataclass``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import MISSING, Field, FrozenInstanceError, dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, get_origin

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:  # typing has it from Python 3.11; the marker only informs type checkers

    def dataclass_transform(**_: Any) -> Callable[[_T], _T]:
        return lambda decorated: decorated


_NAMES: dict[type, tuple[str, ...]] = {}
_T = TypeVar("_T")
_set_attribute = object.__setattr__


def _names(cls: type) -> tuple[str, ...]:
    """The dataclass fields of ``cls``, in order (looked up once per class)."""
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


class Frozen:
    """Immutability, equality, hash and repr by the dataclass fields (see the module)."""

    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

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


@dataclass_transform(frozen_default=True, eq_default=False, field_specifiers=(field,))
def record(cls: type[_T]) -> type[_T]:
    """Make ``cls`` a dataclass with the closure ``__init__`` of the module docstring.

    Freezing, equality, hash and repr come from :class:`Frozen`; a class not derived from it
    keeps its own (identity equality unless it defines one)."""
    if not _fields_of(cls):
        dataclass(init=False, eq=False, repr=False)(cls)
    cls.__init__ = _make_init(cls)  # type: ignore[method-assign]
    return cls


class _Params:
    """The ``__dataclass_params__`` that ``dataclass(init=False, eq=False, repr=False)``
    gives, taken once from a class without fields."""


_PARAMS = dataclass(init=False, eq=False, repr=False)(_Params).__dataclass_params__  # type: ignore[attr-defined]
_FIELD = getattr(dataclasses, "_FIELD", None)  # the marker of a field (not a ClassVar)
_MUTABLE = (list, dict, set)


def _plain(annotation: Any) -> bool:
    """Whether an annotation is surely not a ``ClassVar``, ``InitVar`` or ``KW_ONLY``."""
    if isinstance(annotation, str):  # postponed: only the text is known
        return "Var" not in annotation and "KW_ONLY" not in annotation
    special = (ClassVar, dataclasses.InitVar, dataclasses.KW_ONLY)
    return not (
        annotation in special
        or isinstance(annotation, dataclasses.InitVar)
        or get_origin(annotation) is ClassVar
    )


def _fields_of(cls: type) -> bool:
    """Make ``cls`` a dataclass as ``dataclass(init=False, eq=False, repr=False)`` would:
    its fields (a base's first), class attributes for defaults, ``__match_args__``. False,
    changing nothing, where an annotation may be a ``ClassVar``, ``InitVar`` or ``KW_ONLY``
    (``dataclass`` handles those) or this Python keeps fields otherwise."""
    # as dataclass reads them (inspect.get_annotations would import inspect); a Python that
    # keeps them elsewhere (3.14 evaluates them lazily) takes dataclass's path
    own: dict[str, Any] | None = cls.__dict__.get("__annotations__")  # noqa: RUF063
    if _FIELD is None or own is None or not all(map(_plain, own.values())):
        return False
    made: dict[str, Field[Any]] = {}
    for base in cls.__mro__[-1:0:-1]:
        made.update(base.__dict__.get("__dataclass_fields__", {}))
    for name, annotation in own.items():
        default = cls.__dict__.get(name, MISSING)
        if isinstance(default, Field):
            f = default
            if f.default is MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, f.default)
        else:
            if isinstance(default, _MUTABLE):
                raise ValueError(
                    f"mutable default {type(default)} for field {name} is not allowed: "
                    "use default_factory"
                )
            f = field(default=default)
        f.name, f.type, f._field_type = name, annotation, _FIELD  # type: ignore[attr-defined]
        if f.kw_only is MISSING:
            f.kw_only = False
        made[name] = f
    _check_order(made.values())
    cls.__dataclass_fields__ = made  # type: ignore[attr-defined]
    cls.__dataclass_params__ = _PARAMS  # type: ignore[attr-defined]
    if "__match_args__" not in cls.__dict__:
        cls.__match_args__ = tuple(f.name for f in made.values() if f.init)  # type: ignore[misc,attr-defined]
    return True


def _check_order(made: Iterable[Field[Any]]) -> None:
    """``dataclass``'s TypeError for a field without a default after one with a default."""
    seen_default = False
    for f in made:
        if not f.init:
            continue
        if f.default is not MISSING or f.default_factory is not MISSING:
            seen_default = True
        elif seen_default:
            raise TypeError(f"non-default argument {f.name!r} follows default argument")


def _make_init(cls: type) -> Callable[..., None]:
    every: tuple[Field[Any], ...] = fields(cls)
    given = [f for f in every if f.init]
    names = tuple(f.name for f in given)
    accepted = frozenset(names)
    count = len(names)
    # what fills an argument left out: a value, or a factory called per instance
    defaults = {f.name: f.default for f in given if f.default is not MISSING}
    factories = tuple(
        (f.name, f.default_factory) for f in given if f.default_factory is not MISSING
    )
    # the init=False fields that have a default: set on every instance
    unpassed: tuple[tuple[str, Any, bool], ...] = tuple(
        (f.name, f.default_factory if f.default is MISSING else f.default, f.default is MISSING)
        for f in every
        if not f.init and (f.default is not MISSING or f.default_factory is not MISSING)
    )
    post_init = getattr(cls, "__post_init__", None)
    title = f"{cls.__qualname__}.__init__()"

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if args:
            if len(args) > count:
                raise TypeError(
                    f"{title} takes {count} positional arguments but {len(args)} were given"
                )
            values = dict(zip(names, args, strict=False))  # the rest by keyword or default
            if kwargs:
                if not kwargs.keys() <= accepted or not kwargs.keys().isdisjoint(values):
                    raise TypeError(_bad_keywords(title, accepted, values, kwargs))
                values.update(kwargs)
        else:
            values = kwargs  # a new dict at every call: it becomes the instance's
            if not values.keys() <= accepted:
                raise TypeError(_bad_keywords(title, accepted, {}, kwargs))
        if len(values) < count:  # some left out (every key is a field's by now)
            values = {**defaults, **values}
            for name, factory in factories:
                if name not in values:
                    values[name] = factory()
            if len(values) < count:
                missing = [name for name in names if name not in values]
                raise TypeError(
                    f"{title} missing required arguments: {', '.join(map(repr, missing))}"
                )
        for name, value, is_factory in unpassed:
            values[name] = value() if is_factory else value
        _set_attribute(self, "__dict__", values)
        if post_init is not None:
            post_init(self)

    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    return __init__


def _bad_keywords(
    title: str, accepted: frozenset[str], given: dict[str, Any], kwargs: dict[str, Any]
) -> str:
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        return f"{title} got an unexpected keyword argument {unknown[0]!r}"
    twice = sorted(set(kwargs) & set(given))
    return f"{title} got multiple values for argument {twice[0]!r}"
