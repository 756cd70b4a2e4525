"""``convert``, ``regions`` and ``advise``: carbon accounting from the command line (Eq. 1 of
the paper, the shipped intensities, where and when a saved run's work would emit least)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ..carbon.emission import DEFAULT_PUE, emission, parse_energy_kwh
from ..carbon.intensity import list_regions, lookup
from ..constants import DEFAULT_REGION
from ..options import add_options, argparse_type
from .common import UsageError, load, print_wrapped, terminal_width

if TYPE_CHECKING:
    from ..reporting.session import SessionInfo

_ENERGY = argparse_type(parse_energy_kwh, "energy")


def _format_kg(kg: float) -> str:
    if kg == 0:
        return "0"
    if kg >= 1:
        return f"{kg:,.1f}"
    return f"{kg:.3g}"


def cmd_convert(args: argparse.Namespace) -> int:
    """Convert an energy (kWh) into kg CO2e for a region (and month)."""
    from ..carbon.equivalents import equivalents, format_equivalents
    from ..carbon.intensity_value import format_g_per_kwh

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
    from ..carbon.intensity import monthly_coverage
    from ..carbon.intensity_value import format_g_per_kwh

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
    width = terminal_width()
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
        from ..fmt import wrap

        for line in wrap(f"names and sources cut to {width} columns: --json has them whole", width):
            print(line)
    return 0


def _live_intensity(session: SessionInfo, args: argparse.Namespace) -> tuple[Any, Any]:
    """A run's --co2-intensity-source value and forecast, unless --region/--month replace it."""
    it = session.intensity
    if args.region or args.month or it is None or it.provenance == "shipped":
        return None, ()
    return it, session.intensity_forecast or ()


def cmd_advise(args: argparse.Namespace) -> int:
    """Where (and in which month with data) a saved run's work would emit least."""
    import json

    from ..carbon.accounting import Accounting
    from ..reporting.advice import advise_run

    report = load(args.file)
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
    width = terminal_width()
    whole = advice["session"]
    print_wrapped(f"session: {whole['text']}", width)
    cur = whole["current"]
    if cur["g_per_kwh"] > 0:  # Eq. 1 is linear: every candidate's figure from the current one
        from ..fmt import fmt_num

        each = []
        for region in advice["candidates"]:
            g = lookup(region, None, csv_path=args.intensity_file).g_per_kwh
            each.append(f"{region} {g:g} g/kWh {fmt_num(cur['co2e_kg'] * g / cur['g_per_kwh'])} kg")
        print_wrapped("candidates (yearly): " + ", ".join(each), width)
    same = 0
    for nodeid, a in advice["tests"].items():
        if _choice_key(a) == _choice_key(whole):
            same += 1
        else:
            print_wrapped(f"{nodeid}: {a['text']}", width)
    if same:
        print_wrapped(
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


def add_parsers(sub: Any) -> None:
    """``convert``, ``regions`` and ``advise``."""
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
