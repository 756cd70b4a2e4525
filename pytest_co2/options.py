"""Every option, declared once: the plugin's :class:`Settings` and the command's shared arguments.

Each :class:`Settings` field that is an option carries its :class:`Option` (parser, help,
metavar) in its metadata; :data:`OPTIONS` is read from the fields, so the settings and the
options are one list. :func:`add_options` declares them on any argparse-style ``addoption``
under a prefix, as pytest-benchmark does: the plugin uses ``co2-`` (``--co2-foo-bar``, with
the ini key ``co2_foo_bar`` and the environment variable ``PYTEST_CO2_FOO_BAR``), the
``pytest-co2`` command no prefix (``--foo-bar``). A value is parsed once, by the option's
parser, into the type of its field; what travels downstream is that value.

This module imports no pytest: the plugin's adapter (``plugin/options.py``) adds the pytest
group, the ini keys and the precedence (command line, then environment, then ini).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import FrozenInstanceError, asdict, field, fields
from typing import TYPE_CHECKING, Any

from .constants import DEFAULT_MAX_TIME_S, DEFAULT_PRECISION, DEFAULT_PUE, DEFAULT_REGION, LATEST
from .frozen import record
from .option_parsers import (
    normalize_month,
    parse_backend,
    parse_bool,
    parse_choice,
    parse_compare,
    parse_defer_above,
    parse_embodied,
    parse_embodied_gpu,
    parse_existing_file,
    parse_extrapolate,
    parse_fail_specs,
    parse_g_per_kwh,
    parse_gpu_devices,
    parse_lock_timeout,
    parse_output_path,
    parse_path,
    parse_positive_float,
    parse_precision,
    parse_profile_path,
    parse_pue,
    parse_region,
    parse_regions,
    parse_run_id,
    parse_save_name,
    parse_source,
    parse_url,
    parse_watts_per_thread,
    parse_zone,
)

if TYPE_CHECKING:
    from .backends.nvml import GpuSelection
    from .carbon.sci import Embodied
    from .reporting.delta import FailSpec

BUDGET_MODES = ("fail", "warn")
REPORT_MODES = ("off", "summary", "full")
PLUGIN_PREFIX = "co2-"  # --co2-region; the ini key co2_region, the variable PYTEST_CO2_REGION


# -- argparse: a parser's one-line message as a usage error (the parsers: option_parsers) --


def argparse_type(parse: Callable[[str], Any], name: str | None = None) -> Callable[[str], Any]:
    """Wrap a parser so that argparse prints its one-line message as a usage error (not
    "invalid value")."""

    def wrapped(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:  # IntensityError and BackendError-as-ValueError included
            raise argparse.ArgumentTypeError(str(exc)) from None

    wrapped.__name__ = name or str(getattr(parse, "__name__", "value"))
    return wrapped


# -- the declaration ----------------------------------------------------------------------------


class Option:
    """How one setting is given: its parser, help and metavar; ``dest`` is its field's name
    (set once, when :data:`OPTIONS` is read from the fields). A plain class, not a dataclass:
    the plugin builds 43 of them at import, and a dataclass costs more to define than this
    whole class does to use."""

    __slots__ = ("const", "default_help", "dest", "flag", "help", "metavar", "negatable", "parse")

    def __init__(
        self,
        parse: Callable[[str], Any],
        help: str,  # what it is; the default is in ``default_help`` or, where better, here
        metavar: str | None = None,
        *,
        default_help: str | None = None,  # how the default reads: "(default: ...)" after help
        flag: bool = False,  # a store_true switch
        negatable: bool = False,  # a flag that also has --<prefix>no-<name> (store_false)
        const: str | None = None,  # the value of the option given without one (nargs="?")
        dest: str = "",
    ) -> None:
        self.parse = parse
        self.help = help
        self.metavar = metavar
        self.default_help = default_help
        self.flag = flag
        self.negatable = negatable
        self.const = const
        self.dest = dest

    def __repr__(self) -> str:
        return f"Option({self.dest or self.help!r})"

    def flag_name(self, prefix: str = PLUGIN_PREFIX) -> str:
        """``--co2-foo-bar`` (prefix ``co2-``) or ``--foo-bar`` (no prefix)."""
        return f"--{prefix}{self.dest.replace('_', '-')}"

    def negative_flag_name(self, prefix: str = PLUGIN_PREFIX) -> str:
        return f"--{prefix}no-{self.dest.replace('_', '-')}"

    @property
    def ini(self) -> str:
        return "co2_" + self.dest

    @property
    def env(self) -> str:
        return "PYTEST_CO2_" + self.dest.upper()

    def text(self, default_help: str | None = None) -> str:
        """The help line; ``default_help`` replaces how the default reads (a subcommand's)."""
        default = default_help or self.default_help
        return f"{self.help} (default: {default})" if default else self.help


_OPTION = "option"  # the metadata key of a field that is an option


def _opt(parse: Callable[[str], Any], help: str, metavar: str | None = None, **kw: Any) -> Any:
    """The metadata of a :class:`Settings` field that is an option."""
    return {_OPTION: Option(parse, help, metavar, **kw)}


@record  # no generated code at import (see pytest_co2.frozen); frozen by hand below
class Settings:
    """Everything the plugin needs from the command line, environment and ini, checked.

    The field order is the order of ``--help`` and of the JSON report's ``settings``."""

    region: str = field(
        default=DEFAULT_REGION,
        metadata=_opt(
            parse_region,
            "grid region for carbon intensity, an ISO code or name: SE, DE, US-CA, Sweden",
            "REGION",
            default_help="EU27, the paper's",
        ),
    )
    month: str | None = field(
        default=None,
        metadata=_opt(
            normalize_month,
            "use the region's monthly intensity for YEAR-MONTH (e.g. 2022-12; DE has 2022-2023)",
            "YYYY-MM",
        ),
    )
    intensity: float | None = field(
        default=None,
        metadata=_opt(
            parse_g_per_kwh,
            "carbon intensity in g CO2e/kWh, overriding the region's",
            "G_PER_KWH",
        ),
    )
    intensity_file: str | None = field(
        default=None,
        metadata=_opt(
            parse_existing_file,
            "CSV of intensities (region,year,month,g_co2e_per_kwh[,source]) whose rows win over "
            "the shipped data",
            "CSV",
        ),
    )
    intensity_source: str = field(  # "": the shipped data
        default="",
        metadata=_opt(
            parse_source,
            "live intensity, looked up once at start (cached 1 h in .pytest_cache; on failure a "
            "stale cache, else the shipped data, with a warning): electricitymaps (token in "
            "ELECTRICITYMAPS_TOKEN), ukgrid (api.carbonintensity.org.uk, no key) or file:PATH "
            "(JSON or CSV); default: the shipped data",
            "SOURCE",
        ),
    )
    intensity_zone: str | None = field(
        default=None,
        metadata=_opt(
            parse_zone,
            "the provider's zone: an Electricity Maps zone key (default --co2-region), or for "
            "ukgrid GB (default) or a region GB-1..GB-17 (GB-13: London)",
            "ZONE",
        ),
    )
    intensity_timeout: float = field(
        default=5.0,
        metadata=_opt(
            parse_positive_float("intensity look-up timeout", maximum=60.0),
            "seconds each request of --co2-intensity-source may take (default 5)",
            "SECONDS",
        ),
    )
    intensity_cache_ttl: float = field(
        default=3600.0,
        metadata=_opt(
            parse_positive_float("intensity cache TTL", 0.0, inclusive=True),
            "seconds a cached --co2-intensity-source value is used without a request (default "
            "3600; 0: always ask)",
            "SECONDS",
        ),
    )
    intensity_url: str | None = field(
        default=None,
        metadata=_opt(
            parse_url,
            "base URL of the --co2-intensity-source API instead of the provider's (a proxy, a "
            "local test server)",
            "URL",
        ),
    )
    pue: float = field(
        default=DEFAULT_PUE,
        metadata=_opt(
            parse_pue,
            "power usage effectiveness of the data centre, >= 1",
            "PUE",
            default_help=f"{DEFAULT_PUE:g}, the paper's",
        ),
    )
    extrapolate: dict[str, int] = field(
        default_factory=dict,
        metadata=_opt(
            parse_extrapolate,
            "project measurements to N units: N for training iterations, unit=N for others "
            "(150000,sample=10000)",
            "N[,UNIT=N]",
        ),
    )
    precision: float = field(  # 0.0: off
        default=DEFAULT_PRECISION,
        metadata=_opt(
            parse_precision,
            "steps(n) measures at least n steps, then goes on until the 95% interval of the "
            "per-unit energy is within this of the mean (default 5%; off: exactly n steps) or "
            "--co2-max-time is reached",
            "PCT%",
        ),
    )
    max_time: float = field(
        default=DEFAULT_MAX_TIME_S,
        metadata=_opt(
            parse_positive_float("maximum measuring time", maximum=3600.0),
            "measured seconds at most for steps() to reach --co2-precision (default 10)",
            "SECONDS",
        ),
    )
    compare_strict: bool = field(
        default=False,
        metadata=_opt(
            parse_bool,
            "with --co2-compare-fail, an inconclusive comparison (too noisy to tell) fails too; "
            "by default it is a warning that says what precision would decide it",
            flag=True,
        ),
    )
    quiet_runtime: bool | None = field(  # None: on (see plugin/runtime.py)
        default=None,
        metadata=_opt(
            parse_bool,
            "set OMP_WAIT_POLICY=PASSIVE before torch/numpy load (unless set): idle OpenMP "
            "threads then sleep instead of spinning, which the CPU estimate would charge as work "
            "(default on; --co2-no-quiet-runtime keeps the runtime's default)",
            flag=True,
            negatable=True,
        ),
    )
    backend: str = field(
        default="auto",
        metadata=_opt(
            parse_backend,
            "energy source: auto (default), nvml, amdsmi, rapl, estimate, carbontracker, "
            "constant:<watts>",
            "NAME",
        ),
    )
    cpu_tdp: float | None = field(
        default=None,
        metadata=_opt(
            parse_positive_float("CPU TDP"),
            "CPU TDP in watts for the estimate backend (default: looked up by CPU model)",
            "WATTS",
        ),
    )
    cpu_watts_per_thread: tuple[float, float] | None = field(
        default=None,
        metadata=_opt(
            parse_watts_per_thread,
            "the CPU estimate's idle and full-load watts per hardware thread, e.g. 0.4,1.9 "
            "(default: SPECpower medians for the CPU model or microarchitecture)",
            "IDLE,FULL",
        ),
    )
    gpus: GpuSelection | None = field(  # None: auto
        default=None,
        metadata=_opt(
            parse_gpu_devices,
            "the GPUs to measure: auto (default: NVIDIA, those holding this process's CUDA "
            "context, else CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES; AMD, "
            "ROCR_VISIBLE_DEVICES then HIP_VISIBLE_DEVICES), all, none, or a list of indices, "
            "cuda:N, GPU-<uuid prefix>",
            "GPUS",
        ),
    )
    regions: tuple[str, ...] = field(
        default=(),
        metadata=_opt(
            parse_regions,
            "what-if columns in the summary for other regions, e.g. SE,DE,PL",
            "R1,R2",
        ),
    )
    advise: bool = field(
        default=False,
        metadata=_opt(
            parse_bool,
            "carbon-aware advice: where (among --co2-regions, default the paper's Table 1) and "
            "in which month with data the measured work would emit least, for the session and "
            "per test",
            flag=True,
        ),
    )
    all: bool = field(
        default=False,
        metadata=_opt(
            parse_bool,
            "measure the call phase of every test, with or without the fixture",
            flag=True,
        ),
    )
    json: str | None = field(
        default=None,
        metadata=_opt(
            parse_output_path,
            "write the emissions report as JSON to PATH (atomically, also on failure or Ctrl-C)",
            "PATH",
        ),
    )
    budget_mode: str = field(
        default="fail",
        metadata=_opt(
            parse_choice("budget mode", BUDGET_MODES),
            "fail (default): a test over its co2_budget fails; warn: report it and pass",
            "MODE",
        ),
    )
    report: str = field(
        default="summary",
        metadata=_opt(
            parse_choice("report mode", REPORT_MODES),
            "terminal emissions summary: off, summary (default: the 40 largest measurements and "
            "every test over budget, a total of all) or full (every measurement, its devices and "
            "notes)",
            "MODE",
        ),
    )
    exclusive: bool | None = field(  # None: on under pytest-xdist with a counter backend
        default=None,
        metadata=_opt(
            parse_bool,
            "serialize measured windows on shared counter devices (GPU, RAPL) across processes "
            "with file locks; on by default under pytest-xdist with a counter backend "
            "(--co2-no-exclusive: off)",
            flag=True,
            negatable=True,
        ),
    )
    lock_dir: str | None = field(
        default=None,
        metadata=_opt(
            parse_path,
            "directory of the --co2-exclusive lock files (default "
            "<tempdir>/pytest-co2-locks-<uid>, created 0700; a folder that is a link or another "
            "user's is refused)",
            "DIR",
        ),
    )
    lock_timeout: float | None = field(
        default=None,
        metadata=_opt(
            parse_lock_timeout,
            "seconds a measured window waits for a --co2-exclusive lock held by another "
            "process; then it is measured without the lock, noted on the record (default 30)",
            "SECONDS",
        ),
    )
    read_timeout: float = field(
        default=30.0,
        metadata=_opt(
            parse_positive_float("backend read timeout", 0.0, inclusive=True, maximum=3600.0),
            "seconds one reading of the energy backend may take (default 30); a read that takes "
            "longer is abandoned: the window is partial and the device is dropped for the rest "
            "of the session. 0: unbounded (read in the test's thread)",
            "SECONDS",
        ),
    )
    save: str | None = field(
        default=None,
        metadata=_opt(
            parse_save_name,
            "save this run's JSON report as .co2/NAME.json in the rootdir, a baseline for "
            "--co2-compare",
            "NAME",
        ),
    )
    compare: str | None = field(
        default=None,
        metadata=_opt(
            parse_compare,
            "compare each measurement with a saved run: NAME (.co2/NAME.json), a report PATH, "
            "or no value for the latest saved (write --co2-compare=NAME)",
            "NAME|PATH",
            const=LATEST,
        ),
    )
    compare_fail: tuple[FailSpec, ...] = field(
        default=(),
        metadata=_opt(
            parse_fail_specs,
            "fail the session when a measurement grows by more than this over the baseline: "
            "energy:10%, co2e:5% (comma-separated); compares with the latest saved run unless "
            "--co2-compare names one",
            "FIELD:PCT%",
        ),
    )
    markdown: str | None = field(
        default=None,
        metadata=_opt(
            parse_output_path,
            "write the emissions table as markdown to PATH (CI job summary, PR comment)",
            "PATH",
        ),
    )
    profile: str | None = field(
        default=None,
        metadata=_opt(
            parse_profile_path,
            "measure every test's setup, call and teardown, each fixture's setup and each "
            "measure() region as a tree: collapsed stacks (FlameGraph, speedscope) to PATH, "
            "a speedscope file beside it (PATH's stem + .speedscope.json), the top 5 in the "
            "summary, the tree in the JSON report (write --co2-profile=PATH; without a value: "
            "co2-profile.folded)",
            "PATH",
            const="co2-profile.folded",
        ),
    )
    idle: float = field(  # seconds of idle measurement at start (0: off)
        default=0.0,
        metadata=_opt(
            parse_positive_float("idle measurement time", 0.0, inclusive=True, maximum=600.0),
            "measure each device's idle power for SECONDS (at most 600) before the first "
            "measurement and report it (header, JSON); 0 (default): off",
            "SECONDS",
        ),
    )
    subtract_idle: bool = field(
        default=False,
        metadata=_opt(
            parse_bool,
            "subtract the idle power measured by --co2-idle from every measurement (noted on each)",
            flag=True,
        ),
    )
    run_id: str | None = field(
        default=None,
        metadata=_opt(
            parse_run_id,
            "the run this report belongs to, for pytest-co2 combine",
            "ID",
            default_help="GITHUB_RUN_ID+GITHUB_RUN_ATTEMPT, CI_PIPELINE_ID, SLURM_JOB_ID or "
            "TORCHELASTIC_RUN_ID, the first set",
        ),
    )
    slurm_reconcile: bool = field(
        default=False,
        metadata=_opt(
            parse_bool,
            "in a SLURM job, print this run's measured energy beside sacct's ConsumedEnergyRaw "
            "of the step (acct_gather_energy)",
            flag=True,
        ),
    )
    defer_above: float | None = field(
        default=None,
        metadata=_opt(
            parse_defer_above,
            "carbon-aware deferral: skip each test marked co2_defer, and each test that uses "
            "co2_meter or has a co2_budget marker, while the live intensity of "
            "--co2-intensity-source is above G_PER_KWH g CO2e/kWh (a co2_defer(above=...) "
            "marker wins); without a live value the tests run",
            "G_PER_KWH",
        ),
    )
    sci: bool = field(
        default=False,
        metadata=_opt(
            parse_bool,
            "Software Carbon Intensity (ISO/IEC 21031) per unit beside each projection: ((E x "
            "I) + M) / R, location-based, with its boundary in the JSON report (sci)",
            flag=True,
        ),
    )
    embodied: Embodied | None = field(
        default=None,
        metadata=_opt(
            parse_embodied,
            "for --co2-sci's M: the machine's embodied kg CO2e and lifetime in years, and "
            "optionally the share of it this run holds (default: the CPUs it may use / the "
            "machine's CPUs, split between xdist workers); none is shipped",
            "KG,YEARS[,SHARE]",
        ),
    )
    embodied_gpu: Embodied | None = field(
        default=None,
        metadata=_opt(
            parse_embodied_gpu,
            "for --co2-sci's M: each GPU's embodied kg CO2e and lifetime in years, charged for "
            "every GPU a measurement read",
            "KG,YEARS",
        ),
    )
    market_intensity: float | None = field(
        default=None,
        metadata=_opt(
            parse_g_per_kwh,
            "a market-based emission factor in g CO2e/kWh (contracts, residual mix): "
            "--co2-sci shows market-based figures beside the location-based ones (GHG Protocol "
            "Scope 2 dual reporting; never in the SCI score)",
            "G_PER_KWH",
        ),
    )
    # where each non-default came from
    sources: dict[str, str] = field(default_factory=dict)

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}: the settings are fixed")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}: the settings are fixed")

    def __repr__(self) -> str:
        """The settings given (command line, environment, ini); the rest are defaults."""
        given = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.sources)
        return f"Settings({given})"

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


