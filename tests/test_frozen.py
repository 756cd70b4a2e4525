"""The package's records are built, frozen, compared, hashed and shown as
``@dataclass(frozen=True)`` would, without the code it generates."""

from __future__ import annotations

import copy
import pickle
from dataclasses import FrozenInstanceError, asdict, dataclass, field, fields, replace
from typing import Any, ClassVar

import pytest

from pytest_co2.frozen import Frozen, record


@record
class Point(Frozen):
    x: float
    y: float = 0.0
    tags: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Reference:  # what the stdlib generates
    x: float
    y: float = 0.0
    tags: tuple[str, ...] = field(default=())


@record
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
    with pytest.raises(FrozenInstanceError, match="cannot assign to field 'x'"):
        a.x = 3.0  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError, match="cannot assign to field 'new'"):
        a.new = 3.0  # type: ignore[attr-defined]
    with pytest.raises(FrozenInstanceError, match="cannot delete field 'y'"):
        del a.y  # type: ignore[misc]
    assert a == Point(1.0, 2.0, ("a",))


def make_full() -> Any:
    """A record with every kind of field the package's records use, made when called: a
    class made at import would keep the code of an unmutated ``record`` (tools/mutation.py
    activates a mutant inside each test only)."""
    return record(type("Full", (Frozen,), full_namespace()))


def full_namespace() -> dict[str, Any]:
    """The class body of ``make_full``'s record, new at each call."""

    def __post_init__(self: Any) -> None:
        object.__setattr__(self, "total", self.a + len(self.items))

    namespace = {
        "__module__": __name__,
        "__qualname__": "Full",  # found by pickle as this module's Full (see the fixture)
        "__doc__": "Every kind of field.",
        "__annotations__": {
            "a": "int",
            "b": "str",
            "items": "list[int]",
            "seen": "dict[str, int]",
            "done": "bool",
            "total": "int",
        },
        "b": "b",
        "items": field(default_factory=list),
        "seen": field(default_factory=dict, init=False),
        "done": field(default=False, init=False),
        "total": field(init=False),
        "__post_init__": __post_init__,
    }
    return namespace


@pytest.fixture
def full(monkeypatch: pytest.MonkeyPatch) -> Any:
    cls = make_full()
    monkeypatch.setitem(globals(), "Full", cls)
    return cls


@dataclass(frozen=True)
class FullReference:
    a: int
    b: str = "b"
    items: list[int] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict, init=False)
    done: bool = field(default=False, init=False)
    total: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "total", self.a + len(self.items))


CALLS: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    ((1,), {}),
    ((1, "x"), {}),
    ((1, "x", [2, 3]), {}),
    ((), {"a": 1}),
    ((1,), {"items": [4]}),
    ((), {"items": [4], "b": "y", "a": 2}),
]
BAD_CALLS: list[tuple[tuple[Any, ...], dict[str, Any], str]] = [
    ((), {}, "missing required arguments: 'a'"),
    ((1, "x", [], 4), {}, "takes 3 positional arguments but 4 were given"),
    ((1,), {"a": 2}, "got multiple values for argument 'a'"),
    ((1, "x"), {"b": "y"}, "got multiple values for argument 'b'"),
    ((1,), {"c": 2}, "got an unexpected keyword argument 'c'"),
    ((), {"a": 1, "c": 2}, "got an unexpected keyword argument 'c'"),
    ((1,), {"done": True}, "got an unexpected keyword argument 'done'"),  # init=False
    ((), {"b": "y"}, "missing required arguments: 'a'"),
]


