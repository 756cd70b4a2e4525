"""The options' parsers: text -> value, raising :class:`ValueError` with one line naming the
value and what is accepted.

Parsers of values that belong to a lower layer (regions, PUE, backends, baselines) are
referenced lazily, as ``module:function``, so that declaring the options (every pytest run
does) imports none of them; :mod:`.options` declares each option with one of these.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from typing import Any

from .constants import LATEST

DEFAULT_UNIT = "iteration"


def _lazy(target: str) -> Callable[[str], Any]:
    """The parser ``module:function``, imported on its first use: declaring the options must
    not import the backends, the decisions and the reports (every pytest run declares them;
    tests/test_options.py resolves every such reference)."""
    module, _, name = target.partition(":")
    parse: Callable[[str], Any] | None = None

    def parse_lazily(text: str) -> Any:
        nonlocal parse
        if parse is None:
            import importlib

            parse = getattr(importlib.import_module(module, __package__), name)
        return parse(text)

    parse_lazily.__name__ = name
    parse_lazily.__qualname__ = name
    parse_lazily.lazy_target = target  # type: ignore[attr-defined]
    return parse_lazily


parse_watts_per_thread = _lazy(".backends.cpu_power:parse_watts_per_thread")
parse_gpu_devices = _lazy(".backends.gpu.select:parse_gpu_devices")
parse_pue = _lazy(".carbon.emission:parse_pue")
parse_region = _lazy(".carbon.intensity:parse_region")
normalize_month = _lazy(".carbon.intensity:normalize_month")
parse_g_per_kwh = _lazy(".carbon.intensity_value:parse_g_per_kwh")
parse_source = _lazy(".carbon.providers.resolve:parse_source")
parse_lock_timeout = _lazy(".measure.lock_policy:parse_lock_timeout")
parse_save_name = _lazy(".reporting.baseline:parse_save_name")
parse_fail_specs = _lazy(".reporting.baseline:parse_fail_specs")
parse_defer_above = _lazy(".carbon.defer:parse_defer_above")
parse_embodied = _lazy(".carbon.sci:parse_embodied")
parse_embodied_gpu = _lazy(".carbon.sci:parse_embodied_gpu")

#: The largest projection count: with the bounds on readings, PUE and intensity, every
#: projected energy and CO2e stays finite.
MAX_EXTRAPOLATE = 10**15


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
        digits = value.strip().replace("_", "")
        try:
            n = int(digits) if len(digits) <= 20 else 0  # never parse a huge number
        except ValueError:
            n = 0
        if not 1 <= n <= MAX_EXTRAPOLATE:
            raise ValueError(
                f"invalid count {value.strip()[:40]!r} in --co2-extrapolate: expected a whole "
                f"number >= 1 and <= {MAX_EXTRAPOLATE:.0e}, as N or unit=N (e.g. "
                "150000,sample=10000)"
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
    """A parser of numbers above ``minimum`` (or at it, ``inclusive``) and at most ``maximum``."""

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


def parse_precision(text: str) -> float:
    """``5%`` or ``0.05``; ``off`` (0.0 here) measures exactly the steps asked for."""
    if str(text).strip().lower() in ("off", "none"):
        return 0.0
    from .measure.stopping import parse_precision as parse

    return parse(text)


def parse_regions(text: str) -> tuple[str, ...]:
    """``SE,DE,PL``: regions as :func:`~pytest_co2.carbon.intensity.parse_region` reads them."""
    regions = tuple(parse_region(r) for r in str(text).split(",") if r.strip())
    if not regions:
        raise ValueError(f"empty region list {text!r}: expected region codes, e.g. SE,DE,PL")
    return regions


def parse_backend(text: str) -> str:
    """A built-in backend (checked now) or a name a ``pytest_co2_make_backend`` hook serves
    (checked when the plugins are loaded, see ``provider.check_backend_name``)."""
    from .backends import BUILTIN_NAMES, check_backend_spec

    spec = str(text).strip().lower()
    if spec.split(":", 1)[0] in BUILTIN_NAMES or spec.startswith("constant"):
        return check_backend_spec(spec)
    if not re.fullmatch(r"[a-z0-9][a-z0-9_.\-]*(:.*)?", spec):
        return check_backend_spec(spec)  # raises with the list of names
    return spec


def parse_choice(name: str, choices: tuple[str, ...]) -> Callable[[str], str]:
    """A parser of one of ``choices`` (any case)."""

    def parse(text: str) -> str:
        value = str(text).strip().lower()
        if value not in choices:
            raise ValueError(f"invalid {name} {text!r}: expected one of {', '.join(choices)}")
        return value

    return parse


def parse_bool(text: str) -> bool:
    """true/false, yes/no, on/off, 1/0 (an empty value is false)."""
    value = str(text).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"invalid boolean {text!r}: expected true/false, yes/no, on/off or 1/0")


def parse_path(text: str) -> str:
    """A non-empty path, as written."""
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


_SOURCE_SUFFIXES = (".py", ".pyi", ".ipynb", ".toml", ".cfg", ".ini")


def parse_profile_path(text: str) -> str:
    """Where ``--co2-profile`` writes its collapsed stacks: an output path that is not a
    source or config file (``--co2-profile test_x.py`` takes the test file as the path)."""
    path = parse_output_path(text)
    if path.lower().endswith(_SOURCE_SUFFIXES):
        raise ValueError(
            f"{text!r} looks like a source or config file, not a profile to write: "
            "write --co2-profile=PATH (e.g. --co2-profile=co2-profile.folded), or put "
            "--co2-profile last"
        )
    return path


def parse_compare(text: str) -> str:
    """A saved run's NAME, a report PATH, or ``latest`` (also an empty value)."""
    return str(text).strip() or LATEST


def parse_url(text: str) -> str:
    """An http(s) base URL."""
    url = str(text).strip()
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url):
        raise ValueError(f"invalid URL {text!r}: expected http://HOST[:PORT][/PATH] or https://...")
    return url


def parse_zone(text: str) -> str:
    """A provider's zone key (DE, US-CAL-CISO, GB-13)."""
    zone = str(text).strip()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,40}", zone):
        raise ValueError(
            f"invalid zone {text!r}: expected a zone key such as DE, US-CAL-CISO, GB-13"
        )
    return zone


def parse_existing_file(text: str) -> str:
    """An intensity CSV that exists (its rows are read, and checked, on first use)."""
    if not os.path.isfile(text):
        raise ValueError(
            f"intensity file {text!r} does not exist: expected a CSV with region,year,month,g_co2e_per_kwh"
        )
    return str(text)


def parse_run_id(text: str) -> str:
    """A run id: printable, no white space, at most 200 characters."""
    value = str(text).strip()
    if not value or len(value) > 200 or not value.isprintable() or any(c.isspace() for c in value):
        raise ValueError(
            f"invalid --co2-run-id {text!r}: expected 1 to 200 printable characters without "
            "spaces, e.g. 8123456789-1"
        )
    return value
