"""The report's ``session`` block, typed: what ran, where, with which backend and settings.

Built by the plugin (:func:`session_info`), written with ``to_dict`` and read back with
``from_dict``. Reading is lenient about keys it does not know (a newer version's, or those a
``pytest_co2_update_json`` hook added): they are kept in ``extra`` and written again, so a
round trip keeps them. Keys the plugin writes only sometimes (``workers``, ``idle``,
``intensity_forecast``, ``recovered_from``, ``rerendered``, ``origin``, ``combined``, ``vcs``) are
left out when None.
"""

from __future__ import annotations

import datetime as _dt
import platform
import socket
from collections.abc import Callable, Mapping
from dataclasses import field, replace
from typing import TYPE_CHECKING, Any

from ..carbon.intensity_value import Intensity
from ..carbon.providers.base import ForecastPoint
from ..frozen import Frozen, record
from .model import ReportError
from .origin import OriginInfo
from .session_parts import (
    CombinedInfo,
    CpuEstimateInfo,
    ExclusiveInfo,
    IdleInfo,
    RerenderInfo,
    WorkerFacts,
    strs,
)
from .vcs import CommitInfo

if TYPE_CHECKING:
    from ..backends.base import Backend


@record
class SessionInfo(Frozen):
    """The ``session`` block of a report. ``settings`` is the run's ``Settings.to_dict()``
    as written (its keys are the options' own); ``extra`` holds keys this version does not
    know. Every field may be None in a report read back (older or hand-written ones)."""

    pytest_co2_version: str | None = None
    started: str | None = None
    host: str | None = None
    python: str | None = None
    cpu_model: str | None = None
    cpu_estimate: CpuEstimateInfo | None = None
    cpu_tdp_w: float | None = None  # only a TDP the user gave (--co2-cpu-tdp)
    gpus: tuple[str, ...] = ()
    backend: str | None = None
    backend_notes: tuple[str, ...] = ()
    intensity: Intensity | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    workers: Mapping[str, WorkerFacts] | None = None  # an xdist controller's, by worker id
    exclusive: ExclusiveInfo | None = None
    idle: IdleInfo | None = None
    runtime: str | None = None
    intensity_forecast: tuple[ForecastPoint, ...] | None = None
    xdist_workers: int | None = None
    exit_status: int | None = None
    interrupted: bool | None = None
    finished: str | None = None
    recovered_from: str | None = None  # the journal of a killed run it was recovered from
    rerendered: RerenderInfo | None = None
    origin: OriginInfo | None = None  # host key, run, shard, rank facts (absent: older)
    combined: CombinedInfo | None = None  # written by pytest-co2 combine
    vcs: CommitInfo | None = None  # the git commit of a saved run (absent: none, or older)
    extra: Mapping[str, Any] = field(default_factory=dict)

    # -- settings as written -----------------------------------------------------------------
    def setting(self, key: str, default: Any = None) -> Any:
        """A value of the run's settings (``None`` or ``default`` when absent)."""
        value = self.settings.get(key)
        return default if value is None else value

    def ended(self, *, exit_status: int | None, interrupted: bool) -> SessionInfo:
        """This block with how and when the run ended (now)."""
        return replace(
            self,
            exit_status=exit_status,
            interrupted=interrupted,
            finished=_dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        )

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "pytest_co2_version": self.pytest_co2_version,
            "started": self.started,
            "host": self.host,
            "python": self.python,
            "cpu_model": self.cpu_model,
            "cpu_estimate": None if self.cpu_estimate is None else self.cpu_estimate.to_dict(),
            "cpu_tdp_w": self.cpu_tdp_w,
            "gpus": list(self.gpus),
            "backend": self.backend,
            "backend_notes": list(self.backend_notes),
            "intensity": None if self.intensity is None else self.intensity.to_dict(),
            "settings": dict(self.settings),
        }
        if self.workers is not None:
            d["workers"] = {k: w.to_dict() for k, w in self.workers.items()}
        d["exclusive"] = None if self.exclusive is None else self.exclusive.to_dict()
        if self.idle is not None:
            d["idle"] = self.idle.to_dict()
        d["runtime"] = self.runtime
        if self.intensity_forecast is not None:
            d["intensity_forecast"] = [p.to_dict() for p in self.intensity_forecast]
        d["xdist_workers"] = self.xdist_workers
        d["exit_status"] = self.exit_status
        d["interrupted"] = self.interrupted
        d["finished"] = self.finished
        if self.recovered_from is not None:
            d["recovered_from"] = self.recovered_from
        if self.rerendered is not None:
            d["rerendered"] = self.rerendered.to_dict()
        if self.origin is not None:
            d["origin"] = self.origin.to_dict()
        if self.combined is not None:
            d["combined"] = self.combined.to_dict()
        if self.vcs is not None:
            d["vcs"] = self.vcs.to_dict()
        d.update(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "session") -> SessionInfo:
        """The block read back; ReportError names the first bad field (``session.idle``)."""
        if not isinstance(d, Mapping):
            raise ReportError(f"{where}: expected an object")
        values: dict[str, Any] = {}
        for key, value in d.items():
            if key not in _FIELDS:
                continue
            if value is None:
                values[key] = _EMPTY.get(key)
                continue
            try:
                values[key] = _PARSERS[key](value)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise ReportError(
                    f"{where}.{key}: bad value ({type(exc).__name__}: {exc})"
                ) from None
        return cls(**values, extra={k: v for k, v in d.items() if k not in _FIELDS})


