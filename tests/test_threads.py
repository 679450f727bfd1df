"""Threads per unit from the CPUs the process may really use: affinity mask and cgroup quota."""
from __future__ import annotations

import os

from engine.runtime.threads import cgroup_cpu_limit, job_threads, unit_threads, usable_cpus


def test_cgroup_quota_v2_and_v1(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_limit(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_limit(tmp_path) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("200000")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert cgroup_cpu_limit(v1) == 2.0
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1")
    assert cgroup_cpu_limit(v1) is None
    assert cgroup_cpu_limit(tmp_path / "missing") is None


def test_usable_cpus_respects_the_affinity_mask():
    assert 1 <= usable_cpus() <= len(os.sched_getaffinity(0))


def test_threads_per_job_and_unit():
    assert job_threads(3) == 3                           # [project] threads wins
    assert job_threads(0) == 1                           # else one, whatever torch's default (the machine's cores)
    assert unit_threads(0, parallel_units=usable_cpus()) == 1
    assert unit_threads(2) == 2
