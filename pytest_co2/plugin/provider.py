"""The backend provider: which backend this process measures with, decided once.

The name is checked at configure time (a built-in, or one a ``pytest_co2_backend_names``
hook declares); the backend itself is opened on first use (the header, the first
measurement, the JSON), so that a run that measures nothing never touches hardware. Under
pytest-xdist the controller never opens one: each worker does, and returns what it opened
(``workeroutput``) for the controller's summary and JSON.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from ..frozen import Frozen, record
from ..options import Settings
from . import xdist

if TYPE_CHECKING:
    from ..backends.base import Backend
    from ..measure.lock_policy import Policy
    from ..measure.window_guard import WindowGuard
    from ..reporting.session_parts import ExclusiveInfo, WorkerFacts

WORKER_FACTS_KEY = "co2"  # in workerinput (controller -> worker) and workeroutput (back)


@record
class HandedFacts(Frozen):
    """What the xdist controller decides once for every worker (``workerinput``)."""

    concurrent: bool = False  # other processes of the run measure at the same time
    lock_dir: str | None = None  # where the --co2-exclusive lock files are

    def to_dict(self) -> dict[str, Any]:
        return {"concurrent": self.concurrent, "lock_dir": self.lock_dir}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HandedFacts:
        lock_dir = d.get("lock_dir")
        return cls(
            concurrent=bool(d.get("concurrent")), lock_dir=str(lock_dir) if lock_dir else None
        )


def backend_names(config: pytest.Config) -> tuple[str, ...]:
    """The built-in backend names plus those that plugins and conftests declare."""
    from ..backends import BACKEND_NAMES

    extra = [n for names in config.hook.pytest_co2_backend_names(config=config) for n in names]
    return tuple(dict.fromkeys([*BACKEND_NAMES, *(str(n).lower() for n in extra)]))


def check_backend_name(config: pytest.Config, spec: str) -> None:
    """UsageError unless ``spec`` is a built-in backend or declared by a hook."""
    if spec == "auto":  # the default: a run that measures nothing imports no backend
        return
    from ..backends import BUILTIN_NAMES

    name = spec.split(":", 1)[0]
    if name in BUILTIN_NAMES:
        return
    names = backend_names(config)
    if spec in names or name in names:
        return
    raise pytest.UsageError(
        f"--co2-backend: unknown backend {spec!r}: expected one of {', '.join(names)} "
        "(plugins add names with the pytest_co2_backend_names hook)"
    )


class BackendProvider:
    """Opens this process's backend once and decides what goes with it: the fallback, the
    cross-process lock policy and the idle power."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.role = xdist.role(config)
        self._backend: Backend | None = None
        self._policy: Policy | None = None
        self._guard: WindowGuard | None = None
        # opened with no shared counter device and no window hooks: the policy ("not
        # needed") and its guard, which does nothing, are made when first asked (the JSON)
        self._undecided: Backend | None = None
        self.idle_w: tuple[float, ...] = ()
        self.pending_warnings: list[Warning] = []
        # facts handed down by the xdist controller (see pytest_configure_node)
        self.handed = HandedFacts.from_dict(
            getattr(config, "workerinput", {}).get(WORKER_FACTS_KEY) or {}
        )
        self.worker_facts: dict[str, WorkerFacts] = {}  # controller: what each worker opened
        self.on_lock_wait: Any = None  # progress callback while a window waits for a lock
        self.idle_notes: list[str] = []  # the idle measurement ran without the lock
        self._warm: dict[str, float] | None = None  # warm idle power, once measured
        self._idle_locked = False  # the last idle measurement held the devices' lock

    @property
    def opened(self) -> bool:
        return self._backend is not None

    @property
    def backend(self) -> Backend:
        """The backend, opened on first use (never in an xdist controller)."""
        if self._backend is None:
            if self.role == "controller":
                raise RuntimeError("the pytest-xdist controller does not measure")
            self._backend = self._open()
            self._decide_policy(self._backend)
            if self.settings.idle:
                self.idle_w = self._measure_idle()
            from ..measure.handoff import publish  # the processes a test starts (DDP ranks)

            idle = self.idle_w if self.settings.subtract_idle else None
            self._unpublish = publish(
                self._backend, idle_w=idle, idle_s=self.settings.idle, policy=self._policy
            )
        return self._backend

    @property
    def policy(self) -> Policy | None:
        """The ``--co2-exclusive`` policy of the opened backend (None before it opens)."""
        if self._undecided is not None:
            self._decide_policy(self._undecided, lazily=False)
        return self._policy

    @property
    def guard(self) -> WindowGuard | None:
        """The meters' window hooks for :attr:`policy` (None before the backend opens)."""
        if self._undecided is not None:
            self._decide_policy(self._undecided, lazily=False)
        return self._guard

    @property
    def lock_free(self) -> bool:
        """Opened without a shared counter device or window hooks: the policy is "not
        needed" (and not made yet)."""
        return self._undecided is not None

    def window_guard(self) -> WindowGuard | None:
        """The guard when meters must call it around their windows, else None."""
        if self.lock_free:
            return None  # no lock, no warning, no window hooks: the guard would do nothing
        guard = self._guard
        return guard if guard is not None and guard.active else None

    def lock_summary(self) -> str | None:
        """The session-summary line about windows run without their lock, if any."""
        return None if self._guard is None else self._guard.summary()

    def _measure_idle(self) -> tuple[float, ...]:
        """Idle power per device, under the devices' lock (another worker's window would
        inflate it); a note says how the lock was held."""
        from ..measure.idle import measure_idle_w

        backend = self._backend
        assert backend is not None
        if self.guard is None:
            return measure_idle_w(backend, self.settings.idle)
        backend.refresh_devices()
        with self.guard.hold() as notes:
            idle = measure_idle_w(backend, self.settings.idle)
        self.idle_notes = [n for n in notes if "NOT locked" in n or "failed" in n]
        self._idle_locked = self.guard.lock is not None and not self.idle_notes
        return idle

    def warm_idle_w(self) -> dict[str, float]:
        """Idle power measured once after the first window that measured a GPU (a GPU idles
        higher after work than before it), under the lock; {} before that or without
        ``--co2-idle``."""
        b = self._backend
        if (
            self._warm is None
            and b is not None
            and self.settings.idle
            and self.guard is not None
            and self.guard.windows > 0
            and any(d.kind == "gpu" for d in b.devices)
        ):
            idle = self._measure_idle()
            self._warm = {d.id: w for d, w in zip(b.devices, idle, strict=False) if d.kind == "gpu"}
        return dict(self._warm or {})

    def _open(self) -> Backend:
        from ..backends import BackendError, BackendWarning, make_backend
        from ..backends.base import Backend
        from ..measure.guard import guard_backend

        spec = self.settings.backend
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                made = self.config.hook.pytest_co2_make_backend(config=self.config, spec=spec)
            except Exception as exc:  # a plugin's backend that cannot open: one line, the end
                _cannot_open(spec, f"{type(exc).__name__}: {exc}")
            if made is not None and not isinstance(made, Backend):
                _cannot_open(
                    spec,
                    f"the pytest_co2_make_backend hook returned {_short(made)}, expected a "
                    "pytest_co2.backends.Backend or None",
                )
            backend: Backend | None = made
            if backend is None:
                cpu = self._cpu_options()
                try:
                    backend = make_backend(spec, **cpu)
                except (BackendError, ValueError) as exc:
                    warnings.warn(
                        f"pytest-co2: backend {spec!r} is unusable here ({exc}); falling back to "
                        "the CPU-time estimate",
                        BackendWarning,
                        stacklevel=1,
                    )
                    backend = make_backend("estimate", **cpu)
                    backend.notes.insert(0, f"requested backend {spec!r} failed: {exc}")
        # Shown when the first measurement is made (a run that measures nothing stays quiet);
        # they are also in the backend's notes, the report header and the JSON.
        self.pending_warnings.extend(w.message for w in caught if isinstance(w.message, Warning))
        return guard_backend(backend, self.settings.read_timeout or None)

    def _cpu_options(self) -> dict[str, Any]:
        """What the CPU estimate needs: the overrides, and this process's share of the CPUs
        when several xdist workers measure at once (each is charged 1/N of their idle)."""
        return {
            "cpu_tdp_w": self.settings.cpu_tdp,
            "cpu_watts_per_thread": self.settings.cpu_watts_per_thread,
            "cpu_share": 1.0 / max(1, xdist.worker_count(self.config)),
            "gpus": self.settings.gpus,
        }

    def _decide_policy(self, backend: Backend, *, lazily: bool = True) -> None:
        from ..backends.base import lockable_devices, window_parts

        if lazily and not lockable_devices(backend.devices) and not window_parts(backend):
            self._undecided = backend  # "not needed", made when asked (see __init__)
            return
        self._undecided = None
        from ..measure.lock_policy import decide
        from ..measure.window_guard import WindowGuard

        s = self.settings
        self._policy = decide(
            s.exclusive,
            backend.devices,
            concurrent=self.handed.concurrent or xdist.under_xdist(self.config),
            source=s.sources.get("exclusive"),
            lock_dir=self.handed.lock_dir or s.lock_dir,
            lock_timeout_s=s.lock_timeout,
        )
        self._guard = WindowGuard(self._policy, on_wait=self.on_lock_wait, backend=backend)
        if self._policy.warning:
            self.pending_warnings.append(UserWarning(self._policy.warning))

    def take_warnings(self) -> list[Warning]:
        out, self.pending_warnings = self.pending_warnings, []
        return out

    # -- xdist -----------------------------------------------------------------------------
    def facts_for_workers(self) -> HandedFacts:
        """What the controller decides once for every worker."""
        from ..measure.lock_dir import default_lock_dir

        return HandedFacts(concurrent=True, lock_dir=self.settings.lock_dir or default_lock_dir())

    def facts(self) -> WorkerFacts:
        """What this process opened, for the controller (``workeroutput``) and the JSON."""
        from ..reporting.session import gpu_extra
        from ..reporting.session_parts import WorkerFacts

        if self._backend is None:
            return WorkerFacts()
        b = self._backend
        return WorkerFacts(
            backend=b.describe(),
            notes=tuple(b.notes),
            devices=tuple(b.devices),
            idle_w={d.id: w for d, w in zip(b.devices, self.idle_w, strict=False)},
            exclusive=self.exclusive_info(),
            lock_summary=self.lock_summary(),
            extra={**self.idle_extra(), **gpu_extra(b)},  # gpu_counter_periods
        )

    def idle_extra(self) -> dict[str, Any]:
        """Additions to the idle facts in the JSON: the warm idle power (after the first
        window on a GPU) and whether the idle measurements held the devices' lock."""
        if not self.settings.idle or self._backend is None:
            return {}
        warm = self.warm_idle_w()
        out: dict[str, Any] = {"idle_locked": self._idle_locked}
        if warm:
            out["idle_warm_w"] = warm
        if self.idle_notes:
            out["idle_notes"] = list(self.idle_notes)
        return out

    def exclusive_info(self) -> ExclusiveInfo | None:
        """The lock policy and what the windows met (waits, timeouts), for the JSON."""
        from ..reporting.session_parts import ExclusiveInfo

        if self.policy is None:
            return None
        windows = None
        if self.guard is not None and self.policy.mode == "lock":
            windows = self.guard.to_dict()
        return ExclusiveInfo.from_dict({**self.policy.to_dict(), "windows": windows})

    # -- texts -----------------------------------------------------------------------------
    def describe(self) -> str:
        if self.role == "controller":
            return f"{self.settings.backend}, opened by each pytest-xdist worker (see the JSON)"
        return self.backend.describe()

    def idle_text(self) -> str:
        """e.g. "idle power over 2 s at start: NVIDIA A100 [counter] 61.2 W (not subtracted)"."""
        devs = ", ".join(
            f"{d.label} [{d.method.value}] {w:.3g} W"
            for d, w in zip(self.backend.devices, self.idle_w, strict=False)
        )
        what = (
            "subtracted from every measurement" if self.settings.subtract_idle else "not subtracted"
        )
        return f"idle power over {self.settings.idle:g} s at start: {devs} ({what})"

    def close(self) -> None:
        getattr(self, "_unpublish", lambda: None)()  # the hand-off ends with the backend
        if self._backend is not None:
            try:
                self._backend.close()
            except Exception as exc:  # the run is over: one line, never a traceback
                sys.stderr.write(
                    f"pytest-co2: closing the backend failed: {type(exc).__name__}: {exc}\n"
                )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _cannot_open(spec: str, why: str) -> NoReturn:
    """End the run with one line: the backend a plugin makes cannot open (every test would
    error on it otherwise)."""
    pytest.exit(
        f"pytest-co2: backend {spec!r} could not be opened: {' '.join(why.split())}",
        returncode=pytest.ExitCode.USAGE_ERROR,
    )
