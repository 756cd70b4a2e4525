"""The report blocks other hooks add (``profile``, ``defer``, ``sci``), carried through
``pytest-co2 combine`` and ``pytest-co2 report`` (pure).

Combining (each input's block as written, the inputs in order):

- ``profile``: the trees of every input side by side, each process named
  ``INPUT: PROCESS`` (``shard 2/3: gw0``, or the file's path); the total, the methods and the
  top entries recomputed over all of them; the notes of each kept once;
- ``defer``: the decisions of each input listed under ``shards`` (its path, shard and rank,
  counts and tests); ``deferred``, ``ran`` and ``tests`` are over all inputs (a test id in
  two inputs: the first input's entry in ``tests``, both under ``shards``);
- ``sci``: every input's rows, each with its ``input``, recomputed from the combined
  measurement (the same figures unless combine took a node-level device off it); the
  boundary (the embodied inputs, the market factor and the disclosure) kept once when every
  input has the same, else ``boundary`` and ``embodied`` are null and ``boundaries`` lists
  each distinct one with its inputs.

Re-rendering for another region, month or PUE: ``profile`` and ``defer`` are as measured and
decided; each ``sci`` row's E x I (and its market-based figure) is recomputed from its
measurement's new emission, its M is kept.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..carbon.sci import Sci, sci_per_unit
from .model import ReportError, Result, TestRecord
from .profile import TOP, Profile
from .sci import sci_entry

CARRIED = ("profile", "defer", "sci")  # the blocks this module combines and re-renders
_SCI_BOUNDARY = (
    "standard", "formula", "units", "year_s", "embodied", "market_g_per_kwh", "market_note",
    "boundary",
)  # fmt: skip


class Input:
    """One input of a combine: its path, its label (shard/rank or path), tests and blocks."""

    def __init__(
        self, path: str, label: str, who: Mapping[str, Any], tests: Sequence[TestRecord],
        extra: Mapping[str, Any],
    ) -> None:  # fmt: skip
        self.path, self.label, self.who = path, label, dict(who)
        self.tests, self.extra = tests, extra

    def block(self, name: str) -> Mapping[str, Any] | None:
        b = self.extra.get(name)
        return b if isinstance(b, Mapping) else None


# -- profile --------------------------------------------------------------------------------


def profile_of(block: Mapping[str, Any]) -> Profile:
    """The profile a report's ``profile`` block holds."""
    profile = Profile(notes=[str(n) for n in block.get("notes", ())])
    for process, roots in dict(block.get("processes") or {}).items():
        profile.add(str(process), roots)
    return profile


def combine_profile(inputs: Sequence[Input]) -> dict[str, Any] | None:
    with_block = [(i, b) for i in inputs if (b := i.block("profile")) is not None]
    if not with_block:
        return None
    profile = Profile()
    for i, b in with_block:
        for process, roots in dict(b.get("processes") or {}).items():
            profile.add(f"{i.label}: {process}", roots)
        profile.notes += [str(n) for n in b.get("notes", ()) if str(n) not in profile.notes]
    lacking = [i.label for i in inputs if i.block("profile") is None]
    if lacking:
        profile.notes.append(f"no profile in {', '.join(lacking)} (run without --co2-profile)")
    return profile.to_dict(TOP)


# -- defer ----------------------------------------------------------------------------------


def combine_defer(inputs: Sequence[Input]) -> dict[str, Any] | None:
    shards: list[dict[str, Any]] = []
    tests: dict[str, Any] = {}
    for i in inputs:
        b = i.block("defer")
        if b is None:
            continue
        own = dict(b.get("tests") or {})
        for nodeid, entry in own.items():
            tests.setdefault(nodeid, entry)
        shards.append(
            {"input": i.path, **i.who, "deferred": b.get("deferred"), "ran": b.get("ran"),
             "tests": own}
        )  # fmt: skip
    if not shards:
        return None
    return {
        "deferred": sum(int(s["deferred"] or 0) for s in shards),
        "ran": sum(int(s["ran"] or 0) for s in shards),
        "tests": tests,
        "shards": shards,
    }


# -- sci ------------------------------------------------------------------------------------


def _matcher(tests: Sequence[TestRecord]) -> Callable[[Mapping[str, Any]], Result | None]:
    """The result an SCI row was computed from: by test id and measurement name, in order."""
    queues: dict[tuple[str, str], deque[Result]] = {}
    for t in tests:
        for r in t.results:
            if r.measurement.units > 0:
                queues.setdefault((t.nodeid, r.measurement.name), deque()).append(r)

    def match(row: Mapping[str, Any]) -> Result | None:
        q = queues.get((str(row.get("nodeid")), str(row.get("name"))))
        return q.popleft() if q else None

    return match


