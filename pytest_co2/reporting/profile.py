"""The energy profile of a run (``--co2-profile``): a tree per test, and its exports.

Each test is a root; its children are its phases (setup, call, teardown), theirs the
fixtures set up (by name) and the ``co2_meter.measure()`` regions, nested as they ran. A node
holds the backend's cumulative reading at its start and its end as integer microjoules
(µJ), so every energy below is exact integer arithmetic: a node's energy is its children's
plus its own ("self"), with nothing counted twice. Integer µJ because the collapsed-stack
format that FlameGraph and speedscope read takes whole numbers, and a trivial phase of a
millisecond on a one-watt estimate is about a millijoule: mJ would round it to 0.

Exports: collapsed stacks (one line per node, ``test;phase;fixture-or-region self_uJ``),
a speedscope file (one evented profile per process, its axis the cumulative energy in µJ),
the JSON block of the report and the top entries by their own energy.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..fmt import fmt_sig
from ..frozen import Frozen, record

UNIT = "uJ"  # integer microjoules, in every export
TOP = 5  # the entries in the summary and the report's ``top``
KINDS = ("test", "phase", "fixture", "region")
SPEEDSCOPE_SCHEMA = "https://www.speedscope.app/file-format-schema.json"
BASIS = (
    "cumulative backend readings (idle power included) at the start and end of each test, "
    "phase, fixture setup and measure() region, as integer microjoules; a node's energy_uj "
    "is its children's plus its self_uj"
)


@dataclass
class Node:
    """One span of a test: its name, kind, readings (µJ) and children, in the order they ran."""

    name: str
    kind: str  # one of KINDS
    start_uj: int
    method: str  # how the energy was obtained: the backend's label (counter, estimated, ...)
    end_uj: int | None = None  # None while it runs
    duration_s: float = 0.0
    scope: str | None = None  # a fixture's scope
    children: list[Node] = field(default_factory=list)

    @property
    def energy_uj(self) -> int:
        return (self.start_uj if self.end_uj is None else self.end_uj) - self.start_uj

    @property
    def self_uj(self) -> int:
        return self.energy_uj - sum(c.energy_uj for c in self.children)

    def frame(self) -> str:
        """Its frame in a stack: a region as ``[name]`` (as in the summary), others by name;
        ``;`` (the stack separator) and control characters are replaced."""
        text = f"[{self.name}]" if self.kind == "region" else self.name
        if text.isprintable() and ";" not in text:
            return text
        return "".join(c if c.isprintable() else " " for c in text.replace(";", ","))

    def walk(self, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Node]]:
        """Every node below and including this one, depth first, with its stack of frames."""
        here = (*path, self.frame())
        yield here, self
        for child in self.children:
            yield from child.walk(here)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "energy_uj": self.energy_uj,
            "self_uj": self.self_uj,
            "start_uj": self.start_uj,
            "duration_s": self.duration_s,
            "method": self.method,
        }
        if self.scope is not None:
            d["scope"] = self.scope
        d["children"] = [c.to_dict() for c in self.children]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Node:
        start = int(d["start_uj"])
        return cls(
            name=str(d["name"]),
            kind=str(d["kind"]),
            start_uj=start,
            method=str(d["method"]),
            end_uj=start + int(d["energy_uj"]),
            duration_s=float(d["duration_s"]),
            scope=d.get("scope"),
            children=[cls.from_dict(c) for c in d.get("children", ())],
        )


@record
class Entry(Frozen):
    """A node ranked by its own energy, with its stack of frames."""

    path: tuple[str, ...]
    node: Node

    def to_dict(self) -> dict[str, Any]:
        n = self.node
        return {
            "path": list(self.path),
            "kind": n.kind,
            "self_uj": n.self_uj,
            "energy_uj": n.energy_uj,
            "method": n.method,
        }


@dataclass
class Profile:
    """The tests profiled by each process (``main``, or an xdist worker's id)."""

    processes: dict[str, list[Node]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def tests(self) -> list[Node]:
        return [root for roots in self.processes.values() for root in roots]

    def total_uj(self) -> int:
        return sum(root.energy_uj for root in self.tests())

    def methods(self) -> list[str]:
        return list(dict.fromkeys(n.method for root in self.tests() for _, n in root.walk()))

    def top(self, n: int = 5) -> list[Entry]:
        """The ``n`` phases, fixtures and regions that used the most energy themselves
        (their children's excluded, so that no joule is listed twice); ties in run order."""
        entries = [
            Entry(path, node)
            for root in self.tests()
            for path, node in root.walk()
            if node.kind != "test"
        ]
        return sorted(entries, key=lambda e: -e.node.self_uj)[:n]

    def collapsed(self) -> list[str]:
        """One ``frame;frame;... self_uJ`` line per node (FlameGraph's collapsed stacks; the
        lines sum to the energy of every test)."""
        return [
            f"{';'.join(path)} {node.self_uj}"
            for root in self.tests()
            for path, node in root.walk()
        ]

    def speedscope(self, name: str = "pytest-co2 energy profile") -> dict[str, Any]:
        """speedscope's file format: one evented profile per process whose axis is the
        process's cumulative energy in µJ (unit ``none``: speedscope has no energy unit)."""
        frames: list[dict[str, Any]] = []
        index: dict[tuple[str, str], int] = {}

        def frame_of(node: Node) -> int:
            key = (node.kind, node.frame())
            if key not in index:
                index[key] = len(frames)
                frames.append({"name": node.frame()})
            return index[key]

        profiles = []
        for process, roots in self.processes.items():
            events: list[dict[str, Any]] = []
            for root in roots:
                _events(root, frame_of, events)
            start = roots[0].start_uj if roots else 0
            end = max((r.start_uj + r.energy_uj for r in roots), default=start)
            methods = ", ".join(dict.fromkeys(r.method for r in roots)) or "none"
            profiles.append(
                {
                    "type": "evented",
                    "name": f"{process}: energy in µJ ({methods})",
                    "unit": "none",
                    "startValue": start,
                    "endValue": end,
                    "events": events,
                }
            )
        return {
            "$schema": SPEEDSCOPE_SCHEMA,
            "shared": {"frames": frames},
            "profiles": profiles,
            "name": name,
            "activeProfileIndex": 0,
            "exporter": "pytest-co2",
        }

    def to_dict(self, top: int = 5) -> dict[str, Any]:
        """The report's ``profile`` block."""
        return {
            "unit": UNIT,
            "basis": BASIS,
            "methods": self.methods(),
            "total_uj": self.total_uj(),
            "processes": {p: [r.to_dict() for r in roots] for p, roots in self.processes.items()},
            "top": [e.to_dict() for e in self.top(top)],
            "notes": list(self.notes),
        }

    def add(self, process: str, data: Sequence[Mapping[str, Any]]) -> None:
        """A process's roots as sent from an xdist worker (``Node.to_dict``)."""
        self.processes.setdefault(process, []).extend(Node.from_dict(d) for d in data)


def _events(node: Node, frame_of: Any, out: list[dict[str, Any]]) -> None:
    frame = frame_of(node)
    out.append({"type": "O", "frame": frame, "at": node.start_uj})
    for child in node.children:
        _events(child, frame_of, out)
    out.append({"type": "C", "frame": frame, "at": node.start_uj + node.energy_uj})


def top_lines(profile: Profile, n: int = 5) -> list[str]:
    """The summary's lines: the top ``n`` entries by their own energy, each with its share of
    all profiled energy and its method."""
    total = profile.total_uj()
    entries = profile.top(n)
    if not entries:
        return []
    count = sum(1 for root in profile.tests() for _ in root.walk()) - len(profile.tests())
    tests = len(profile.tests())
    lines = [
        f"top {len(entries)} of {count} phases, fixtures and regions by their own energy "
        f"(children excluded); {fmt_sig(total / 1e6)} J in {tests} "
        f"{'test' if tests == 1 else 'tests'} ({', '.join(profile.methods())})"
    ]
    for e in entries:
        share = f"{e.node.self_uj / total:.0%}" if total > 0 else "n/a"
        lines.append(
            f"{fmt_sig(e.node.self_uj / 1e6)} J {share} {' > '.join(e.path)} "
            f"({e.node.kind}, {e.node.method})"
        )
    return lines
