"""The `ray` executor on a real local Ray cluster (one per module: `ray.init(num_cpus=2)`, started in this process):
the dictionary built from units equals the local build, worker progress reaches the job's reporter, a SIGKILLed
worker's unit is retried with an identical result, and a cluster without GPUs refuses `gpus_per_job = 1` before
anything is written."""
from __future__ import annotations

import dataclasses
import os
import re
import signal
import time

import numpy as np
import pytest
import torch

ray = pytest.importorskip("ray", reason="the ray extra (pip install 'tanas-tui[ray]') is part of .[test]")

from engine.config import (Config, ConfigError, DictionarySection, ExecutorSection, ProjectSection,  # noqa: E402
                           SearchSection, SpaceSection, TransferSection)
from engine.data import Dataset  # noqa: E402
from engine.data.tasks import TaskDef, build_task  # noqa: E402
from engine.runtime.reporting import JobStopped, RecordingReporter  # noqa: E402
from engine.service.executor import RayExecutor, make_executor  # noqa: E402
from engine.similarity.dictionary import Dictionary  # noqa: E402
from store import Store  # noqa: E402
from ui_fixtures import async_test, fixture_store, make_app, settle  # noqa: E402,F401
from tests.synthetic import tiny_project  # noqa: E402


def _source(name: str, seed: int, n_per_class: int = 50) -> Dataset:
    gen = torch.Generator().manual_seed(seed)
    templates = (torch.rand(3, 1, 28, 28, generator=gen) > 0.6).float() * 200
    x = templates.repeat_interleave(n_per_class, 0) + torch.rand(3 * n_per_class, 1, 28, 28, generator=gen) * 55
    y = torch.arange(3).repeat_interleave(n_per_class)
    return Dataset(name, x.to(torch.uint8), y, ("a", "b", "c"))


SOURCES = {"alpha": _source("alpha", 1), "beta": _source("beta", 2)}
TASKS = [TaskDef(name=f"{s}-{c}", source=s, positive=(c,)) for s in ("alpha", "beta") for c in ("a", "b")]
MULTI = TaskDef(name="alpha-multi", source="alpha", classes=("a", "b"), other=True)


def _builder(taskdef: TaskDef):
    return build_task(taskdef, SOURCES[taskdef.source])


def _cfg(executor: ExecutorSection | None = None, **dictionary) -> Config:
    d = DictionarySection(**{"max_epochs": 1, "batch_size": 32, "fisher_samples": 24, **dictionary})
    return Config(file=None, project=ProjectSection(device="cpu", threads=1), dictionary=d,
                  transfer=TransferSection(), space=SpaceSection(), search=SearchSection(), sources={}, tasks=(),
                  target=None, executor=executor or ExecutorSection())


RAY = ExecutorSection(kind="ray", max_retries=2)


@pytest.fixture(scope="module")
def cluster():
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield
    ray.shutdown()


def _build(path, cfg, tasks, reporter=None, executor=None):
    with Store.open(path, "w", create=True) as st:
        dic = Dictionary(st, cfg, "cpu", reporter or RecordingReporter(), task_builder=_builder, executor=executor)
        dic.ensure(tasks)
        m = st.distances(cfg.dictionary.method)
        probes = {t: st.load_probe(t, 0) for t in st.task_ids()}
        fishers = {t: st.load_fisher(t, s) for t in st.task_ids() for s in range(cfg.dictionary.seeds)}
        return m, probes, fishers, [t["status"] for t in st.list_tasks()]


def _ray_executor(section=RAY):
    ex = make_executor(section, None, threads=1)
    ex.start()
    return ex


def test_start_warms_workers_up_without_holding_cpus(cluster):
    """First in the module, on the fresh cluster: start() has idle workers import the unit modules (torch, the
    search) before any unit of that kind ran, and the warm-up never shows as busy CPUs in the status line."""
    from engine.runtime.reporting import SILENT

    def has_unit_modules() -> bool:   # defined here so Ray ships it by value: running it imports nothing
        import sys

        return "engine.search.searching" in sys.modules

    ex = _ray_executor()
    assert re.fullmatch(r"ray: 1 node, 0/2 CPUs, 0/0 GPUs busy", ex.status()), ex.status()
    deadline, warm = time.monotonic() + 90, False
    while not warm and time.monotonic() < deadline:
        warm = any(v for _, v in ex.completed([ex.submit(has_unit_modules) for _ in range(2)], SILENT))
        time.sleep(0.5)
    ex.close()
    assert warm, "no Ray worker had imported the unit modules"