def refresh_row(
    row: Mapping[str, Any], r: Result, market_g_per_kwh: float | None
) -> dict[str, Any]:
    """The SCI row recomputed from its measurement ``r`` (E, time, I, PUE), its M kept."""
    m = r.measurement
    new = sci_per_unit(
        m.energy_per_unit_j.mean, m.duration_s / m.units, pue=r.emission.pue,
        g_per_kwh=r.emission.intensity_g_per_kwh, market_g_per_kwh=market_g_per_kwh,
    )  # fmt: skip
    machine_g = float(row.get("embodied_machine_g_per_unit") or 0.0)
    gpu_g = float(row.get("embodied_gpu_g_per_unit") or 0.0)
    sci = Sci(new.energy_kwh, new.seconds, new.operational_g, machine_g, gpu_g,
              new.market_operational_g)  # fmt: skip
    out = sci_entry(str(row.get("nodeid")), r, sci)
    out["gpus"] = row.get("gpus", out["gpus"])
    return {**row, **out}


def _refreshed(
    rows: Sequence[Mapping[str, Any]], tests: Sequence[TestRecord],
    market: Callable[[Mapping[str, Any]], float | None], extra: Mapping[str, Any],
) -> list[dict[str, Any]]:  # fmt: skip
    match = _matcher(tests)
    out = []
    for row in rows:
        r = match(row)
        new = dict(row) if r is None else refresh_row(row, r, market(row))
        out.append({**new, **extra})
    return out


def combine_sci(inputs: Sequence[Input]) -> dict[str, Any] | None:
    with_block = [(i, b) for i in inputs if (b := i.block("sci")) is not None]
    if not with_block:
        return None
    rows: list[dict[str, Any]] = []
    groups: list[tuple[dict[str, Any], list[str]]] = []
    for i, b in with_block:
        rows += _refreshed(b.get("measurements") or (), i.tests, _market_of(b), {"input": i.path})
        bound = {k: b.get(k) for k in _SCI_BOUNDARY}
        for seen, paths in groups:
            if seen == bound:
                paths.append(i.path)
                break
        else:
            groups.append((bound, [i.path]))
    if len(groups) == 1:
        block = dict(groups[0][0])
    else:
        block = {k: groups[0][0][k] for k in ("standard", "formula", "units", "year_s")}
        block.update(embodied=None, market_g_per_kwh=None, market_note=None, boundary=None)
        block["boundaries"] = [{"inputs": paths, **bound} for bound, paths in groups]
    block["measurements"] = rows
    lacking = [i.path for i in inputs if i.block("sci") is None]
    if lacking:
        block["without_sci"] = lacking
    return block


def _market_of(block: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], float | None]:
    """Each row's market-based factor: the block's, or its input's boundary's."""
    by_input = {
        str(p): b.get("market_g_per_kwh")
        for b in block.get("boundaries") or () for p in b.get("inputs", ())
    }  # fmt: skip
    if not by_input:
        factor = block.get("market_g_per_kwh")
        return lambda _: factor
    return lambda row: by_input.get(str(row.get("input")))


def rerender_sci(block: Mapping[str, Any], tests: Sequence[TestRecord]) -> dict[str, Any]:
    """The ``sci`` block for the re-rendered ``tests``: each row's E x I recomputed."""
    rows = _refreshed(block.get("measurements") or (), tests, _market_of(block), {})
    return {**block, "measurements": rows}


# -- both -----------------------------------------------------------------------------------


def combined_blocks(inputs: Sequence[Input]) -> dict[str, Any]:
    """The carried blocks of a combined report (only those some input has)."""
    made = {}
    for name, join in (
        ("profile", combine_profile),
        ("defer", combine_defer),
        ("sci", combine_sci),
    ):
        try:
            made[name] = join(inputs)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            bad = ", ".join(i.path for i in inputs if name in i.extra)
            raise ReportError(
                f"a bad {name!r} block in {bad}: {type(exc).__name__}: {exc}"
            ) from None
    return {k: v for k, v in made.items() if v is not None}


def rerendered_blocks(extra: Mapping[str, Any], tests: Sequence[TestRecord]) -> dict[str, Any]:
    """The carried blocks of a re-rendered report (the others are for the original
    accounting and are left out)."""
    out: dict[str, Any] = {}
    for name in ("profile", "defer"):
        if isinstance(extra.get(name), Mapping):
            out[name] = extra[name]
    sci = extra.get("sci")
    if isinstance(sci, Mapping):
        out["sci"] = rerender_sci(sci, tests)
    return out
