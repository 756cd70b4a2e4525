"""This process's descendants (DDP ranks, workers a test starts), from /proc.

A GPU library lists the PIDs holding a context on each GPU; a rank that a test spawns holds
its own, so the parent measures the GPUs its descendants use too. Inside a container with
its own PID namespace the library lists host PIDs, which match nothing here: torch's
contexts (this process's own) are what identifies the GPUs in use there.
"""

from __future__ import annotations

import os
from collections import defaultdict


def parent_pids(proc: str = "/proc") -> dict[int, int]:
    """PID -> parent PID of every process readable under ``proc`` (empty where none is)."""
    try:
        names = os.listdir(proc)
    except OSError:
        return {}
    out: dict[int, int] = {}
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(os.path.join(proc, name, "stat"), encoding="utf-8", errors="replace") as fh:
                text = fh.read()
        except OSError:  # ended meanwhile, or not ours to read
            continue
        fields = text.rsplit(")", 1)[-1].split()  # the name may hold spaces and ')'
        if len(fields) >= 2 and fields[1].isdigit():
            out[int(name)] = int(fields[1])
    return out


def descendant_pids(pid: int, proc: str = "/proc") -> set[int]:
    """The living descendants of ``pid`` (children, their children, ...), ``pid`` excluded."""
    children: dict[int, list[int]] = defaultdict(list)
    for child, parent in parent_pids(proc).items():
        children[parent].append(child)
    out: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in out and child != pid:
                out.add(child)
                todo.append(child)
    return out
