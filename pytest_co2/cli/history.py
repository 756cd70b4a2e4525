"""``history``: every measurement's energy per unit across the saved runs, in commit order,
with the first significant change flagged (``reporting.history``); a PNG plot with
``--plot`` (``reporting.plot``, matplotlib)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .common import PROG, UsageError, print_wrapped, terminal_width


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid --last {text!r}: expected a whole number >= 1")
    return value


def _threshold(text: str) -> Any:
    from ..reporting.delta import FailSpec

    raw = text.strip().removesuffix("%")
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not (0 <= value < float("inf")):
        raise argparse.ArgumentTypeError(
            f"invalid --threshold {text!r}: expected a percentage >= 0, e.g. 10%"
        )
    return FailSpec("energy", value)


def cmd_history(args: argparse.Namespace) -> int:
    """The saved runs in commit order; per measurement its per-unit energy and changes."""
    from ..constants import STORAGE_DIR
    from ..reporting.history import history

    storage = args.storage_dir or STORAGE_DIR
    h = history(storage, args.threshold, pattern=args.pattern, last=args.last)
    for line in h.skipped:
        print(f"{PROG}: warning: skipped {line}", file=sys.stderr)
    if not h.runs:
        raise UsageError(f"no saved run in {storage}: save runs with pytest --co2-save=NAME")
    if args.pattern and not h.series:
        raise UsageError(f"no measurement of the {len(h.runs)} saved runs matches {args.pattern!r}")
    if args.plot:
        from ..reporting.plot import PlotError, plot_history

        try:
            plot_history(h, args.plot)
        except (PlotError, OSError) as exc:
            raise UsageError(" ".join(str(exc).split())) from None
    if args.json:
        print(json.dumps(h.to_dict(), indent=2, ensure_ascii=False, allow_nan=False))
        return 0
    from ..reporting.history_text import render_history

    width = terminal_width()
    for line in render_history(h, width):
        print(line)
    if args.plot:
        print_wrapped(f"wrote {args.plot}", width)
    return 0


def add_parsers(sub: Any) -> None:
    """``history``."""
    p = sub.add_parser(
        "history",
        help="each test's energy per unit over the saved runs, in commit order",
    )
    p.add_argument(
        "pattern",
        nargs="?",
        default=None,
        metavar="TEST_PATTERN",
        help="only test ids (or 'id [measurement]') containing this, or matching this glob",
    )
    p.add_argument(
        "--storage-dir", default=None, metavar="DIR", help="where saved runs are (default: .co2)"
    )
    p.add_argument("--last", type=_positive, default=None, metavar="N", help="the last N runs")
    p.add_argument(
        "--threshold",
        type=_threshold,
        default="10%",
        metavar="PCT%%",
        help="a change of energy per unit beyond this, either way, is significant (10%%), "
        "decided as --co2-compare-fail=energy:PCT%% decides",
    )
    p.add_argument("--plot", default=None, metavar="PATH.png", help="also write a PNG plot")
    p.add_argument("--json", action="store_true", help="print the history as JSON")
    p.set_defaults(func=cmd_history)
