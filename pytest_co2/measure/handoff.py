"""The parent's backend, handed to the DDP ranks a test starts, through the environment.

A rank (``torch.multiprocessing.spawn``, torchrun, any child process) is a fresh process: it
must measure with the backend the parent actually opened (its fallback, a
``pytest_co2_make_backend`` backend, the idle power it subtracts, its lock policy), not
re-open the requested name. :func:`backend_spec` describes an opened backend as JSON;
:func:`publish` puts it, with the parent's facts, in :data:`HANDOFF_ENV` when the plugin
opens its backend, so every process a test starts inherits it. A rank rebuilds it
(:mod:`.rank`), measuring the rank's own GPU; this half is all the parent imports.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

from ..backends.base import Backend, BackendError

SPEC_VERSION = 1
#: The one environment variable of the hand-off: the parent's :func:`backend_spec` and facts.
HANDOFF_ENV = "PYTEST_CO2_HANDOFF"


def _part_spec(backend: Any) -> dict[str, Any]:
    """One opened backend as a JSON-safe dict that :func:`_open_part` rebuilds."""
    from ..backends.estimate import EstimateBackend

    kind = type(backend).__module__.rsplit(".", 1)[-1]
    if isinstance(backend, EstimateBackend):
        return {
            "type": "estimate",
            "cpu_tdp_w": backend.tdp_w if backend.tdp_from_user else None,
            "memory_w_per_gb": backend.memory_w_per_gb,
            "watts_per_thread": None
            if backend.watts_override is None
            else list(backend.watts_override),
            "cpu_share": backend.cpu_share,
        }
    from ..backends.constant import ConstantBackend  # here: most runs hand on an estimate

    if isinstance(backend, ConstantBackend):
        return {"type": "constant", "power_w": backend.power_w}
    if kind == "nvml" and type(backend).__name__ == "NvmlBackend":
        sel = backend.selection
        return {
            "type": "nvml",
            "poll_interval_s": backend.poll_interval_s,
            "gpus": [sel.mode, list(sel.entries)],
        }
    if kind == "rapl" and type(backend).__name__ == "RaplBackend":
        return {
            "type": "rapl",
            "root": str(backend.root),
            "poll_interval_s": backend.poll_interval_s,
        }
    if kind == "carbontracker_adapter":
        return {"type": "carbontracker"}
    rank_kwargs = getattr(backend, "rank_kwargs", None)
    kwargs = rank_kwargs() if callable(rank_kwargs) else {}
    cls = type(backend)
    return {"type": "factory", "factory": f"{cls.__module__}:{cls.__qualname__}", "kwargs": kwargs}


def backend_spec(
    backend: Any,
    *,
    idle_w: Sequence[float] | None = None,
    idle_s: float | None = None,
    policy: Any = None,
) -> dict[str, Any]:
    """A JSON-safe description of the backend this process opened, for DDP ranks.

    ``idle_w`` (per device, as subtracted by the parent's meter) travels by device id;
    ``idle_s`` lets a rank measure the idle power of a device the parent did not measure;
    ``policy`` (an :class:`~pytest_co2.measure.lock_policy.Policy`) says whether windows lock. A
    backend from a hook is rebuilt as ``cls(**backend.rank_kwargs())`` in the rank (define
    ``rank_kwargs()`` returning JSON-safe keyword arguments; none: ``cls()``).
    """
    parts = getattr(backend, "parts", None)
    part_specs = [_part_spec(p) for p in parts] if parts is not None else [_part_spec(backend)]
    spec: dict[str, Any] = {
        "version": SPEC_VERSION,
        "name": backend.name,
        "composite": parts is not None,
        "parts": part_specs,
        "notes": list(backend.notes),
        "idle": None,
        "lock": None,
    }
    if idle_w:
        spec["idle"] = {
            "w": {d.id: float(w) for d, w in zip(backend.devices, idle_w, strict=False)},
            "seconds": idle_s,
        }
    if policy is not None and getattr(policy, "mode", None) == "lock":
        spec["lock"] = {"lock_dir": policy.lock_dir, "reason": policy.reason}
    json.dumps(spec)  # fails here, in the parent, if a hook's kwargs are not JSON-safe
    return spec


# -- the environment hand-off ---------------------------------------------------------------


def publish(
    backend: Backend,
    *,
    idle_w: Sequence[float] | None = None,
    idle_s: float | None = None,
    policy: Any = None,
    env: MutableMapping[str, str] | None = None,
) -> Callable[[], None]:
    """Put this process's opened backend (and its pid and host) in :data:`HANDOFF_ENV`, for
    every process started after; returns the call that restores what was there before.
    A backend that cannot be described (a hook's without JSON-safe ``rank_kwargs``) is
    handed as its error: a rank then falls back, saying why."""
    env = os.environ if env is None else env
    before = env.get(HANDOFF_ENV)
    try:
        spec = backend_spec(backend, idle_w=idle_w, idle_s=idle_s, policy=policy)
    except Exception as exc:  # a rank falls back with this reason; the parent goes on
        spec = {"version": SPEC_VERSION, "name": backend.name, "error": f"{exc}"}
    spec["parent"] = {"pid": os.getpid(), "host": socket.gethostname()}
    env[HANDOFF_ENV] = json.dumps(spec)

    def restore() -> None:
        if before is None:
            env.pop(HANDOFF_ENV, None)
        else:
            env[HANDOFF_ENV] = before

    return restore


def handed_spec(env: MutableMapping[str, str] | None = None) -> dict[str, Any] | None:
    """The spec a pytest-co2 session handed to this process, None when there is none."""
    text = (os.environ if env is None else env).get(HANDOFF_ENV)
    if not text:
        return None
    try:
        spec = json.loads(text)
    except ValueError:
        raise BackendError(
            f"{HANDOFF_ENV} is not JSON ({text[:40]!r}): expected what pytest-co2 writes there"
        ) from None
    if not isinstance(spec, dict):
        raise BackendError(f"{HANDOFF_ENV} holds {type(spec).__name__}: expected a JSON object")
    return spec
