"""Command line: ``pytest-co2 convert ...``, ``pytest-co2 regions ...`` and ``pytest-co2 report ...``.

Each subcommand is one ``cmd_*`` function registered in ``build_parser()``; it receives the
parsed arguments and returns an exit code. Bad input is reported as one line,
``pytest-co2: error: ...``, with exit code 2 and no traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from .carbon.emission import DEFAULT_PUE, emission, parse_energy_kwh
from .carbon.intensity import IntensityError, list_regions, lookup
from .constants import DEFAULT_REGION
from .fmt import printable
from .options import add_options, argparse_type

if TYPE_CHECKING:
    from .reporting.json_report import Report
    from .reporting.session import SessionInfo

PROG = "pytest-co2"


class UsageError(Exception):
    """Bad input found after parsing (unknown region, malformed file): exit 2, one line."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr: ``pytest-co2: error: ...``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {' '.join(message.split())}\n")


_ENERGY = argparse_type(parse_energy_kwh, "energy")


def _format_kg(kg: float) -> str:
    if kg == 0:
        return "0"
    if kg >= 1:
        return f"{kg:,.1f}"
    return f"{kg:.3g}"


# ------------------------------------------------------------------------------ commands


def _width() -> int:
    """The terminal's width (``COLUMNS`` first), 100 when unknown."""
    import shutil

    return max(40, shutil.get_terminal_size((100, 24)).columns)


def _print_wrapped(text: str, width: int) -> None:
    from .reporting.terminal import wrap

    for line in wrap(text, width):
        print(line)


def cmd_convert(args: argparse.Namespace) -> int:
    """Convert an energy (kWh) into kg CO2e for a region (and month)."""
    from .carbon.equivalents import equivalents, format_equivalents
    from .carbon.intensity import format_g_per_kwh

    intensity = lookup(
        args.region,
        args.month,
        intensity_g_per_kwh=args.intensity,
        csv_path=args.intensity_file,
    )
    em = emission(args.energy_kwh, intensity, args.pue)
    if args.json:
        import json

        out = {
            "energy_kwh": em.energy_kwh,
            "pue": em.pue,
            "facility_energy_kwh": em.facility_energy_kwh,
            "intensity": intensity.to_dict(),
            "co2e_kg": em.co2e_kg,
            "equivalents": equivalents(em.co2e_kg),
        }
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0

    when = intensity.month_text or (str(intensity.year) if intensity.year is not None else "")
    print(
        f"{_format_kg(em.co2e_kg)} kg CO2e = {em.energy_kwh:,.6g} kWh x PUE {em.pue:g}"
        f" x {format_g_per_kwh(intensity.g_per_kwh)} g/kWh"
    )
    print(
        f"intensity: {intensity.region} ({intensity.name})"
        f"{', ' + when if when else ''}; source: {intensity.source}"
    )
    print(format_equivalents(em.co2e_kg))
    return 0


