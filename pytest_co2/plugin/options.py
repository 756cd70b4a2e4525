"""Command-line options, ini keys and environment variables, resolved into one frozen Settings.

Every option ``--co2-foo-bar`` is also the ini key ``co2_foo_bar`` and the environment
variable ``PYTEST_CO2_FOO_BAR``. The command line wins, then the environment, then the ini.
Command-line values are checked by argparse ``type=`` parsers, so a bad one is a pytest
usage error naming the value and what is accepted; environment and ini values are checked
in :func:`resolve` and raise :class:`pytest.UsageError` the same way.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import pytest

from ..constants import DEFAULT_MAX_TIME_S, DEFAULT_PRECISION, DEFAULT_PUE, DEFAULT_REGION

DEFAULT_UNIT = "iteration"
BUDGET_MODES = ("fail", "warn")
REPORT_MODES = ("off", "summary", "full")


# -- parsers: str -> value, raising ValueError with one line ---------------------------------


def parse_extrapolate(text: str) -> dict[str, int]:
    """``150000`` -> {iteration: 150000}; ``150000,sample=10000`` adds other units."""
    out: dict[str, int] = {}
    for raw in str(text).split(","):
        part = raw.strip()
        if not part:
            continue
        unit, eq, value = part.rpartition("=")
        unit = unit.strip() if eq else DEFAULT_UNIT
        if not re.fullmatch(r"[A-Za-z_][\w\-]*", unit):
            raise ValueError(
                f"invalid unit {unit!r} in --co2-extrapolate={text!r}: expected N or unit=N, "
                "e.g. 150000 or 150000,sample=10000"
            )
        try:
            n = int(value.strip().replace("_", ""))
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(
                f"invalid count {value.strip()!r} in --co2-extrapolate={text!r}: expected a whole "
                "number >= 1, as N or unit=N (e.g. 150000,sample=10000)"
            )
        if unit in out:
            raise ValueError(
                f"unit {unit!r} given twice in --co2-extrapolate={text!r}: expected each unit once"
            )
        out[unit] = n
    if not out:
        raise ValueError(f"empty --co2-extrapolate={text!r}: expected N or unit=N pairs")
    return out


def parse_positive_float(
    what: str, minimum: float = 0.0, inclusive: bool = False, maximum: float = math.inf
) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            x = float(text)
        except (TypeError, ValueError):
            x = math.nan
        ok = math.isfinite(x) and (x >= minimum if inclusive else x > minimum) and x <= maximum
        if not ok:
            bound = f">= {minimum:g}" if inclusive else f"> {minimum:g}"
            if math.isfinite(maximum):
                bound += f" and <= {maximum:g}"
            raise ValueError(f"invalid {what} {text!r}: expected a number {bound}")
        return x

    return parse


def parse_pue(text: str) -> float:
    from ..carbon.emission import parse_pue as _parse_pue

    return _parse_pue(text)


def parse_watts_per_thread(text: str) -> tuple[float, float]:
    from ..backends.estimate import parse_watts_per_thread as _parse

    return _parse(text)


def parse_gpus(text: str) -> Any:
    from ..backends.nvml import parse_gpu_devices

    return parse_gpu_devices(text)


def parse_region(text: str) -> str:
    """A shipped region's code, or a well-formed name that --co2-intensity-file may define
    (checked with the file in :func:`resolve`)."""
    from ..carbon.intensity import parse_region as _parse

    return _parse(text)


def parse_precision(text: str) -> float:
    """``5%`` or ``0.05``; ``off`` (0.0 here) measures exactly the steps asked for."""
    if str(text).strip().lower() in ("off", "none"):
        return 0.0
    from ..measure.decisions import parse_precision as _parse

    return _parse(text)


def parse_lock_timeout(text: str) -> float:
    from ..measure.locks import parse_lock_timeout as _parse

    return _parse(text)


def parse_regions(text: str) -> tuple[str, ...]:
    regions = tuple(parse_region(r) for r in str(text).split(",") if r.strip())
    if not regions:
        raise ValueError(f"empty --co2-regions={text!r}: expected region codes, e.g. SE,DE,PL")
    return regions


def parse_month(text: str) -> str:
    from ..carbon.intensity import normalize_month

    return normalize_month(text)


def parse_backend(text: str) -> str:
    """A built-in backend (checked now) or a name a ``pytest_co2_make_backend`` hook serves
    (checked when the plugins are loaded, see ``provider.check_backend_name``)."""
    from ..backends import BUILTIN_NAMES, check_backend_spec

    spec = str(text).strip().lower()
    if spec.split(":", 1)[0] in BUILTIN_NAMES or spec.startswith("constant"):
        return check_backend_spec(spec)
    if not re.fullmatch(r"[a-z0-9][a-z0-9_.\-]*(:.*)?", spec):
        return check_backend_spec(spec)  # raises with the list of names
    return spec


def parse_choice(name: str, choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = str(text).strip().lower()
        if value not in choices:
            raise ValueError(f"invalid {name} {text!r}: expected one of {', '.join(choices)}")
        return value

    return parse


def parse_bool(text: str) -> bool:
    value = str(text).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"invalid boolean {text!r}: expected true/false, yes/no, on/off or 1/0")


def parse_path(text: str) -> str:
    if not str(text).strip():
        raise ValueError("empty path: expected a file name")
    return str(text)


def parse_output_path(text: str) -> str:
    """A file the plugin will write: its folder must exist or be creatable, and be writable."""
    path = parse_path(text)
    folder = os.path.dirname(os.path.abspath(path))
    probe = folder
    while not os.path.isdir(probe):  # the nearest existing ancestor decides
        parent = os.path.dirname(probe)
        if parent == probe or os.path.exists(probe):
            raise ValueError(f"cannot write {text!r}: {probe!r} is not a folder")
        probe = parent
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write {text!r}: folder {probe!r} is not writable")
    if os.path.isdir(path):
        raise ValueError(f"cannot write {text!r}: it is a folder, expected a file name")
    return path


def parse_save_name(text: str) -> str:
    from ..reporting.baseline import parse_save_name as _parse

    return _parse(text)


def parse_compare(text: str) -> str:
    """A saved run's NAME, a report PATH, or ``latest`` (also an empty value)."""
    from ..reporting.baseline import LATEST

    return str(text).strip() or LATEST


