"""Number and text formatting: the one place where figures become strings.

Below every other layer (stdlib only), so that the decisions (``measure``) and the reports
(``reporting``, ``plugin``) word their figures the same way.
"""

from __future__ import annotations

import math
import textwrap


def fmt_num(x: float | None, sig: int = 3) -> str:
    """``sig`` significant digits, thousands separated: 1,760 / 12.3 / 0.00139; n/a for NaN."""
    if x is None or not math.isfinite(x):
        return "n/a"
    if x == 0:
        return "0"
    if abs(x) < 1e-3:
        return f"{x:.{sig}g}".replace("e-0", "e-")
    decimals = max(0, sig - 1 - math.floor(math.log10(abs(x))))
    return f"{x:,.{decimals}f}"


def fmt_pm(x: float | None, std: float | None, pm: str = "±") -> str:
    """``12.3 ± 0.45``; the value alone when the spread is unknown (one window)."""
    if std is None or not math.isfinite(std):
        return fmt_num(x)
    return f"{fmt_num(x)} {pm} {fmt_num(std, 2 if pm == '±' else 3)}"


def fmt_count(n: float) -> str:
    """``150,000`` for whole counts, two decimals otherwise."""
    return f"{int(n):,}" if float(n).is_integer() else f"{n:,.2f}"


def fmt_sig(x: float) -> str:
    """3 significant digits, thousands separated from 1,000 on: 0.0123 / 999 / 1,500; ``inf``
    and ``nan`` as Python writes them."""
    if not math.isfinite(x):
        return str(x)
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.3g}"


def fmt_pct(pct: float | None) -> str:
    """``+20.0%``, ``-3.1%``, ``new`` (None), ``+inf%``, ``-inf%``."""
    if pct is None:
        return "new"
    return f"{pct:+.1f}%"


def fmt_rel_pm(x: float | None) -> str:
    """A relative half-width as ``±2.5%`` (two significant digits below 1%: ``±0.45%``);
    ``±n/a`` when unknown."""
    if x is None or math.isnan(x):
        return "±n/a"
    if math.isinf(x):
        return "±inf%"
    return f"±{x * 100:.2g}%" if x * 100 < 1 else f"±{x * 100:.1f}%"


def plural(unit: str, n: float) -> str:
    """``iteration`` -> ``iterations`` unless ``n`` is 1 or the unit already ends in s."""
    if n == 1 or unit.endswith("s"):
        return unit
    return unit + "s"


def region_text(region: str, month: str | None) -> str:
    """``DE 2022-12`` or ``SE``."""
    return f"{region} {month}" if month else region