def cmd_regions(args: argparse.Namespace) -> int:
    """List the regions (and their intensity) that can be selected, optionally for one month."""
    from .carbon.intensity import format_g_per_kwh, monthly_coverage

    items = list_regions(args.month, csv_path=args.intensity_file)
    if args.month and not items:
        coverage = monthly_coverage(csv_path=args.intensity_file)
        have = "; ".join(f"{code} {months}" for code, months in coverage.items()) or "none"
        raise UsageError(f"no region has data for {args.month}: monthly data exists for {have}")
    if args.json:
        import json

        print(json.dumps([it.to_dict() for it in items], indent=2, ensure_ascii=False))
        return 0
    from tabulate import tabulate

    rows = [
        [
            it.region,
            it.name,
            format_g_per_kwh(it.g_per_kwh),
            it.month_text or ("" if it.year is None else it.year),
            it.source,
        ]
        for it in items
    ]
    headers = ["region", "name", "g/kWh", "year (month)", "source"]
    width = _width()
    fixed = [max(len(h) + 2, *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers[:4])]
    name_w = min(fixed[1], max(12, (width - fixed[0] - fixed[2] - fixed[3] - 8) // 2))
    source_w = max(16, width - fixed[0] - name_w - fixed[2] - fixed[3] - 8)
    cut = False
    for row in rows:
        for i, room in ((1, name_w), (4, source_w)):
            text = str(row[i])
            if len(text) > room:
                row[i], cut = text[: room - 1] + "…", True
    print(tabulate(rows, headers=headers, disable_numparse=True))
    if cut:
        from .reporting.terminal import wrap

        for line in wrap(f"names and sources cut to {width} columns: --json has them whole", width):
            print(line)
    return 0


def _load(path: str) -> Report:
    """A saved report, or the journal a killed run left beside it; UsageError (one line)."""
    from .reporting.storage import JOURNAL_SUFFIX, journal_path_for, load_report, read_journal

    journal = path if path.endswith(JOURNAL_SUFFIX) else journal_path_for(path)
    try:
        if path.endswith(JOURNAL_SUFFIX) or (not os.path.exists(path) and os.path.exists(journal)):
            report = read_journal(journal)  # a killed run: its finished tests
            print(
                f"{PROG}: {path} recovered from the journal {journal} of a killed run",
                file=sys.stderr,
            )
            return report
        return load_report(path)
    except ValueError as exc:  # unreadable, not JSON, another schema, a bad field: one line
        raise UsageError(" ".join(str(exc).split())) from None


def _live_intensity(session: SessionInfo, args: argparse.Namespace) -> tuple[Any, Any]:
    """A run's --co2-intensity-source value and forecast, unless --region/--month replace it."""
    it = session.intensity
    if args.region or args.month or it is None or it.provenance == "shipped":
        return None, ()
    return it, session.intensity_forecast or ()


def cmd_advise(args: argparse.Namespace) -> int:
    """Where (and in which month with data) a saved run's work would emit least."""
    import json

    from .carbon.accounting import Accounting
    from .reporting.advice import advise_run

    report = _load(args.file)
    session = report.session
    live, forecast = _live_intensity(session, args)
    accounting = Accounting(
        args.region or session.setting("region") or DEFAULT_REGION,
        args.month or session.setting("month"),
        pue=float(session.setting("pue") or DEFAULT_PUE),
        intensity_file=args.intensity_file,
        intensity=live,
        forecast=forecast,
    )
    advice = advise_run(report.tests, accounting, args.regions or ())
    if args.json:
        print(json.dumps(advice, indent=2, ensure_ascii=False, allow_nan=False))
        return 0
    width = _width()
    whole = advice["session"]
    _print_wrapped(f"session: {whole['text']}", width)
    cur = whole["current"]
    if cur["g_per_kwh"] > 0:  # Eq. 1 is linear: every candidate's figure from the current one
        from .fmt import fmt_num

        each = []
        for region in advice["candidates"]:
            g = lookup(region, None, csv_path=args.intensity_file).g_per_kwh
            each.append(f"{region} {g:g} g/kWh {fmt_num(cur['co2e_kg'] * g / cur['g_per_kwh'])} kg")
        _print_wrapped("candidates (yearly): " + ", ".join(each), width)
    same = 0
    for nodeid, a in advice["tests"].items():
        if _choice_key(a) == _choice_key(whole):
            same += 1
        else:
            _print_wrapped(f"{nodeid}: {a['text']}", width)
    if same:
        _print_wrapped(
            f"{same} of {len(advice['tests'])} tests: the same choice as the session "
            "(each test's figures: --json)",
            width,
        )
    return 0


def _choice_key(advice: Any) -> tuple[Any, ...]:
    """What an advice block chooses (region, month, start), not its figures."""
    month, start = advice.get("best_month"), advice.get("best_start")
    return (
        advice["best_region"]["region"],
        None if month is None else (month["region"], month["month"]),
        None if start is None else start.get("start"),
    )


def cmd_report(args: argparse.Namespace) -> int:
    """Re-render a saved JSON report for another region, month or PUE (no new measurement)."""
    import json

    from .reporting.rerender import rerender

    report = _load(args.file)
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
        from .reporting.markdown import render_markdown

        print(render_markdown(out), end="")
        return 0
    from .carbon.equivalents import format_equivalents
    from .reporting.terminal import render_summary

    session = out.session
    month = f" {session.setting('month')}" if session.setting("month") else ""
    where = "?" if session.intensity is None else session.intensity.region
    g = "?" if session.intensity is None else format(session.intensity.g_per_kwh, "g")
    width = _width()
    _print_wrapped(
        f"{args.file}: region {where}{month} {g} g CO2e/kWh, "
        f"PUE {session.setting('pue'):g} (energies as measured; emissions recomputed)",
        width,
    )
    whatif = tuple(dict.fromkeys(w for t in out.tests for r in t.results for w in r.whatif_co2e_kg))
    for line in render_summary(
        out.tests, budget_mode=session.setting("budget_mode", "fail"), whatif=whatif, width=width
    ):
        print(line)
    _print_wrapped("total " + format_equivalents(out.totals.co2e_kg), width)
    return 0


def cmd_ab(args: argparse.Namespace) -> int:
    """The paired A/B gate: REV and the working tree run interleaved (reporting.ab)."""
    from .reporting.ab import ABError, run_ab

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
    from .reporting.combine import combine, load_parts, summary
    from .reporting.storage import write_atomic

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
    from .constants import STORAGE_DIR
    from .reporting.baseline import compare, render_comparison
    from .reporting.storage import load_baseline, resolve_baseline

    report = _load(args.file)
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


def _add_cluster_commands(sub: Any) -> None:
    """``combine`` and ``compare``: the final job of a sharded run or a cluster job."""
    from .reporting.baseline import parse_fail_specs

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


# -------------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; subcommands set ``func`` to their ``cmd_*`` function. The shared
    arguments (region, month, intensity, intensity file, PUE, regions) are the plugin's
    options without the ``co2-`` prefix (``pytest_co2.options``), parsed the same way."""
    parser = _Parser(
        prog=PROG,
        description="Energy to CO2e, the paper's Eq. 1: kWh x PUE x carbon intensity.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("convert", help="convert an energy in kWh into kg CO2e")
    p.add_argument(
        "--energy-kwh",
        type=_ENERGY,
        required=True,
        metavar="KWH",
        help="IT energy in kWh, before PUE",
    )
    add_options(
        p.add_argument,
        names=("region", "pue", "month", "intensity", "intensity_file"),
        default_help={"region": "EU27; with --intensity, 'custom'"},
    )
    p.add_argument("--json", action="store_true", help="print a JSON object")
    p.set_defaults(func=cmd_convert, pue=DEFAULT_PUE)

    p = sub.add_parser("regions", help="list regions and their carbon intensity")
    add_options(
        p.add_argument,
        names=("month", "intensity_file"),
        help={
            "month": "only regions with data for this month",
            "intensity_file": "also list the regions of this CSV",
        },
    )
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=cmd_regions)

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
        "advise", help="where and when a saved run's work would emit least (no new measurement)"
    )
    p.add_argument("file", metavar="REPORT.json", help="a report written by --co2-json")
    add_options(
        p.add_argument,
        names=("regions", "region", "month", "intensity_file"),
        help={
            "regions": "candidate regions (default: the paper's Table 1)",
            "month": "the current month (default: the report's)",
        },
        default_help={"region": "the report's"},
    )
    p.add_argument("--json", action="store_true", help="print the advice as JSON")
    p.set_defaults(func=cmd_advise)

    p = sub.add_parser(
        "ab", help="paired A/B gate: REV and the working tree, run interleaved on this machine"
    )
    p.add_argument("--against", required=True, metavar="REV", help="the baseline revision (A)")
    p.add_argument(
        "--runs", type=int, default=4, metavar="K", help="pairs before the first decision (4)"
    )
    p.add_argument(
        "--max-runs", type=int, default=None, metavar="M", help="pairs at most (16, or K)"
    )
    p.add_argument(
        "--max-time", type=float, default=1800.0, metavar="S", help="seconds at most (1800)"
    )
    p.add_argument("--fail", default="energy:10%", metavar="energy:PCT", help="(energy:10%%)")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER, help="-- then the pytest arguments")
    p.set_defaults(func=cmd_ab)

    _add_cluster_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``pytest-co2`` and ``python -m pytest_co2``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(None if argv is None else list(argv))
    out = sys.stdout
    sys.stdout = _Escaping(out)  # a report's names print escaped
    try:
        return int(args.func(args))
    except (IntensityError, UsageError) as exc:
        parser.error(printable(str(exc)))
    finally:
        sys.stdout = out


class _Escaping:
    """A text stream that escapes control characters (newline and tab kept): what a report
    holds (a test's name) never drives the terminal. JSON output is unchanged (json.dumps
    escapes them already)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return int(self._stream.write(printable(text, keep="\n\t")))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