def parse_compare_fail(text: str) -> tuple[Any, ...]:
    from ..reporting.baseline import parse_fail_specs

    return parse_fail_specs(text)


def parse_intensity_source(text: str) -> str:
    from ..carbon.providers.resolve import parse_source

    return parse_source(text)


def parse_url(text: str) -> str:
    url = str(text).strip()
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url):
        raise ValueError(f"invalid URL {text!r}: expected http://HOST[:PORT][/PATH] or https://...")
    return url


def parse_zone(text: str) -> str:
    zone = str(text).strip()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,40}", zone):
        raise ValueError(
            f"invalid zone {text!r}: expected a zone key such as DE, US-CAL-CISO, GB-13"
        )
    return zone


def parse_existing_file(text: str) -> str:
    if not os.path.isfile(text):
        raise ValueError(
            f"intensity file {text!r} does not exist: expected a CSV with region,year,month,g_co2e_per_kwh"
        )
    return str(text)


# -- the option table -------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    dest: str  # Settings field and ini key suffix
    parse: Callable[[str], Any]
    help: str
    metavar: str | None = None
    flag: bool = False  # a store_true switch
    negatable: bool = False  # a flag that also has --co2-no-<name> (store_false)
    const: str | None = None  # the value of the option given without one (nargs="?")

    @property
    def cli(self) -> str:
        return "--co2-" + self.dest.replace("_", "-")

    @property
    def cli_negative(self) -> str:
        return "--co2-no-" + self.dest.replace("_", "-")

    @property
    def ini(self) -> str:
        return "co2_" + self.dest

    @property
    def env(self) -> str:
        return "PYTEST_CO2_" + self.dest.upper()


