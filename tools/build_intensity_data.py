"""Build pytest_co2/data/intensity_yearly.csv (and copy the other data files).

Reproducible from the reference tables in ../shared/data (beside the checkout) and carbontracker's
``carbon-intensities.csv`` (MIT, (c) 2020 Lasse F. Wolff Anthony & Benjamin Kanding;
values from Our World in Data / Ember, CC BY 4.0). Precedence when a region code
appears in several tables: the paper's Table 1 > EEA 2022 > OWID/Ember.

Usage::

    python tools/build_intensity_data.py [--shared ../shared/data]
        [--carbontracker /path/to/carbontracker/data/carbon-intensities.csv] [--out pytest_co2/data]

Without --carbontracker the installed ``carbontracker`` package's copy is used.
"""

from __future__ import annotations

import argparse
import csv
import re
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HEADER = ["region", "name", "g_co2e_per_kwh", "year", "source"]
OWID_SOURCE = (
    "Our World in Data / Ember, carbon intensity of electricity (CC BY 4.0), "
    "via carbontracker's carbon-intensities.csv (MIT); rounded to 0.01"
)
WORLD_SOURCE = (
    "IEA Electricity 2025 (emissions), world average, "
    "as carbontracker's WORLD_AVG_CARBON_INTENSITY (MIT)"
)
# Words kept lower case when proper-casing US state names.
_SMALL_WORDS = {"of", "and"}


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _num(text: str) -> str:
    """Shortest decimal text for a number rounded to 0.01 ("7", "251", "492.7")."""
    value = round(float(text), 2)
    out = f"{value:.2f}".rstrip("0").rstrip(".")
    return out if out != "-0" else "0"


def _proper(name: str) -> str:
    words = name.split()
    return " ".join(w if (i and w in _SMALL_WORDS) else w.capitalize() for i, w in enumerate(words))


def _carbontracker_paths(explicit: str | None) -> tuple[Path, Path | None]:
    if explicit:
        csv_path = Path(explicit)
        constants = csv_path.parent.parent / "constants.py"
        return csv_path, constants if constants.exists() else None
    import importlib.util

    spec = importlib.util.find_spec("carbontracker")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("carbontracker is not installed: pass --carbontracker PATH/carbon-intensities.csv")
    root = Path(next(iter(spec.submodule_search_locations)))
    return root / "data" / "carbon-intensities.csv", root / "constants.py"


def _world_row(constants: Path | None) -> dict[str, str] | None:
    """WORLD from carbontracker's sourced constant (IEA), or None when absent."""
    if constants is None:
        return None
    text = constants.read_text(encoding="utf-8")
    value = re.search(r"^WORLD_AVG_CARBON_INTENSITY\s*=\s*([0-9.]+)", text, re.M)
    year = re.search(r"^WORLD_AVG_CARBON_INTENSITY_YEAR\s*=\s*([0-9]{4})", text, re.M)
    if not (value and year):
        return None
    return {
        "region": "WORLD",
        "name": "World",
        "g_co2e_per_kwh": _num(value.group(1)),
        "year": year.group(1),
        "source": WORLD_SOURCE,
    }


def build_rows(shared: Path, ct_csv: Path, ct_constants: Path | None) -> list[dict[str, str]]:
    rows: dict[str, dict[str, str]] = {}

    # Lowest precedence first; later tables overwrite.
    for r in _read(ct_csv):
        code = r["alpha-2"].strip().upper()
        if not code:
            continue
        rows[code] = {
            "region": code,
            "name": r["Entity"].strip(),
            "g_co2e_per_kwh": _num(r["Carbon intensity of electricity (gCO2eq/kWh)"]),
            "year": r["Year"].strip(),
            "source": OWID_SOURCE,
        }
    for table in ("eea_2022_member_states.csv", "paper_table1_intensity.csv"):
        for r in _read(shared / table):
            code = r["region"].strip().upper()
            rows[code] = {
                "region": code,
                "name": r["name"].strip(),
                "g_co2e_per_kwh": _num(r["g_co2e_per_kwh"]),
                "year": r["year"].strip(),
                "source": r["source"].strip(),
            }
    for r in _read(shared / "us_states_egrid2023.csv"):
        code = r["region"].strip().upper()
        if code == "US-US":  # national eGRID figure: the paper's US value (EIA) is kept as US
            continue
        rows[code] = {
            "region": code,
            "name": _proper(r["name"].strip()),
            "g_co2e_per_kwh": _num(r["g_co2e_per_kwh"]),
            "year": r["year"].strip(),
            "source": r["source"].strip(),
        }
    world = _world_row(ct_constants)
    if world is not None:
        rows["WORLD"] = world
    else:
        print("warning: no sourced world figure found; WORLD left out", file=sys.stderr)

    def order(code: str) -> tuple[int, str]:
        return (0 if code in ("WORLD", "EU27") else 2 if code.startswith("US-") else 1, code)

    return [rows[c] for c in sorted(rows, key=order)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--shared",
        default=str(REPO.parent / "shared" / "data"),
        help="folder with the reference CSVs (shared/data beside the checkout)",
    )
    ap.add_argument("--carbontracker", default=None, help="carbontracker's carbon-intensities.csv")
    ap.add_argument("--out", default=str(REPO / "pytest_co2" / "data"))
    args = ap.parse_args(argv)

    shared, out = Path(args.shared), Path(args.out)
    ct_csv, ct_constants = _carbontracker_paths(args.carbontracker)
    out.mkdir(parents=True, exist_ok=True)

    rows = build_rows(shared, ct_csv, ct_constants)
    with (out / "intensity_yearly.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=HEADER, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    for name in ("de_monthly_intensity_2022_2023.csv", "equivalence_factors.csv"):
        shutil.copyfile(shared / name, out / name)
    print(f"wrote {len(rows)} regions to {out / 'intensity_yearly.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