def test_ray_dictionary_equals_local(cluster, tmp_path):
    """Per-seed probe units + per-probe Fisher units (model Fisher, head included, a 3-class task): same distances
    as local within 1e-6, identical probe weights, worker progress in the job's events, and an incremental add
    writes exactly the new row and column."""
    cfg = _cfg(seeds=2, fisher="model", include_head=True)
    tasks = [TASKS[0], MULTI]
    local = _build(tmp_path / "local.zarr", cfg, tasks)
    rep = RecordingReporter()
    ex = _ray_executor()
    remote = _build(tmp_path / "ray.zarr", dataclasses.replace(cfg, executor=RAY), tasks, rep, ex)
    assert remote[0].ids == local[0].ids
    assert not np.isnan(remote[0].value).any()
    np.testing.assert_allclose(remote[0].value, local[0].value, atol=1e-6)
    np.testing.assert_allclose(remote[0].std, local[0].std, atol=1e-6)
    for tid, state in local[1].items():
        for key, value in state.items():
            np.testing.assert_array_equal(remote[1][tid][key], value)
    assert remote[3] == ["ready"] * 2
    names = [e for e, _ in rep.events]
    # every probe epoch of every (task, seed) unit reached the engine's reporter
    assert sum(1 for e, d in rep.events if e == "probe_progress") == 2 * 2
    assert {(d["name"], d["seed_index"]) for e, d in rep.events if e == "probe_progress"} == \
        {(t.name, s) for t in tasks for s in (0, 1)}
    assert names.count("distance") == 4 and names.count("probe_done") == 2

    # incremental add on the cluster: 2N + 1 new entries, the rest untouched
    with Store.open(tmp_path / "ray.zarr", "w") as st:
        rep2 = RecordingReporter()
        Dictionary(st, dataclasses.replace(cfg, executor=RAY), "cpu", rep2, task_builder=_builder,
                   executor=ex).add_task(TASKS[3])
        assert sum(1 for e, _ in rep2.events if e == "distance") == 2 * 2 + 1
        m = st.distances("fisher")
        assert not np.isnan(m.value).any()
        np.testing.assert_array_equal(m.value[:2, :2], remote[0].value)
    with Store.open(tmp_path / "local.zarr", "w") as st:
        Dictionary(st, cfg, "cpu", task_builder=_builder).add_task(TASKS[3])
        np.testing.assert_allclose(st.distances("fisher").value, m.value, atol=1e-6)


def test_shared_body_forms_on_ray_equal_local(cluster, tmp_path):
    """The default distance (shared body, domain form) and Task2Vec's embedding form on the cluster: the heads are
    fitted on the engine's one body, only own Fishers run as units, and the matrix equals the local build."""
    loader = SOURCES.__getitem__
    for form in ("domain", "embedding"):
        cfg = dataclasses.replace(_cfg(fisher_body="shared", shared_epochs=1, fisher_form=form), tasks=tuple(TASKS))
        out = {}
        for kind, ex in (("local", None), ("ray", _ray_executor())):
            run_cfg = cfg if ex is None else dataclasses.replace(cfg, executor=RAY)
            rep = RecordingReporter()
            with Store.open(tmp_path / f"{form}-{kind}.zarr", "w", create=True) as st:
                Dictionary(st, run_cfg, "cpu", rep, task_builder=_builder, source_loader=loader,
                           executor=ex).ensure(TASKS)
                out[kind] = st.distances("fisher")
                assert out[kind].params["fisher_form"] == form
            if ex is not None:
                # one own-Fisher unit per task, no probe units (heads are fitted in the engine)
                assert not any(e == "probe_progress" for e, _ in rep.events)
        assert out["ray"].ids == out["local"].ids and not np.isnan(out["ray"].value).any()
        np.testing.assert_allclose(out["ray"].value, out["local"].value, atol=1e-6)