def _read_options() -> tuple[Option, ...]:
    chosen = []
    for f in fields(Settings):
        if _OPTION in f.metadata:
            opt: Option = f.metadata[_OPTION]
            opt.dest = f.name
            chosen.append(opt)
    return tuple(chosen)


OPTIONS: tuple[Option, ...] = _read_options()
OPTION: Mapping[str, Option] = {opt.dest: opt for opt in OPTIONS}

#: The plugin's ``--help`` sections, in order, and the options of each (every option is in
#: exactly one; a test checks).
HELP_SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "measuring",
        (
            "all",
            "backend",
            "cpu_tdp",
            "cpu_watts_per_thread",
            "gpus",
            "quiet_runtime",
            "extrapolate",
            "precision",
            "max_time",
            "idle",
            "subtract_idle",
            "profile",
            "exclusive",
            "lock_dir",
            "lock_timeout",
            "read_timeout",
        ),
    ),
    (
        "carbon accounting",
        (
            "region",
            "month",
            "intensity",
            "intensity_file",
            "intensity_source",
            "intensity_zone",
            "intensity_timeout",
            "intensity_cache_ttl",
            "intensity_url",
            "pue",
            "market_intensity",
            "regions",
            "advise",
            "defer_above",
            "sci",
            "embodied",
            "embodied_gpu",
        ),
    ),
    (
        "reports, baselines and gates",
        (
            "report",
            "json",
            "markdown",
            "save",
            "compare",
            "compare_fail",
            "compare_strict",
            "budget_mode",
            "run_id",
            "slurm_reconcile",
        ),
    ),
)


