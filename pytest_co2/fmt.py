"""Number and text formatting: the one place where figures become strings.

Below every other layer (stdlib only), so that the decisions (``measure``) and the reports
(``reporting``, ``plugin``) word their figures the same way.
"""

from __future__ import annotations

import math


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