OPTIONS: tuple[Option, ...] = (
    Option(
        "region",
        parse_region,
        "grid region for carbon intensity: ISO code or name (SE, DE, US-CA, Sweden); default EU27, the paper's",
        "REGION",
    ),
    Option(
        "month",
        parse_month,
        "use the region's monthly intensity for YEAR-MONTH (e.g. 2022-12; DE has 2022-2023)",
        "YYYY-MM",
    ),
    Option(
        "intensity",
        parse_positive_float("carbon intensity", 0.0, inclusive=True),
        "carbon intensity in g CO2e/kWh, overriding the region's",
        "G_PER_KWH",
    ),
    Option(
        "intensity_file",
        parse_existing_file,
        "CSV of intensities (region,year,month,g_co2e_per_kwh) whose rows win over the shipped data",
        "CSV",
    ),
    Option(
        "intensity_source",
        parse_intensity_source,
        "live intensity, looked up once at start (cached 1 h in .pytest_cache; on failure a "
        "stale cache, else the shipped data, with a warning): electricitymaps (token in "
        "ELECTRICITYMAPS_TOKEN), ukgrid (api.carbonintensity.org.uk, no key) or file:PATH "
        "(JSON or CSV); default: the shipped data",
        "SOURCE",
    ),
    Option(
        "intensity_zone",
        parse_zone,
        "the provider's zone: an Electricity Maps zone key (default --co2-region), or for "
        "ukgrid GB (default) or a region GB-1..GB-17 (GB-13: London)",
        "ZONE",
    ),
    Option(
        "intensity_timeout",
        parse_positive_float("intensity look-up timeout", maximum=60.0),
        "seconds each request of --co2-intensity-source may take (default 5)",
        "SECONDS",
    ),
    Option(
        "intensity_cache_ttl",
        parse_positive_float("intensity cache TTL", 0.0, inclusive=True),
        "seconds a cached --co2-intensity-source value is used without a request (default "
        "3600; 0: always ask)",
        "SECONDS",
    ),
    Option(
        "intensity_url",
        parse_url,
        "base URL of the --co2-intensity-source API instead of the provider's (a proxy, a "
        "local test server)",
        "URL",
    ),
    Option(
        "pue",
        parse_pue,
        "power usage effectiveness of the data centre (>= 1; default 1.55, the paper's)",
        "PUE",
    ),
    Option(
        "extrapolate",
        parse_extrapolate,
        "project measurements to N units: N for training iterations, unit=N for others (150000,sample=10000)",
        "N[,UNIT=N]",
    ),
    Option(
        "precision",
        parse_precision,
        "steps(n) measures at least n steps, then goes on until the 95% interval of the "
        "per-unit energy is within this of the mean (default 5%; off: exactly n steps) or "
        "--co2-max-time is reached",
        "PCT%",
    ),
    Option(
        "max_time",
        parse_positive_float("maximum measuring time", maximum=3600.0),
        "measured seconds at most for steps() to reach --co2-precision (default 10)",
        "SECONDS",
    ),
    Option(
        "compare_strict",
        parse_bool,
        "with --co2-compare-fail, an inconclusive comparison (too noisy to tell) fails too; "
        "by default it is a warning that says what precision would decide it",
        flag=True,
    ),
    Option(
        "quiet_runtime",
        parse_bool,
        "set OMP_WAIT_POLICY=PASSIVE before torch/numpy load (unless set): idle OpenMP threads "
        "then sleep instead of spinning, which the CPU estimate would charge as work (default "
        "on; --co2-no-quiet-runtime keeps the runtime's default)",
        flag=True,
        negatable=True,
    ),
    Option(
        "backend",
        parse_backend,
        "energy source: auto (default), nvml, amdsmi, rapl, estimate, carbontracker, "
        "constant:<watts>",
        "NAME",
    ),
    Option(
        "cpu_tdp",
        parse_positive_float("CPU TDP"),
        "CPU TDP in watts for the estimate backend (default: looked up by CPU model)",
        "WATTS",
    ),
    Option(
        "cpu_watts_per_thread",
        parse_watts_per_thread,
        "the CPU estimate's idle and full-load watts per hardware thread, e.g. 0.4,1.9 (default: "
        "SPECpower medians for the CPU model or microarchitecture)",
        "IDLE,FULL",
    ),
    Option(
        "gpus",
        parse_gpus,
        "the GPUs to measure: auto (default: NVIDIA, those holding this process's CUDA context, "
        "else CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES; AMD, ROCR_VISIBLE_DEVICES then "
        "HIP_VISIBLE_DEVICES), all, none, or a list of indices, cuda:N, GPU-<uuid prefix>",
        "GPUS",
    ),
    Option(
        "regions",
        parse_regions,
        "what-if columns in the summary for other regions, e.g. SE,DE,PL",
        "R1,R2",
    ),
    Option(
        "advise",
        parse_bool,
        "carbon-aware advice: where (among --co2-regions, default the paper's Table 1) and in "
        "which month with data the measured work would emit least, for the session and per test",
        flag=True,
    ),
    Option(
        "all",
        parse_bool,
        "measure the call phase of every test, with or without the fixture",
        flag=True,
    ),
    Option(
        "json",
        parse_output_path,
        "write the emissions report as JSON to PATH (atomically, also on failure or Ctrl-C)",
        "PATH",
    ),
    Option(
        "budget_mode",
        parse_choice("budget mode", BUDGET_MODES),
        "fail (default): a test over its co2_budget fails; warn: report it and pass",
        "MODE",
    ),
    Option(
        "report",
        parse_choice("report mode", REPORT_MODES),
        "terminal emissions summary: off, summary (default: the 40 largest measurements and every test over budget, a total of all) or full (every measurement, its devices and notes)",
        "MODE",
    ),
    Option(
        "exclusive",
        parse_bool,
        "serialize measured windows on shared counter devices (GPU, RAPL) across processes with file locks; on by default under pytest-xdist with a counter backend (--co2-no-exclusive: off)",
        flag=True,
        negatable=True,
    ),
    Option(
        "lock_dir",
        parse_path,
        "directory of the --co2-exclusive lock files (default <tempdir>/pytest-co2-locks-<uid>, "
        "created 0700; a folder that is a link or another user's is refused)",
        "DIR",
    ),
    Option(
        "lock_timeout",
        parse_lock_timeout,
        "seconds a measured window waits for a --co2-exclusive lock held by another process; "
        "then it is measured without the lock, noted on the record (default 30)",
        "SECONDS",
    ),
    Option(
        "save",
        parse_save_name,
        "save this run's JSON report as .co2/NAME.json in the rootdir, a baseline for --co2-compare",
        "NAME",
    ),
    Option(
        "compare",
        parse_compare,
        "compare each measurement with a saved run: NAME (.co2/NAME.json), a report PATH, or no value for the latest saved (write --co2-compare=NAME)",
        "NAME|PATH",
        const="latest",
    ),
    Option(
        "compare_fail",
        parse_compare_fail,
        "fail the session when a measurement grows by more than this over the baseline: energy:10%, co2e:5% (comma-separated); compares with the latest saved run unless --co2-compare names one",
        "FIELD:PCT%",
    ),
    Option(
        "markdown",
        parse_output_path,
        "write the emissions table as markdown to PATH (CI job summary, PR comment)",
        "PATH",
    ),
    Option(
        "idle",
        parse_positive_float("idle measurement time", 0.0, inclusive=True, maximum=600.0),
        "measure each device's idle power for SECONDS (at most 600) before the first measurement and report it (header, JSON); 0 (default): off",
        "SECONDS",
    ),
    Option(
        "subtract_idle",
        parse_bool,
        "subtract the idle power measured by --co2-idle from every measurement (noted on each)",
        flag=True,
    ),
)


