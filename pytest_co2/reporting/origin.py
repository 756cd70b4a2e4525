"""Where a report came from: the host key, the run, the shard and the rank facts (pure).

A report's ``session.origin`` block lets ``pytest-co2 combine`` join the reports of a
sharded CI run or of a cluster job: readings of node-level devices (a RAPL package, a
machine's idle share, a GPU) from processes that shared one host at the same time are
counted once, by the reader this module elects.

Everything is read from a mapping of environment variables and a host reader
(:data:`HOST_READER`, replaceable in tests), never from globals directly.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from dataclasses import field
from typing import Any

from ..frozen import Frozen, record

BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"


def read_host() -> tuple[str, str | None]:
    """(host name, boot id or None where the kernel gives none)."""
    try:
        with open(BOOT_ID_PATH, encoding="ascii") as f:
            boot_id: str | None = f.read().strip() or None
    except (OSError, UnicodeDecodeError):
        boot_id = None
    return socket.gethostname(), boot_id


#: The host reader: tests replace it to put two processes on two simulated hosts.
HOST_READER: Callable[[], tuple[str, str | None]] = read_host

# The run: the first variable (pair) set names it.
_RUN_VARS: tuple[tuple[str, ...], ...] = (
    ("GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT"),
    ("CI_PIPELINE_ID",),
    ("SLURM_JOB_ID",),
    ("TORCHELASTIC_RUN_ID",),
)
# The rank facts, by a fixed precedence: torchrun, then SLURM, then Open MPI, then MPICH.
_LOCAL_RANK = ("LOCAL_RANK", "SLURM_LOCALID", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID")
_RANK = ("RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK")
_NODE_RANK = ("GROUP_RANK", "SLURM_NODEID")
_LOCAL_WORLD = ("LOCAL_WORLD_SIZE", "SLURM_NTASKS_PER_NODE", "OMPI_COMM_WORLD_LOCAL_SIZE")


def _first(env: Mapping[str, str], names: tuple[str, ...]) -> tuple[str | None, int | None]:
    """(variable, value) of the first of ``names`` set to a whole number."""
    for name in names:
        text = env.get(name, "").strip()
        if text.isdigit():
            return name, int(text)
    return None, None


@record
class OriginInfo(Frozen):
    """``session.origin``: host key, run, shard and rank facts of the process that wrote a
    report, and whether it was elected the reader of its host's node-level devices."""

    host: str
    boot_id: str | None = None
    run_id: str | None = None
    run_source: str | None = None  # the option or variable(s) that named the run
    shard: str | None = None  # "2/4" (index/total, 1-based) or a CI job name
    shard_index: int | None = None  # 1-based
    shard_total: int | None = None
    rank: int | None = None
    local_rank: int | None = None
    node_rank: int | None = None
    local_world_size: int | None = None
    rank_source: str | None = None  # the variable the local rank was read from
    node_reader: bool = True  # elected to read node-level devices on its host
    extra: Mapping[str, Any] = field(default_factory=dict)

    _KEYS = (
        "host", "boot_id", "host_key", "run_id", "run_source", "shard", "shard_index",
        "shard_total", "rank", "local_rank", "node_rank", "local_world_size", "rank_source",
        "node_reader", "election",
    )  # fmt: skip

    @property
    def host_key(self) -> str:
        """The machine as booted: host name and boot id (a reboot is another host)."""
        return f"{self.host}/{self.boot_id}" if self.boot_id else self.host

    @property
    def order(self) -> tuple[int, int]:
        """The reader precedence on one host: local rank, then global rank (lowest first)."""
        big = 1 << 30
        return (
            big if self.local_rank is None else self.local_rank,
            big if self.rank is None else self.rank,
        )

    @property
    def election(self) -> str:
        """One line: who reads this host's node-level devices, and why."""
        if self.local_rank is None:
            return (
                "no local rank set: the only process on its host, it reads the node-level devices"
            )
        if self.node_reader:
            return f"local rank 0 ({self.rank_source}): reads the node-level devices of its host"
        return (
            f"local rank {self.local_rank} ({self.rank_source}): local rank 0 reads the node-level "
            "devices; pytest-co2 combine counts only this process's own (per-process) readings"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "boot_id": self.boot_id,
            "host_key": self.host_key,
            "run_id": self.run_id,
            "run_source": self.run_source,
            "shard": self.shard,
            "shard_index": self.shard_index,
            "shard_total": self.shard_total,
            "rank": self.rank,
            "local_rank": self.local_rank,
            "node_rank": self.node_rank,
            "local_world_size": self.local_world_size,
            "rank_source": self.rank_source,
            "node_reader": self.node_reader,
            "election": self.election,
            **self.extra,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OriginInfo:
        def opt_int(key: str) -> int | None:
            return None if d.get(key) is None else int(d[key])

        def opt_str(key: str) -> str | None:
            return None if d.get(key) is None else str(d[key])

        return cls(
            host=str(d["host"]),
            boot_id=opt_str("boot_id"),
            run_id=opt_str("run_id"),
            run_source=opt_str("run_source"),
            shard=opt_str("shard"),
            shard_index=opt_int("shard_index"),
            shard_total=opt_int("shard_total"),
            rank=opt_int("rank"),
            local_rank=opt_int("local_rank"),
            node_rank=opt_int("node_rank"),
            local_world_size=opt_int("local_world_size"),
            rank_source=opt_str("rank_source"),
            node_reader=bool(d.get("node_reader", True)),
            extra={k: v for k, v in d.items() if k not in cls._KEYS},
        )


def run_of(env: Mapping[str, str], run_id: str | None = None) -> tuple[str | None, str | None]:
    """(run id, what named it): ``--co2-run-id``, else the first CI or cluster variable."""
    if run_id:
        return run_id, "--co2-run-id"
    for names in _RUN_VARS:
        if env.get(names[0], "").strip():
            values = [env.get(n, "").strip() for n in names]
            return "-".join(v for v in values if v), "+".join(names)
    return None, None


def shard_of(
    env: Mapping[str, str], group: int | None = None, splits: int | None = None
) -> tuple[str | None, int | None, int | None]:
    """(shard, 1-based index, total): pytest-split's ``--group k --splits N``, else GitLab's
    ``CI_NODE_INDEX``/``CI_NODE_TOTAL``, else ``PYTEST_CO2_SHARD`` (e.g. a matrix job's name)."""
    index, total = group, splits
    if index is None:
        _, index = _first(env, ("CI_NODE_INDEX",))
        _, total = _first(env, ("CI_NODE_TOTAL",))
    if index is not None:
        return (f"{index}/{total}" if total else str(index)), index, total
    name = env.get("PYTEST_CO2_SHARD", "").strip()
    return (name or None), None, None


def detect(
    env: Mapping[str, str],
    *,
    run_id: str | None = None,
    group: int | None = None,
    splits: int | None = None,
) -> OriginInfo:
    """This process's origin, from ``env``, the host reader and pytest-split's options."""
    host, boot_id = HOST_READER()
    run, run_source = run_of(env, run_id)
    shard, index, total = shard_of(env, group, splits)
    rank_source, local_rank = _first(env, _LOCAL_RANK)
    _, rank = _first(env, _RANK)
    _, node_rank = _first(env, _NODE_RANK)
    _, local_world = _first(env, _LOCAL_WORLD)
    return OriginInfo(
        host=host,
        boot_id=boot_id,
        run_id=run,
        run_source=run_source,
        shard=shard,
        shard_index=index,
        shard_total=total,
        rank=rank,
        local_rank=local_rank,
        node_rank=node_rank,
        local_world_size=local_world,
        rank_source=rank_source,
        node_reader=local_rank in (None, 0),
    )