def test_transfer_distances_on_ray_equal_local(cluster, tmp_path):
    """`method = "transfer"`: one transfer unit per source probe (task, seed) covering its missing targets; the
    engine writes every pair; the same distances and per-seed values as local within 1e-6. The third task joins a
    dictionary whose probes are stored: its units take stored probes and a probe still training (an object ref)."""
    cfg = dataclasses.replace(_cfg(seeds=2, method="transfer", max_epochs=2),
                              transfer=TransferSection(epsilon=0.3, epochs=4, finetune_epochs=1, prune_step=0.2,
                                                       lr=1e-2, max_samples=64))
    tasks = [TASKS[0], TASKS[2]]
    local = _build(tmp_path / "local.zarr", cfg, tasks)
    rep = RecordingReporter()
    ex = _ray_executor()
    remote_cfg = dataclasses.replace(cfg, executor=RAY)
    with Store.open(tmp_path / "ray.zarr", "w", create=True) as st:
        dic = Dictionary(st, remote_cfg, "cpu", rep, task_builder=_builder, executor=ex)
        dic.ensure(tasks)
        units = [d["message"] for e, d in rep.events if e == "log" and "transfer units" in d.get("message", "")]
        assert units and "4 transfer units (2 pairs)" in units[0]   # 2 source probes x 2 seeds, 1 target each
        assert {(d["source"], d["target"]) for e, d in rep.events if e == "distance"} == \
            {(a, b) for a in st.task_ids() for b in st.task_ids()}
        m = st.distances("transfer")
        assert not np.isnan(m.value).any() and m.params == local[0].params
        np.testing.assert_allclose(m.value, local[0].value, atol=1e-6)
        np.testing.assert_allclose(m.std, local[0].std, atol=1e-6)
        np.testing.assert_allclose(m.seed_values, local[0].seed_values, atol=1e-6)
        dic.add_task(TASKS[3])
        after = st.distances("transfer")
    with Store.open(tmp_path / "local.zarr", "w") as st:
        Dictionary(st, cfg, "cpu", task_builder=_builder).add_task(TASKS[3])
        want = st.distances("transfer")
        assert after.ids == want.ids and not np.isnan(after.value).any()
        np.testing.assert_allclose(after.value, want.value, atol=1e-6)
        np.testing.assert_allclose(after.std, want.std, atol=1e-6)
        np.testing.assert_allclose(after.seed_values, want.seed_values, atol=1e-6)
        off = want.value[~np.eye(len(want.ids), dtype=bool)]
        assert ((off > 0) & (off < 100)).all()   # adequate transform networks, pruned: a real measurement


class KillFirstWorker(RecordingReporter):
    """SIGKILLs the worker of the first unit that reports its start (once)."""

    def __init__(self):
        super().__init__()
        self.killed: int | None = None

    def emit(self, event, **data):
        super().emit(event, **data)
        m = re.search(r"unit probe (\S+) seed 0 started on pid (\d+)", str(data.get("message", "")))
        if m and self.killed is None:
            self.killed = int(m.group(2))
            self.victim = m.group(1)
            os.kill(self.killed, signal.SIGKILL)


def test_killed_worker_is_retried_with_identical_result(cluster, tmp_path):
    cfg = _cfg(max_epochs=12, min_epochs=12)
    tasks = [TASKS[0], TASKS[3]]
    rep = KillFirstWorker()
    remote = _build(tmp_path / "ray.zarr", dataclasses.replace(cfg, executor=RAY), tasks, rep, _ray_executor())
    assert rep.killed is not None
    starts = [d["message"] for e, d in rep.events if e == "log" and f"unit probe {rep.victim} seed 0" in d["message"]]
    assert len(starts) == 2 and str(rep.killed) not in starts[1]  # ran again, in another worker
    local = _build(tmp_path / "local.zarr", cfg, tasks)
    np.testing.assert_allclose(remote[0].value, local[0].value, atol=1e-6)
    for tid, state in local[1].items():
        for key, value in state.items():
            np.testing.assert_array_equal(remote[1][tid][key], value)


class StopOnFirstEpoch(RecordingReporter):
    def check(self):
        if any(e == "probe_progress" for e, _ in self.events):
            raise JobStopped()


def test_stop_cancels_the_outstanding_units(cluster, tmp_path):
    import time

    cfg = dataclasses.replace(_cfg(max_epochs=40, min_epochs=40), executor=RAY)
    with pytest.raises(JobStopped):
        _build(tmp_path / "s.zarr", cfg, TASKS[:3], StopOnFirstEpoch(), _ray_executor())
    deadline = time.monotonic() + 30
    while ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ray.available_resources().get("CPU", 0) == 2  # no unit of the stopped job holds a CPU any more


def _busy_readings(tmp_path) -> list:
    """An add_task job on the cluster (one task, two probe seeds: two units for the two CPUs); its executor_status
    events, each rebuilt as a protocol message (which validates it)."""
    from engine.config import load_config
    from engine.service import protocol as P
    from engine.service.context import JobContext
    from engine.service.jobs import execute

    (tmp_path / "busy.toml").write_text(BUSY)
    cfg = load_config(tmp_path / "busy.toml", {})
    with Store.open(cfg.store_path, "w", create=True) as st:
        rep = RecordingReporter()
        execute("add_task", {"task": {"name": "circle", "source": "sketches", "positive": ["circle"]}},
                JobContext(st, cfg, "cpu", rep, "j-busy"))
    return [P.ExecutorStatus(seq=i + 1, **d) for i, (e, d) in enumerate(rep.events) if e == "executor_status"]


BUSY = """
[project]
store = "busy.zarr"
device = "cpu"
threads = 1

[dictionary]
seeds = 2
max_epochs = 40
min_epochs = 40
batch_size = 32
fisher_samples = 16

[executor]
kind = "ray"

[sources.sketches]
per_class = 60
seed = 0
"""


