"""``report``, ``ab``, ``combine`` and ``compare``: saved reports re-rendered, joined and
gated (no new measurement, except ``ab``, which runs both revisions)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..options import add_options, argparse_type
from .common import PROG, UsageError, load, print_wrapped, terminal_width


def cmd_report(args: argparse.Namespace) -> int:
    """Re-render a saved JSON report for another region, month or PUE (no new measurement)."""
    report = load(args.file)
    try:
        return _render(args, report)
    except (KeyError, TypeError, AttributeError, IndexError) as exc:  # a block's shape
        blocks = ", ".join(sorted(k for k in ("sci", "profile", "defer") if k in report.extra))
        raise UsageError(
            f"{args.file}: cannot re-render: a malformed report "
            f"({type(exc).__name__}: {exc}){f'; its blocks: {blocks}' if blocks else ''}"
        ) from None


def _render(args: argparse.Namespace, report: Any) -> int:
    """The re-rendered report as JSON, markdown or text."""
    import json

    from ..reporting.rerender import rerender

    out = rerender(
        report,
        region=args.region,
        month=args.month,
        pue=args.pue,
        intensity_file=args.intensity_file,
    )
    if args.json:
        print(json.dumps(out.to_dict(), indent=2, ensure_ascii=False, allow_nan=False))
        return 0
    if args.markdown:
        from ..reporting.markdown import render_markdown

        print(render_markdown(out), end="")
        return 0
    from ..carbon.equivalents import format_equivalents
    from ..reporting.terminal import render_summary

    session = out.session
    month = f" {session.setting('month')}" if session.setting("month") else ""
    where = "?" if session.intensity is None else session.intensity.region
    g = "?" if session.intensity is None else format(session.intensity.g_per_kwh, "g")
    width = terminal_width()
    print_wrapped(
        f"{args.file}: region {where}{month} {g} g CO2e/kWh, "
        f"PUE {session.setting('pue'):g} (energies as measured; emissions recomputed)",
        width,
    )
    whatif = tuple(dict.fromkeys(w for t in out.tests for r in t.results for w in r.whatif_co2e_kg))
    for line in render_summary(
        out.tests, budget_mode=session.setting("budget_mode", "fail"), whatif=whatif, width=width
    ):
        print(line)
    print_wrapped("total " + format_equivalents(out.totals.co2e_kg), width)
    for line in block_lines(out.extra):
        print_wrapped(line, width)
    return 0


def block_lines(extra: dict[str, Any]) -> list[str]:
    """The SCI lines (every measurement) and the profile's top entries of a report."""
    from ..reporting.blocks import profile_of
    from ..reporting.profile import TOP, top_lines
    from ..reporting.sci import block_lines as sci_lines

    lines = sci_lines(extra["sci"], None) if "sci" in extra else []
    if "profile" in extra:
        lines += top_lines(profile_of(extra["profile"]), TOP)
    return lines


def cmd_ab(args: argparse.Namespace) -> int:
    """The paired A/B gate: REV and the working tree run interleaved (reporting.ab)."""
    from ..reporting.ab import ABError, run_ab

    pytest_args = list(args.pytest_args)
    if pytest_args[:1] == ["--"]:
        pytest_args = pytest_args[1:]
    try:
        return run_ab(
            args.against,
            pytest_args,
            runs=args.runs,
            max_runs=args.max_runs,
            max_time_s=args.max_time,
            fail=args.fail,
        )
    except ABError as exc:
        raise UsageError(str(exc)) from None