@pytest.mark.parametrize(("args", "kwargs"), CALLS)
def test_the_same_fields_as_the_generated_init(
    full: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    ours, theirs = full(*args, **kwargs), FullReference(*args, **kwargs)
    assert asdict(ours) == asdict(theirs)
    assert repr(ours) == repr(theirs).replace("FullReference", "Full")


@pytest.mark.parametrize(("args", "kwargs", "message"), BAD_CALLS)
def test_the_same_calls_fail(
    full: Any, args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(TypeError):
        FullReference(*args, **kwargs)
    with pytest.raises(TypeError, match=rf"^Full\.__init__\(\) {message}$"):
        full(*args, **kwargs)


def test_factories_make_a_new_value_per_instance_and_replace_copy_pickle_work(full: Any) -> None:
    one, two = full(1), full(1)
    assert one.items == [] and one.items is not two.items and one.seen is not two.seen
    moved = replace(one, a=5, b="z")
    assert (moved.a, moved.b, moved.total, moved.done) == (5, "z", 5, False)
    assert pickle.loads(pickle.dumps(moved)) == moved == copy.deepcopy(moved)
    assert copy.copy(moved) == moved
    assert [f.name for f in fields(full)] == ["a", "b", "items", "seen", "done", "total"]
    assert one.__dict__ is not two.__dict__ and vars(one) == vars(two)


def test_every_missing_argument_is_named() -> None:
    @record
    class Two(Frozen):
        """Two required fields."""

        a: int
        b: int

    with pytest.raises(
        TypeError, match=r"\.Two\.__init__\(\) missing required arguments: 'a', 'b'$"
    ):
        Two()  # type: ignore[call-arg]


def test_a_class_not_derived_from_frozen_keeps_identity_equality() -> None:
    @record
    class Loose:
        x: int = 0

    assert Loose(1) != Loose(1) and Loose(2).x == 2


def test_every_frozen_record_of_the_package_uses_it() -> None:
    """A record of the package that generates code again, or is not frozen, is a slip."""
    import ast
    from pathlib import Path

    import pytest_co2

    root = Path(pytest_co2.__file__).parent
    slips = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef):
                continue
            decorators = [ast.unparse(deco) for deco in node.decorator_list]
            bases = [ast.unparse(b) for b in node.bases]
            frozen_dataclass = any("frozen=True" in text for text in decorators)
            if frozen_dataclass or ("Frozen" in bases) != ("record" in decorators):
                slips.append(f"{path.relative_to(root)}:{node.name}")
    assert slips == ["options.py:Settings"]  # a record frozen by hand, compared by identity


def test_every_dataclass_of_the_package_has_a_docstring() -> None:
    """Without one, ``dataclass`` writes one from ``inspect.signature``: about 1 ms a class."""
    import ast
    from pathlib import Path

    import pytest_co2

    root = Path(pytest_co2.__file__).parent
    bare = [
        f"{path.relative_to(root)}:{node.name}"
        for path in root.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef)
        and any(ast.unparse(d).startswith(("record", "dataclass")) for d in node.decorator_list)
        and ast.get_docstring(node) is None
    ]
    assert bare == []


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


def _field_facts(cls: type) -> list[tuple[Any, ...]]:
    return [
        (f.name, f.type, f.default, f.default_factory, f.init, f.repr, f.hash, f.compare,
         dict(f.metadata), f.kw_only, f._field_type)  # type: ignore[attr-defined]
        for f in cls.__dataclass_fields__.values()  # type: ignore[attr-defined]
    ]  # fmt: skip


def test_the_fields_are_those_dataclass_makes(full: Any) -> None:
    """``record`` makes the fields itself: the same ``Field`` facts, class attributes,
    parameters and ``__match_args__`` as ``dataclass(init=False, eq=False, repr=False)``."""
    import dataclasses

    twin = dataclasses.dataclass(init=False, eq=False, repr=False)(
        type("Twin", (Frozen,), full_namespace())
    )
    assert _field_facts(full) == _field_facts(twin)
    assert [f.name for f in fields(full)] == ["a", "b", "items", "seen", "done", "total"]
    assert full.__match_args__ == twin.__match_args__ == ("a", "b", "items")
    assert repr(full.__dataclass_params__) == repr(twin.__dataclass_params__)
    for name in ("a", "b", "items", "seen", "done", "total"):  # defaults stay, factories go
        assert getattr(full, name, None) == getattr(twin, name, None)
    assert full.b == "b" and full.done is False and not hasattr(full, "items")

    @record
    class Sub(Point):
        """A record over a record: the base's fields first."""

        label: str = "p"
        x: float = 9.0  # a base's field redefined keeps its place

    assert [f.name for f in fields(Sub)] == ["x", "y", "tags", "label"]
    assert Sub() == Sub(9.0, 0.0, (), "p") and Sub.__match_args__ == ("x", "y", "tags", "label")


def test_what_the_fields_path_leaves_to_dataclass() -> None:
    """A ``ClassVar`` (or ``InitVar``, ``KW_ONLY``) annotation goes through ``dataclass``;
    the ordering and mutable-default errors are dataclass's own."""

    @record
    class Counted(Frozen):
        """A class variable beside a field."""

        limit: ClassVar[int] = 3
        x: int = 0

    assert [f.name for f in fields(Counted)] == ["x"] and Counted.limit == 3
    assert Counted(x=2).x == 2 and "limit" in Counted.__dataclass_fields__

    with pytest.raises(TypeError, match=r"^non-default argument 'y' follows default argument$"):

        @record
        class Late(Frozen):
            """y after a default."""

            x: int = 0
            y: int

    with pytest.raises(TypeError, match=r"^non-default argument 'z' follows default argument$"):

        @record
        class AfterHidden(Frozen):
            """A field left out of __init__ first: it does not end the check."""

            w: int = field(init=False)
            y: int = 0
            z: int  # type: ignore[misc]

    with pytest.raises(
        ValueError,
        match=r"^mutable default <class 'list'> for field x is not allowed: use default_factory$",
    ):

        @record
        class Shared(Frozen):
            """A list shared by every instance."""

            x: list[int] = []  # noqa: RUF012