@async_test
async def test_busy_counts_are_refreshed_while_units_run_and_reach_the_status_line(cluster, tmp_path, fixture_store):
    """Through the engine's messages: a reading when the job connects (nothing of it running yet), new readings
    while its two probe units hold both CPUs. Through the UI pilot: the status line shows each newest reading."""
    deadline = time.monotonic() + 30   # earlier tests' cancelled units give their CPUs back first
    while ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    readings = _busy_readings(tmp_path)
    busy = [float(re.fullmatch(r"ray: 1 node, ([\d.]+)/2 CPUs, 0/0 GPUs busy", r.executor).group(1)) for r in readings]
    assert busy[0] == 0 and max(busy) == 2, busy
    assert all(r.job == "j-busy" for r in readings)
    assert all(a.executor != b.executor for a, b in zip(readings, readings[1:]))   # sent when the reading changes

    app = make_app(fixture_store)
    async with app.run_test(size=(250, 30)) as pilot:
        await settle(app, pilot)
        for reading in (readings[0], readings[busy.index(2)]):
            app.ingest([reading])
            await settle(app, pilot)
            line = app.query_one("#status").render().plain
            assert f"executor {reading.executor}" in line, line


def test_gpus_asked_of_a_cluster_without_gpus_fail_before_writing(cluster, tmp_path):
    from engine.service.context import JobContext
    from engine.service.jobs import execute

    cfg = dataclasses.replace(_cfg(), executor=ExecutorSection(kind="ray", gpus_per_job=1),
                              tasks=(TASKS[0],))
    with Store.open(tmp_path / "s.zarr", "w", create=True) as st:
        rep = RecordingReporter()
        with pytest.raises(ConfigError, match=r"executor\.gpus_per_job.*1 GPU\(s\) per unit but the Ray cluster has 0"):
            execute("compute_distances", {}, JobContext(st, cfg, "cpu", rep, "j1"))
        assert st.task_ids() == [] and st.distances("fisher").ids == []
        done = [d for e, d in rep.events if e == "job_done"]
        assert done[0]["status"] == "failed"


def test_status_names_nodes_cpus_and_gpus(cluster):
    ex = _ray_executor()
    assert re.fullmatch(r"ray: 1 node, [\d.]+/2 CPUs, 0/0 GPUs busy", ex.status())
    assert make_executor(ExecutorSection()).status() == "local"
    assert isinstance(ex, RayExecutor) and ex.remote and not make_executor(None).remote


PIPELINE = tiny_project(store="{store}", tasks=("circle", "square"), k=2,
                        search='compare = true\nfixed_networks = ["resnet18"]\n')


def _pipeline(tmp_path, name: str, executor: str) -> tuple[dict, dict, list]:
    from engine.config import load_config
    from engine.service.context import JobContext
    from engine.service.jobs import execute

    path = tmp_path / f"{name}.toml"
    path.write_text(PIPELINE.format(store=f"{name}.zarr") + executor)
    cfg = load_config(path, {})
    with Store.open(cfg.store_path, "w", create=True) as st:
        rep = RecordingReporter()
        result = execute("run_pipeline", {}, JobContext(st, cfg, "cpu", rep, name))
        genotypes = {t["name"]: t.get("genotype_hash") for t in st.list_tasks()}
        return result, genotypes, rep.events


def test_pipeline_with_comparison_on_ray_equals_local(cluster, tmp_path):
    """Base genotype searches and every comparison arm as units: same genotypes, nearest tasks and table."""
    local, local_genotypes, _ = _pipeline(tmp_path, "local", "")
    remote, remote_genotypes, events = _pipeline(tmp_path, "ray", '\n[executor]\nkind = "ray"\n')
    totals = {d["stage"]: d["total"] for e, d in events if e == "job_progress"}
    # two base-genotype units; random, FUSE standard, FUSE farthest and ResNet-18 arms (FUSE task-aware is the
    # pipeline's search)
    assert totals["genotype searches"] == 2 and totals["comparison arms"] == 4
    assert sum(1 for e, _ in events if e == "alpha_step") > 0  # worker progress reached the job's events
    assert remote_genotypes == local_genotypes and all(local_genotypes[n] for n in ("circle", "square"))
    assert [r["name"] for r in remote["nearest"]] == [r["name"] for r in local["nearest"]]
    np.testing.assert_allclose([r["distance"] for r in remote["nearest"]], [r["distance"] for r in local["nearest"]],
                               atol=1e-6)
    assert remote["search"]["hash"] == local["search"]["hash"]
    keys = ("architecture", "test_error", "params_m", "run_id")
    assert [{k: r[k] for k in keys} for r in remote["comparison"]] == \
        [{k: r[k] for k in keys} for r in local["comparison"]]
    assert len(remote["comparison"]) == 5
