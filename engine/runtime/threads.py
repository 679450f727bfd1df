"""How many CPU threads this process may really use, and how many torch threads one unit of work should get.

`os.cpu_count()` reports the machine; a container or `taskset` may allow far fewer. Intra-op threads of small
networks beyond the cores actually free oversubscribe them (on a 2-core box with another CPU-bound process, 2 torch
threads ran 8x slower than 1), so jobs and units default to one thread and the parallelism comes from processes
(Ray units, one per usable CPU).
"""
from __future__ import annotations

import math
import os
from pathlib import Path


def cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs allowed by the cgroup's quota (v2 `cpu.max`, or v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`); None if
    unlimited or unknown."""
    try:
        text = (root / "cpu.max").read_text().split()
        if text and text[0] != "max":
            return int(text[0]) / int(text[1])
        return None
    except (OSError, ValueError, IndexError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def usable_cpus() -> int:
    """CPUs this process may run on: the affinity mask, capped by the cgroup quota (at least 1)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    if limit is not None:
        cpus = min(cpus, max(1, math.floor(limit)))
    return max(1, cpus)


def unit_threads(configured: int = 0, parallel_units: int = 1) -> int:
    """Torch threads for one unit: `[project] threads` when set (> 0); otherwise the usable CPUs shared among the
    units running side by side, and 1 for the usual small networks when units share the cores."""
    if configured > 0:
        return configured
    return max(1, usable_cpus() // max(1, parallel_units))


def job_threads(configured: int) -> int:
    """Torch threads for a CPU job in this process: `[project] threads` when set, otherwise one.

    Not the usable CPUs: an intra-op thread that shares its core with any other process makes every barrier of
    every small op wait for it. Measured with benchmarks/bench_contention.py on the 2-core machine: the quick
    pipeline took 231 s with 2 threads (the cores were free when the job started and chose them; other processes
    came later) and 89 s with 1 thread while a competing process ran the whole time. Sampling the free cores at
    the start cannot see load that comes later, and the default networks are too small to gain much from a second
    thread on a quiet machine; `[project] threads` raises it for large networks on a box of one's own."""
    if configured > 0:
        return configured
    return 1