def _settings(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected an object, got {value!r}")
    return dict(value)


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "pytest_co2_version": str,
    "started": str,
    "host": str,
    "python": str,
    "cpu_model": str,
    "cpu_estimate": CpuEstimateInfo.from_dict,
    "cpu_tdp_w": float,
    "gpus": strs,
    "backend": str,
    "backend_notes": strs,
    "intensity": lambda v: Intensity.from_dict(dict(v)),
    "settings": _settings,
    "workers": lambda v: {str(k): WorkerFacts.from_dict(w) for k, w in dict(v).items()},
    "exclusive": ExclusiveInfo.from_dict,
    "idle": IdleInfo.from_dict,
    "runtime": str,
    "intensity_forecast": lambda v: tuple(ForecastPoint.from_dict(p) for p in v),
    "xdist_workers": int,
    "exit_status": int,
    "interrupted": bool,
    "finished": str,
    "recovered_from": str,
    "rerendered": RerenderInfo.from_dict,
    "origin": OriginInfo.from_dict,
    "combined": CombinedInfo.from_dict,
    "vcs": CommitInfo.from_dict,
}
_FIELDS = frozenset(_PARSERS)
_EMPTY: dict[str, Any] = {"gpus": (), "backend_notes": (), "settings": {}}  # null: empty


def session_info(
    settings: Mapping[str, Any], opened: Backend | None, started: _dt.datetime, **more: Any
) -> SessionInfo:
    """The session block of this process, which measured with the backend ``opened`` (None
    in an xdist controller, which opens none); ``more``: the fields only the plugin knows (intensity, exclusive, idle...),
    or those it says otherwise (an xdist controller's ``backend``)."""
    from .. import __version__
    from ..backends import find_part
    from ..backends.estimate import EstimateBackend

    est = find_part(opened, EstimateBackend)
    info = SessionInfo(
        pytest_co2_version=__version__,
        started=started.isoformat(timespec="seconds"),
        host=socket.gethostname(),
        python=platform.python_version(),
        cpu_model=(est.cpu_model_name if est is not None else None) or platform.processor(),
        cpu_estimate=None
        if est is None
        else CpuEstimateInfo(
            basis=est.basis,
            idle_w_per_thread=est.idle_w_per_thread,
            full_w_per_thread=est.full_w_per_thread,
            cpus_held=est.cpus_held,
            source=est.power.source,
        ),
        cpu_tdp_w=est.tdp_w if est is not None and est.tdp_from_user else None,
        gpus=tuple(d.label for d in getattr(opened, "devices", ()) if d.kind == "gpu"),
        backend=opened.describe() if opened is not None else None,
        backend_notes=tuple(getattr(opened, "notes", ())),
        settings=dict(settings),
        extra=gpu_extra(opened),
    )
    return replace(info, **more)


def gpu_extra(opened: Backend | None) -> dict[str, Any]:
    """``gpu_counter_periods``: per GPU counter, how its update period was obtained."""
    from ..backends import find_part
    from ..backends.gpu import GpuBackend

    gpu = find_part(opened, GpuBackend)
    periods = gpu.counter_periods if gpu is not None else None
    return {"gpu_counter_periods": periods} if periods else {}
