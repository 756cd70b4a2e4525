"""The package's frozen records compare, hash and show as @dataclass(frozen=True) would."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass, field, fields

import pytest

from pytest_co2.frozen import Frozen


@dataclass(frozen=True, eq=False, repr=False)
class Point(Frozen):
    x: float
    y: float = 0.0
    tags: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Reference:  # what the stdlib generates
    x: float
    y: float = 0.0
    tags: tuple[str, ...] = field(default=())


@dataclass(frozen=True, eq=False, repr=False)
class Other(Frozen):
    x: float
    y: float = 0.0
    tags: tuple[str, ...] = field(default=())


def test_the_same_as_the_generated_methods() -> None:
    a, b, c = Point(1.0, 2.0, ("a",)), Point(1.0, 2.0, ("a",)), Point(1.0, 2.5)
    ra, rc = Reference(1.0, 2.0, ("a",)), Reference(1.0, 2.5)
    assert a == b and a != c and a.__ne__(b) is False
    assert hash(a) == hash(b) == hash(ra) and hash(c) == hash(rc)
    assert repr(a) == repr(ra).replace("Reference", "Point")
    assert repr(a) == "Point(x=1.0, y=2.0, tags=('a',))"
    assert a != Other(1.0, 2.0, ("a",))  # another class with the same fields
    assert a != (1.0, 2.0, ("a",)) and a.__eq__(ra) is NotImplemented
    assert len({a, b, c}) == 2
    with pytest.raises(FrozenInstanceError):
        a.x = 3.0  # type: ignore[misc]


def test_every_frozen_record_of_the_package_uses_it() -> None:
    """A frozen dataclass of the package that generates its own methods again is a slip."""
    import ast
    from pathlib import Path

    import pytest_co2

    root = Path(pytest_co2.__file__).parent
    slips = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef):
                continue
            for deco in node.decorator_list:
                text = ast.unparse(deco)
                if text.startswith("dataclass(") and "frozen=True" in text:
                    bases = [ast.unparse(b) for b in node.bases]
                    if "Frozen" not in bases or "eq=False" not in text:
                        slips.append(f"{path.relative_to(root)}:{node.name}")
    assert slips == []


def test_the_fields_are_looked_up_once_per_class(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_co2 import frozen

    looked_up: list[type] = []

    def counting_fields(cls: type) -> tuple[object, ...]:
        looked_up.append(cls)
        return fields(cls)  # type: ignore[arg-type]

    monkeypatch.setattr(frozen, "_NAMES", {})
    monkeypatch.setattr(frozen, "fields", counting_fields)
    a, b = Point(1.0), Point(1.0)
    assert a == b and hash(a) == hash(b) and repr(a) == "Point(x=1.0, y=0.0, tags=())"
    assert looked_up == [Point]