def add_options(
    addoption: Callable[..., Any],
    prefix: str = "",
    *,
    dest_prefix: str = "",
    names: Sequence[str] | None = None,
    help: Mapping[str, str] | None = None,
    default_help: Mapping[str, str] | None = None,
) -> None:
    """Declare options on an argparse-style ``addoption`` (pytest's ``group.addoption``,
    ``ArgumentParser.add_argument``): ``--<prefix><name>``, stored as ``<dest_prefix><dest>``.

    ``names``: which (default: all, in declaration order); ``help`` replaces an option's help
    where a subcommand means something narrower, ``default_help`` how its default reads there.
    Every option defaults to None (not given), so that a caller can tell it from a value and
    apply its own precedence or default; a bad value is argparse's one-line usage error.
    """
    chosen = OPTIONS if names is None else tuple(OPTION[name] for name in names)
    for opt in chosen:
        text = (help or {}).get(opt.dest) or opt.text((default_help or {}).get(opt.dest))
        common: dict[str, Any] = {
            "dest": dest_prefix + opt.dest,
            "default": None,
            "help": text.replace("%", "%%"),  # argparse formats help with %
        }
        if opt.flag:
            addoption(opt.flag_name(prefix), action="store_true", **common)
            if opt.negatable:
                addoption(
                    opt.negative_flag_name(prefix),
                    action="store_false",
                    **{**common, "help": f"the opposite of {opt.flag_name(prefix)}"},
                )
            continue
        if opt.const is not None:
            common.update(nargs="?", const=opt.const)
        addoption(
            opt.flag_name(prefix), type=argparse_type(opt.parse), metavar=opt.metavar, **common
        )