def cmd_combine(args: argparse.Namespace) -> int:
    """Join the reports of a sharded run or a cluster job into one report (no new measurement)."""
    from ..reporting.combine import combine, load_parts, summary
    from ..reporting.storage import write_atomic

    try:
        parts, warned = load_parts(args.inputs)
        report = combine(parts, allow_mixed=args.allow_mixed)
    except ValueError as exc:  # CombineError, or a bad report: one line
        raise UsageError(" ".join(str(exc).split())) from None
    for line in warned:
        print(f"{PROG}: warning: {line}", file=sys.stderr)
    write_atomic(args.output, report.to_dict())
    for line in summary(report):
        print(line)
    print(f"wrote {args.output}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """The in-session --co2-compare as a command: exit 1 on a regression (the final CI job)."""
    from ..constants import STORAGE_DIR
    from ..reporting.baseline import compare, render_comparison
    from ..reporting.storage import load_baseline, resolve_baseline

    report = load(args.file)
    try:
        path = resolve_baseline(args.baseline, args.storage_dir or STORAGE_DIR)
        baseline = load_baseline(path)
    except ValueError as exc:
        raise UsageError(" ".join(str(exc).split())) from None
    c = compare(path, baseline, report.tests, args.fail or (), strict=args.strict)
    print(f"co2 compared with {c.baseline} (Δ: change over the baseline)")
    for line in render_comparison(c):
        print(line)
    for line in c.inconclusive:
        what = "fails (--strict)" if args.strict else "warning"
        print(f"co2 inconclusive ({what}): {line}")
    for line in c.failures:
        print("co2 regression: " + line)
    return 1 if c.failures else 0


def add_parsers(sub: Any) -> None:
    """``report`` and ``ab``, then ``combine`` and ``compare``."""
    p = sub.add_parser(
        "report", help="re-render a saved JSON report for another region, month or PUE"
    )
    p.add_argument(
        "file", metavar="REPORT.json", help="a report written by --co2-json or --co2-save"
    )
    add_options(
        p.add_argument,
        names=("region", "month", "pue", "intensity_file"),
        default_help={"region": "the region each measurement used", "pue": "the report's"},
    )
    out = p.add_mutually_exclusive_group()
    out.add_argument("--markdown", action="store_true", help="print a markdown table")
    out.add_argument("--json", action="store_true", help="print the re-rendered JSON report")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "ab", help="paired A/B gate: REV and the working tree, run interleaved on this machine"
    )
    p.add_argument("--against", required=True, metavar="REV", help="the baseline revision (A)")
    p.add_argument(
        "--runs", type=int, default=4, metavar="K", help="pairs before the first decision (4)"
    )
    p.add_argument(
        "--max-runs", type=int, default=None, metavar="M", help="pairs at most (32, or K)"
    )
    p.add_argument(
        "--max-time", type=float, default=1800.0, metavar="S", help="seconds at most (1800)"
    )
    p.add_argument("--fail", default="energy:10%", metavar="energy:PCT", help="(energy:10%%)")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER, help="-- then the pytest arguments")
    p.set_defaults(func=cmd_ab)

    _add_cluster_commands(sub)


def _add_cluster_commands(sub: Any) -> None:
    """``combine`` and ``compare``: the final job of a sharded run or a cluster job."""
    from ..reporting.baseline import parse_fail_specs

    p = sub.add_parser(
        "combine", help="join the reports of CI shards or cluster tasks into one report"
    )
    p.add_argument("inputs", nargs="+", metavar="IN", help="report files or folders of them")
    p.add_argument("-o", "--output", required=True, metavar="OUT.json", help="the joined report")
    p.add_argument(
        "--allow-mixed", action="store_true", help="combine reports of different runs too"
    )
    p.set_defaults(func=cmd_combine)

    p = sub.add_parser(
        "compare", help="compare a report with a baseline; exit 1 on a regression (a CI gate)"
    )
    p.add_argument("file", metavar="CURRENT.json", help="a report (e.g. a combined one)")
    p.add_argument(
        "--baseline",
        default=None,
        metavar="NAME|PATH",
        help="a saved run's NAME (.co2/NAME.json) or a report PATH (default: the latest saved)",
    )
    p.add_argument(
        "--fail",
        type=argparse_type(parse_fail_specs, "fail"),
        metavar="FIELD:PCT%%",
        help="fail on a confident growth over this: energy:10%%, co2e:5%% (comma-separated)",
    )
    p.add_argument(
        "--strict", action="store_true", help="a comparison too noisy to judge fails too"
    )
    p.add_argument(
        "--storage-dir", default=None, metavar="DIR", help="where saved runs are (default: .co2)"
    )
    p.set_defaults(func=cmd_compare)