def shorten_middle(text: str, width: int) -> str:
    """``text`` cut in the middle to ``width`` characters with an ellipsis (never wrapped)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    keep = width - 1
    head = keep // 2
    return text[:head] + "…" + text[len(text) - (keep - head) :]


def shorten_nodeid(nodeid: str, width: int) -> str:
    """A test id cut to ``width``: the file part is shortened first, so that the test's own
    name (after ``::``) stays whole while it can."""
    if len(nodeid) <= width:
        return nodeid
    path, sep, name = nodeid.partition("::")
    room = width - len(sep) - len(name)
    if sep and room >= 8:
        return shorten_middle(path, room) + sep + name
    return shorten_middle(nodeid, width)


def _strip_notes(label: str) -> str:
    """``a [b (c)]`` -> ``a [b]``: parenthesised notes left out (the brackets stay)."""
    out, depth = [], 0
    for ch in label:
        if ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return " ".join("".join(out).split()).replace(" ]", "]")


def _common_prefix(texts: list[str]) -> str:
    first, last = min(texts), max(texts)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]


def _fit_unique(labels: list[str], width: int) -> list[str]:
    """Labels longer than ``width`` cut with an ellipsis after the test's parameters, where
    the text cut out is shared by the most other labels (so what tells a row apart stays);
    an ordinal (``#2``) tells apart what no cut can."""
    if all(len(s) <= width for s in labels):
        return labels
    keep = max(width - 1, 1)
    groups: dict[str, list[str]] = {}
    for s in labels:
        groups.setdefault(s.partition("[")[0], []).append(s)
    prefix = {t: len(_common_prefix(g)) if len(g) > 1 else 0 for t, g in groups.items()}
    scored = len(labels) <= 200  # comparing every cut with every row: small tables only
    out = []
    for s in labels:
        if len(s) <= width:
            out.append(s)
            continue
        cut_len = len(s) - keep
        shared = prefix[s.partition("[")[0]]
        if cut_len <= shared:  # inside what the rows of this test share: nothing lost
            head = shared - cut_len
            out.append(s[:head] + "…" + s[head + cut_len :])
            continue
        params_end = s.find("]") + 1  # the test's own parameters stay whole when they fit
        first = params_end if 0 < params_end <= keep - 4 else 0
        best, best_score = (first, -1) if scored else (min(shared, keep // 3), 0)
        for head in range(first, keep + 1) if scored else ():
            removed = s[head : head + cut_len]
            score = sum(removed in other for other in labels if other is not s)
            if score > best_score or (score == best_score and head > best):
                best, best_score = head, score
        out.append(s[:best] + "…" + s[best + cut_len :])
    seen: dict[str, int] = {}
    for i, short in enumerate(out):
        seen[short] = seen.get(short, 0) + 1
        if seen[short] > 1:
            tag = f" #{seen[short]}"
            out[i] = shorten_middle(labels[i], max(width - len(tag), 1)) + tag
    return out


def row_labels(
    ids: list[str], width: int, suffixes: list[str] | None = None
) -> tuple[list[str], str]:
    """Distinct labels of at most ``width`` columns for table rows named by test ids, and a
    note of what was left out of all of them ("" when nothing was).

    What every row shares goes first: the common directory, then the file when the test
    names alone tell the rows apart, then parenthesised notes (``(projected from 7 steps)``),
    then the measurement names (``suffixes``, the end of each id) while the rows stay
    distinct without them; only then are labels cut, inside what rows of the same test share
    where that suffices, and distinct."""
    if all(len(s) <= width for s in ids):
        return list(ids), ""
    labels, dropped = _drop_shared(ids)
    if any(len(s) > width for s in labels):
        plain = [_strip_notes(s) for s in labels]
        if plain != labels and len(set(plain)) == len(set(labels)):
            dropped.append("notes in parentheses")
            labels = plain
    if suffixes is not None and any(len(s) > width for s in labels):
        bare = [
            i[: len(i) - len(x)] if x and i.endswith(x) else i
            for i, x in zip(ids, suffixes, strict=True)
        ]
        if bare != ids and len(set(bare)) == len(set(ids)):
            labels, dropped = _drop_shared(bare)
            dropped.append("measurement names")
    return _fit_unique(labels, width), ", ".join(dropped)


def _drop_shared(ids: list[str]) -> tuple[list[str], list[str]]:
    """The ids without their common directory, or without their file when the test names
    alone tell them apart; and what was dropped."""
    labels = list(ids)
    dropped: list[str] = []
    paths = [s.partition("::")[0] for s in labels]
    prefix = ""
    if labels and all("::" in s for s in labels):
        first = paths[0]
        cut = first.rfind("/") + 1
        while cut > 0 and not all(p.startswith(first[:cut]) for p in paths):
            cut = first.rfind("/", 0, cut - 1) + 1
        prefix = first[:cut]
        names = [s.partition("::")[2] for s in labels]
        if len(set(names)) == len(set(labels)):
            files = sorted(set(paths))
            dropped.append(f"file {files[0]}" if len(files) == 1 else "file names")
            labels = names
        elif prefix:
            dropped.append(f"directory {prefix}")
            labels = [s[len(prefix) :] for s in labels]
    return labels, dropped


def shared_dropped_width(ids: list[str]) -> int:
    """The longest id once what every id shares is dropped (see :func:`row_labels`)."""
    return max((len(s) for s in _drop_shared(ids)[0]), default=0)


def _escape_table(keep: str) -> dict[int, str]:
    import unicodedata

    table = {}
    for code in (*range(0x20), *range(0x7F, 0xA0)):
        if chr(code) not in keep:
            table[code] = f"\\x{code:02x}"
    for code in (0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)):
        if unicodedata.category(chr(code)) == "Cf":  # direction marks and overrides
            table[code] = f"\\u{code:04x}"
    return table


_PRINTABLE: dict[str, dict[int, str]] = {}


def printable(text: str, keep: str = "") -> str:
    """``text`` with control characters (ESC, CR, BEL, ..., C1, bidi overrides) escaped as
    ``\\x1b``: what a test name or a report holds never moves the cursor or recolours a
    terminal. ``keep``: control characters left as they are (e.g. newline in a document)."""
    table = _PRINTABLE.get(keep)
    if table is None:
        table = _PRINTABLE[keep] = _escape_table(keep)
    return text.translate(table)


def wrap(text: str, width: int, indent: str = "  ") -> list[str]:
    """A long line of prose as lines of at most ``width`` columns; a word longer than that
    (a path, a node id) gets a line of its own, whole."""
    return textwrap.wrap(
        text,
        width=max(width, 40),
        subsequent_indent=indent,
        break_long_words=False,  # a path, node id or URL stays whole: it is copied
        break_on_hyphens=False,
    ) or [""]