def test_evaluated_annotations_take_the_same_paths() -> None:
    """Annotations as objects (a class made without postponed annotations): a plain type is
    a field made here, a ``ClassVar``, ``InitVar`` or ``KW_ONLY`` goes through ``dataclass``."""
    import dataclasses

    def made(annotations: dict[str, Any], **namespace: Any) -> Any:
        return record(
            type(
                "Made", (Frozen,), {"__doc__": "made", "__annotations__": annotations, **namespace}
            )
        )

    plain = made({"x": int, "tags": tuple[str, ...]}, tags=())
    assert [f.name for f in fields(plain)] == ["x", "tags"] and plain(1) == plain(1, ())
    counted = made({"limit": ClassVar[int], "x": int}, limit=3)
    assert [f.name for f in fields(counted)] == ["x"] and counted.limit == 3
    init_only = made({"x": int, "scale": dataclasses.InitVar[int]})
    assert [f.name for f in fields(init_only)] == ["x"]
    assert "scale" in init_only.__dataclass_fields__  # kept by dataclass as an InitVar
    keyword = made({"x": int, "_": dataclasses.KW_ONLY, "y": int})
    assert [(f.name, f.kw_only) for f in fields(keyword)] == [("x", False), ("y", True)]
    bare_classvar = made({"limit": ClassVar, "x": int}, limit=3)
    assert [f.name for f in fields(bare_classvar)] == ["x"]


def test_fields_of_several_bases_and_a_class_without_annotations() -> None:
    """Fields come from every base, the last base's first (as ``dataclass`` collects them);
    a class without annotations has none; a class's own ``__match_args__`` is kept."""

    @record
    class Left(Frozen):
        """One base."""

        a: int = 1
        shared: str = "left"

    @record
    class Right(Frozen):
        """Another base."""

        b: int = 2
        shared: str = "right"

    @record
    class Both(Left, Right):
        """Both bases' fields."""

        c: int = 3
        __match_args__ = ("c",)

    assert [f.name for f in fields(Both)] == ["b", "shared", "a", "c"]
    assert Both().shared == "left" and Both.__match_args__ == ("c",)
    empty = record(type("Empty", (Frozen,), {"__doc__": "No fields."}))
    assert fields(empty) == () and empty() == empty()


def test_only_special_annotations_go_through_dataclass(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fields are made here for plain annotations, written or evaluated; ``dataclass``
    runs only for a ``ClassVar``, ``InitVar`` or ``KW_ONLY`` one (its result is the same
    either way: what this checks is that the short path is taken)."""
    import dataclasses

    from pytest_co2 import frozen

    calls: list[str] = []

    def counting(**kwargs: Any) -> Any:
        def wrap(cls: type) -> type:
            calls.append(cls.__name__)
            return dataclasses.dataclass(**kwargs)(cls)

        return wrap

    monkeypatch.setattr(frozen, "dataclass", counting)

    def made(name: str, annotations: dict[str, Any]) -> None:
        record(type(name, (Frozen,), {"__doc__": name, "__annotations__": annotations}))

    made("Written", {"x": "int", "tags": "tuple[str, ...]"})
    made("Evaluated", {"x": int, "tags": tuple[str, ...]})
    made("WrittenClassVar", {"limit": "ClassVar[int]"})
    made("WrittenInitVar", {"scale": "InitVar[int]"})
    made("WrittenKwOnly", {"_": "KW_ONLY", "y": "int"})
    made("EvaluatedClassVar", {"limit": ClassVar[int]})
    made("BareClassVar", {"limit": ClassVar})
    made("EvaluatedInitVar", {"scale": dataclasses.InitVar[int]})
    made("EvaluatedKwOnly", {"_": dataclasses.KW_ONLY, "y": int})
    assert calls == [
        "WrittenClassVar",
        "WrittenInitVar",
        "WrittenKwOnly",
        "EvaluatedClassVar",
        "BareClassVar",
        "EvaluatedInitVar",
        "EvaluatedKwOnly",
    ]