@dataclass(frozen=True)
class Settings:
    """Everything the plugin needs from the command line, environment and ini, checked."""

    region: str = DEFAULT_REGION
    month: str | None = None
    intensity: float | None = None
    intensity_file: str | None = None
    intensity_source: str = ""  # "": the shipped data
    intensity_zone: str | None = None
    intensity_timeout: float = 5.0
    intensity_cache_ttl: float = 3600.0
    intensity_url: str | None = None
    pue: float = DEFAULT_PUE
    extrapolate: dict[str, int] = field(default_factory=dict)
    precision: float = DEFAULT_PRECISION  # 0.0: off
    max_time: float = DEFAULT_MAX_TIME_S
    compare_strict: bool = False
    quiet_runtime: bool | None = None  # None: on (see quiet_runtime.py)
    backend: str = "auto"
    cpu_tdp: float | None = None
    cpu_watts_per_thread: tuple[float, float] | None = None
    gpus: Any = None  # backends.nvml.GpuSelection
    regions: tuple[str, ...] = ()
    advise: bool = False
    all: bool = False
    json: str | None = None
    budget_mode: str = "fail"
    report: str = "summary"
    exclusive: bool | None = None  # None: automatic (on under pytest-xdist with a counter backend)
    lock_dir: str | None = None
    lock_timeout: float | None = None
    save: str | None = None
    compare: str | None = None
    compare_fail: tuple[Any, ...] = ()  # compare.FailSpec
    markdown: str | None = None
    idle: float = 0.0  # seconds of idle measurement at start (0: off)
    subtract_idle: bool = False
    sources: dict[str, str] = field(default_factory=dict)  # where each non-default came from

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["regions"] = list(self.regions)
        d["compare_fail"] = [str(spec) for spec in self.compare_fail]
        g = self.gpus
        d["gpus"] = None if g is None else (",".join(g.entries) if g.entries else g.mode)
        return d

    def extrapolate_text(self) -> str:
        if not self.extrapolate:
            return "none (projections are the measured units)"
        return ", ".join(f"{n:,} {u}s" for u, n in self.extrapolate.items())


