"""Which GPUs: the ``--co2-gpus`` value and the runtimes' visibility lists, for every vendor."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple


class _FromEnv:
    """Default of a visibility argument: read the environment when the backend opens."""

    def __repr__(self) -> str:
        return "<from the environment>"


FROM_ENV: Any = _FromEnv()


class GpuSelection(NamedTuple):
    """A parsed ``--co2-gpus`` value: ``auto``, ``all``, or an explicit list of entries."""

    mode: str  # "auto" | "all" | "list"
    entries: tuple[str, ...] = ()  # "cuda:<i>", "GPU-<uuid prefix>", "MIG-<id>"


GPU_DEVICES_HELP = (
    "auto, all, none, or a comma-separated list of CUDA indices (0, cuda:1), GPU- UUIDs "
    "or unique prefixes, MIG- ids"
)


def parse_gpu_devices(text: str) -> GpuSelection:
    """Parse a ``--co2-gpus`` value (see :data:`GPU_DEVICES_HELP`); ValueError on bad input."""
    raw = str(text).strip()
    low = raw.lower()
    if low == "auto":
        return GpuSelection("auto")
    if low == "all":
        return GpuSelection("all")
    if low == "none":
        return GpuSelection("list")
    entries: list[str] = []
    for tok in (t.strip() for t in raw.split(",")):
        t = tok.lower()
        if t.isdigit():
            entry = f"cuda:{int(t)}"
        elif t.startswith("cuda:") and t[5:].isdigit():
            entry = f"cuda:{int(t[5:])}"
        elif t.startswith(("gpu-", "mig-")) and len(t) > 4 and _uuid_chars(t[4:]):
            entry = tok[:3].upper() + tok[3:]
        else:
            raise ValueError(
                f"invalid --co2-gpus value {text!r} (entry {tok!r}): expected {GPU_DEVICES_HELP}"
            )
        if entry not in entries:
            entries.append(entry)
    return GpuSelection("list", tuple(entries))


def _uuid_chars(text: str) -> bool:
    return all(c in "0123456789abcdef-/" for c in text.lower())


def as_selection(gpus: GpuSelection | str | None) -> GpuSelection:
    """``gpus`` as a selection (None: auto); ValueError for a bad text."""
    if gpus is None:
        return GpuSelection("auto")
    return parse_gpu_devices(gpus) if isinstance(gpus, str) else gpus


def visible_list(
    spec: str | None,
    count: int,
    match_uuid: Callable[[str], list[int]],
    var: str,
    runtime: str,
) -> tuple[list[int], list[str]]:
    """Positions among ``count`` GPUs that a visibility variable's value selects, and notes.

    ``None`` (unset): all. ``""``: none. Otherwise comma-separated indices or ``GPU-`` UUIDs
    (``match_uuid`` gives the positions a UUID entry names); like the runtime, the list ends
    at its first entry that is not a GPU here (a note says so).
    """
    if spec is None:
        return list(range(count)), []
    tokens = [t.strip() for t in spec.split(",")]
    if tokens == [""]:
        return [], []
    selected: list[int] = []
    notes: list[str] = []
    for pos, tok in enumerate(tokens):
        index: int | None = None
        if tok.lower().startswith("gpu-"):
            matches = match_uuid(tok)
            index = matches[0] if len(matches) == 1 else None
        else:
            try:
                value = int(tok)
            except ValueError:
                value = -1
            index = value if 0 <= value < count else None
        if index is None:
            rest = ",".join(tokens[pos:])
            notes.append(
                f"{var}={spec!r}: {tok!r} is not a GPU here, so it and what follows ({rest}) "
                f"are ignored, as {runtime} does"
            )
            break
        if index in selected:
            notes.append(f"{var}={spec!r}: {tok!r} is listed twice; counted once")
            continue
        selected.append(index)
    return selected, notes


def by_prefix(aliases: Sequence[Sequence[str]], prefix: str) -> list[int]:
    """Positions whose UUID spellings (lower case) start with ``prefix``."""
    p = prefix.lower()
    return [i for i, names in enumerate(aliases) if any(n.startswith(p) for n in names)]