def argparse_type(parse: Callable[[str], Any], name: str | None = None) -> Callable[[str], Any]:
    """Wrap a parser so argparse prints its one-line message as a usage error (not
    "invalid value"); shared by the pytest options and the ``pytest-co2`` command."""

    def wrapped(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:  # IntensityError and BackendError-as-ValueError included
            raise argparse.ArgumentTypeError(str(exc)) from None

    wrapped.__name__ = name or str(getattr(parse, "__name__", "value"))
    return wrapped


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("co2", "energy and carbon (pytest-co2)")
    for opt in OPTIONS:
        cli_help = opt.help.replace("%", "%%")  # argparse formats help with %
        if opt.flag:
            group.addoption(
                opt.cli, action="store_true", default=None, dest="co2_" + opt.dest, help=cli_help
            )
            if opt.negatable:
                group.addoption(
                    opt.cli_negative,
                    action="store_false",
                    default=None,
                    dest="co2_" + opt.dest,
                    help=f"the opposite of {opt.cli}",
                )
        elif opt.const is not None:
            group.addoption(
                opt.cli,
                dest="co2_" + opt.dest,
                default=None,
                nargs="?",
                const=opt.const,
                type=argparse_type(opt.parse),
                metavar=opt.metavar,
                help=cli_help,
            )
        else:
            group.addoption(
                opt.cli,
                dest="co2_" + opt.dest,
                default=None,
                type=argparse_type(opt.parse),
                metavar=opt.metavar,
                help=cli_help,
            )
        parser.addini(opt.ini, help=f"{opt.help} (also {opt.cli}, {opt.env})", default=None)


def resolve(config: pytest.Config, environ: dict[str, str] | None = None) -> Settings:
    """Merge command line, environment and ini into :class:`Settings` (raises UsageError)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for opt in OPTIONS:
        cli = config.getoption("co2_" + opt.dest, default=None)
        if cli is not None:
            values[opt.dest] = cli
            sources[opt.dest] = "command line"
            continue
        for where, raw in ((opt.env, env.get(opt.env)), (f"ini {opt.ini}", config.getini(opt.ini))):
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                continue
            try:
                values[opt.dest] = opt.parse(raw)
            except ValueError as exc:
                raise pytest.UsageError(f"{where}: {exc}") from None
            sources[opt.dest] = where
            break
    settings = Settings(**values, sources=sources)
    return _check_combination(settings)


def _check_combination(s: Settings) -> Settings:
    """Cross-option checks: the regions and month must resolve, with the intensity file
    (a region it defines is selectable); returns the settings with canonical region codes."""
    from ..carbon.intensity import lookup, resolve_region

    csv = s.intensity_file
    try:
        region = resolve_region(s.region, csv_path=csv)
    except ValueError as exc:
        raise pytest.UsageError(f"--co2-region: {exc}") from None
    try:
        regions = tuple(resolve_region(r, csv_path=csv) for r in s.regions)
    except ValueError as exc:
        raise pytest.UsageError(f"--co2-regions: {exc}") from None
    try:
        lookup(region, s.month, intensity_g_per_kwh=s.intensity, csv_path=csv)
        for r in regions:
            lookup(r, None, csv_path=csv)  # what-ifs use yearly values
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    if s.subtract_idle and not s.idle:
        raise pytest.UsageError(
            "--co2-subtract-idle needs the idle power measured first: add --co2-idle=SECONDS (e.g. 2)"
        )
    return replace(s, region=region, regions=regions)
