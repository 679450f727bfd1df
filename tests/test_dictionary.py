"""The incremental dictionary over the store: 2N + 1 entries per add, resume, removal, nearest, and the science check."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from engine.config import Config, ConfigError, DictionarySection, ProjectSection, SearchSection, SpaceSection, \
    TransferSection
from engine.data import Dataset
from engine.similarity.dictionary import Dictionary, nearest, task_rule
from engine.runtime.reporting import JobStopped, RecordingReporter
from engine.data.tasks import TaskDef, build_task
from store import Store




def _source(name: str, seed: int, n_per_class: int = 50) -> Dataset:
    """Three classes, each a fixed random template (distinct per source) plus noise."""
    gen = torch.Generator().manual_seed(seed)
    templates = (torch.rand(3, 1, 28, 28, generator=gen) > 0.6).float() * 200
    x = templates.repeat_interleave(n_per_class, 0) + torch.rand(3 * n_per_class, 1, 28, 28, generator=gen) * 55
    y = torch.arange(3).repeat_interleave(n_per_class)
    return Dataset(name, x.to(torch.uint8), y, ("a", "b", "c"))


SOURCES = {"alpha": _source("alpha", 1), "beta": _source("beta", 2)}


def _builder(taskdef: TaskDef):
    return build_task(taskdef, SOURCES[taskdef.source])


def _cfg(**dictionary) -> Config:
    d = DictionarySection(**{"max_epochs": 1, "batch_size": 32, "fisher_samples": 24, **dictionary})
    return Config(file=None, project=ProjectSection(), dictionary=d, transfer=TransferSection(),
                  space=SpaceSection(), search=SearchSection(), sources={}, tasks=(), target=None)


TASKS = [TaskDef(name=f"{s}-{c}", source=s, positive=(c,)) for s in ("alpha", "beta") for c in ("a", "b")]


class StopAfter(RecordingReporter):
    """Requests a stop at the first checkpoint after `n` events named `event`."""

    def __init__(self, event: str, n: int):
        super().__init__()
        self.event, self.n = event, n

    def check(self) -> None:
        if sum(1 for e, _ in self.events if e == self.event) >= self.n:
            raise JobStopped()


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "s.zarr", "w", create=True) as st:
        yield st


def _count(rep, name):
    return sum(1 for e, _ in rep.events if e == name)


def test_incremental_add_computes_exactly_2n_plus_1(store):
    rep = RecordingReporter()
    dic = Dictionary(store, _cfg(), "cpu", rep, task_builder=_builder)
    for n, t in enumerate(TASKS[:3]):
        before = _count(rep, "distance")
        tid = dic.add_task(t)
        assert _count(rep, "distance") - before == 2 * n + 1
        assert [d["task_id"] for e, d in rep.events if e == "task_added"][-1] == tid
    m = store.distances("fisher")
    assert m.value.shape == (3, 3) and not np.isnan(m.value).any()
    assert np.all(np.diag(m.value) == 0) and np.all(m.std == 0)
    off = m.value[~np.eye(3, dtype=bool)]
    assert np.all((off > 0) & (off <= 1))
    assert not np.allclose(m.value, m.value.T)          # asymmetric
    # a stored entry is what recomputing the pair gives (deterministic on the CPU)
    fresh = Dictionary(store, _cfg(), "cpu", task_builder=_builder)
    assert fresh.pair("fisher", m.ids[0], m.ids[2])[0] == pytest.approx(float(m.value[0, 2]), rel=1e-5)
    attrs = store.task(m.ids[0])
    assert attrs["rule"] == "is a" and attrs["role"] == "base" and attrs["status"] == "ready"
    assert attrs["num_classes"] == 2 and attrs["class_names"] == ["rest", "a"] and attrs["probe_arch"] == "cnn"
    assert attrs["n_train"] > 0 and attrs["n_val"] > 0 and attrs["n_test"] > 0 and attrs["best_genotype"] is None
    assert isinstance(attrs["representative"], bool) and 0 <= attrs["val_acc"] <= 1
    assert attrs["definition"]["positive"] == ["a"]
    assert store.load_fisher(m.ids[0]).dtype == np.float32
    assert store.distances("fisher").params["fisher_samples"] == 24
    names = {e for e, _ in rep.events}
    assert {"task_added", "probe_progress", "probe_done", "distance", "job_progress"} <= names


def test_interrupted_build_resumes_without_recomputing(tmp_path, store):
    # Reference: an uninterrupted build in another store.
    with Store.open(tmp_path / "ref.zarr", "w", create=True) as ref_store:
        Dictionary(ref_store, _cfg(), "cpu", task_builder=_builder).ensure(TASKS[:3])
        ref = ref_store.distances("fisher")

    rep = StopAfter("distance", 6)   # 1 + 3 for the first two tasks, then 2 of the third's 5
    with pytest.raises(JobStopped):
        Dictionary(store, _cfg(), "cpu", rep, task_builder=_builder).ensure(TASKS[:3])
    partial = store.distances("fisher")
    assert np.isnan(partial.value).sum() == 3

    rep2 = RecordingReporter()
    ids = Dictionary(store, _cfg(), "cpu", rep2, task_builder=_builder).ensure(TASKS[:3])
    assert ids == ref.ids
    assert _count(rep2, "probe_progress") == 0 and _count(rep2, "task_added") == 0   # probes reused
    assert _count(rep2, "distance") == 3                                                # only the missing pairs
    np.testing.assert_allclose(store.distances("fisher").value, ref.value, rtol=1e-5)

    rep3 = RecordingReporter()
    Dictionary(store, _cfg(), "cpu", rep3, task_builder=_builder).ensure(TASKS[:3])
    assert _count(rep3, "distance") == 0 and _count(rep3, "probe_progress") == 0


def test_interrupted_training_is_completed(store):
    rep = StopAfter("probe_progress", 2)   # stops inside the second task's training
    with pytest.raises(JobStopped):
        Dictionary(store, _cfg(), "cpu", rep, task_builder=_builder).ensure(TASKS[:2])
    second = store.task_ids()[1]
    assert store.task(second)["status"] == "training" and not store.has_probe(second)
    rep2 = RecordingReporter()
    Dictionary(store, _cfg(), "cpu", rep2, task_builder=_builder).ensure(TASKS[:2])
    assert [d["task_id"] for e, d in rep2.events if e == "probe_done"] == [second]
    assert not np.isnan(store.distances("fisher").value).any()


def test_remove_and_nearest(store):
    rep = RecordingReporter()
    dic = Dictionary(store, _cfg(), "cpu", rep, task_builder=_builder)
    dic.ensure(TASKS)
    target = dic.add_task(TaskDef(name="target", source="alpha", positive=("c",)), role="target")
    assert store.task(target)["role"] == "target"
    near = dic.nearest("target", k=3)
    assert len(near) == 3 and [n.distance for n in near] == sorted(n.distance for n in near)
    m = store.distances("fisher")
    column = {i: float(m.value[m.index(i), m.index(target)]) for i in m.ids if i != target}
    assert [n.task_id for n in near] == sorted(column, key=column.get)[:3]
    assert near[0].name in {t.name for t in TASKS} and near[0].std == 0.0
    # a second target is never offered as a neighbour
    dic.add_task(TaskDef(name="target2", source="alpha", positive=("c",), seed=1), role="target")
    assert "target2" not in [n.name for n in nearest(store, "target", k=10)]
    assert len(nearest(store, "target", k=10)) == 4

    gone = dic.remove_task("alpha-a")
    assert gone not in store.task_ids() and gone not in store.distances("fisher").ids
    assert store.distances("fisher").value.shape == (5, 5)
    assert ("task_removed", {"task_id": gone, "name": "alpha-a"}) in rep.events
    assert "alpha-a" not in [n.name for n in nearest(store, "target", k=10)]
    # adding it back computes its row and column only
    before = _count(rep, "distance")
    dic.add_task(TASKS[0])
    assert _count(rep, "distance") - before == 2 * 5 + 1
    with pytest.raises(ValueError, match="k must be"):
        nearest(store, "target", k=0)


def test_seeds_store_mean_and_std(store):
    cfg = _cfg(seeds=2)
    dic = Dictionary(store, cfg, "cpu", task_builder=_builder)
    dic.ensure(TASKS[:2])
    a, b = store.task_ids()
    assert store.has_probe(a, 1) and store.load_fisher(a, 1) is not None
    m = store.distances("fisher")
    assert np.all(m.std[~np.eye(2, dtype=bool)] > 0)
    d0, d1 = dic.pair_values("fisher", a, b)
    assert float(m.value[0, 1]) == pytest.approx((d0 + d1) / 2, rel=1e-5)
    assert float(m.std[0, 1]) == pytest.approx(abs(d0 - d1) / np.sqrt(2), rel=1e-4)
    assert len(store.task(a)["val_accs"]) == 2


def test_changed_settings_are_refused(store):
    Dictionary(store, _cfg(), "cpu", task_builder=_builder).add_task(TASKS[0])
    with pytest.raises(ConfigError, match="fisher_samples"):
        Dictionary(store, _cfg(fisher_samples=10), "cpu", task_builder=_builder).add_task(TASKS[1])
    with pytest.raises(ValueError, match="already stored with another definition"):
        Dictionary(store, _cfg(), "cpu", task_builder=_builder).add_task(dataclasses.replace(TASKS[0], seed=5))


def test_model_fisher_and_head_included(store):
    dic = Dictionary(store, _cfg(fisher="model", include_head=True), "cpu", task_builder=_builder)
    multi = TaskDef(name="alpha-multi", source="alpha", classes=("a", "b"), other=True)
    dic.ensure([TASKS[0], multi])
    m = store.distances("fisher")
    assert not np.isnan(m.value).any() and m.value[0, 1] > 0 and m.value[1, 0] > 0
    assert task_rule(multi) == "a|b|other" and store.task(m.ids[1])["num_classes"] == 3


def test_rule_strings():
    assert task_rule(TaskDef(name="x", source="s", positive=("3", "5"))) == "is 3 or 5"
    assert task_rule(TaskDef(name="x", source="s", classes=("0", "1"))) == "0|1"


@pytest.fixture(scope="module")
def science(tmp_path_factory):
    """2 mnist-5k tasks, 2 sketches tasks and a uci-digits target on the embedded data, with a CI-sized budget."""
    tmp = tmp_path_factory.mktemp("science")
    cfg = _cfg(fisher_samples=96)
    # min_epochs = max_epochs: equal training budgets, else the distance tracks how long each probe trained.
    cfg = dataclasses.replace(cfg, dictionary=dataclasses.replace(cfg.dictionary, max_epochs=2, min_epochs=2,
                                                                  batch_size=64),
                              project=ProjectSection(data_dir=str(tmp / "data")))
    base = [TaskDef(name="mnist-0", source="mnist-5k", positive=("0",), limit=400),
            TaskDef(name="mnist-3", source="mnist-5k", positive=("3",), limit=400),
            TaskDef(name="sketch-circle", source="sketches", positive=("circle",), limit=400),
            TaskDef(name="sketch-square", source="sketches", positive=("square",), limit=400)]
    target = TaskDef(name="uci-3", source="uci-digits", positive=("3",), limit=300)
    with Store.open(tmp / "sci.zarr", "w", create=True) as st:
        dic = Dictionary(st, cfg, "cpu")
        dic.ensure(base)
        dic.ensure([target], role="target")
        yield st, dic


def test_science_same_source_closer_than_cross_source(science):
    st, _ = science
    m = st.distances("fisher")
    src = {t["id"]: t["source"] for t in st.list_tasks()}
    same, cross = [], []
    for i, a in enumerate(m.ids):
        for j, b in enumerate(m.ids):
            if i == j or "uci-digits" in (src[a], src[b]):
                continue
            (same if src[a] == src[b] else cross).append(float(m.value[i, j]))
    assert np.mean(same) < np.mean(cross), (same, cross)


def test_science_uci_target_nearest_is_mnist(science):
    _, dic = science
    near = dic.nearest("uci-3", k=2)
    assert near[0].name.startswith("mnist-"), near


def test_transfer_distances_fill_the_other_matrix(store):
    cfg = dataclasses.replace(_cfg(), transfer=TransferSection(epochs=1, finetune_epochs=1, prune_step=0.25,
                                                               max_samples=64, batch_size=32))
    rep = RecordingReporter()
    dic = Dictionary(store, cfg, "cpu", rep, task_builder=_builder)
    dic.ensure(TASKS[:2])
    assert store.distances("transfer").ids == []
    assert dic.compute_distances("transfer") == 4
    m = store.distances("transfer")
    assert np.all(np.diag(m.value) == 0) and not np.isnan(m.value).any()
    assert np.all((m.value >= 0) & (m.value <= 100))
    assert store.distances("transfer").params["transfer"]["max_samples"] == 64
    assert dic.compute_distances("transfer") == 0
    assert nearest(store, TASKS[0].name, k=1, method="transfer")[0].name == TASKS[1].name


def test_probe_protocol_is_part_of_the_distance_definition(store):
    dic = Dictionary(store, _cfg(), "cpu", RecordingReporter(), task_builder=_builder)
    dic.ensure(TASKS[:1])
    changed = dataclasses.replace(_cfg(), dictionary=dataclasses.replace(_cfg().dictionary, min_epochs=2))
    with pytest.raises(ConfigError, match="min_epochs"):
        Dictionary(store, changed, "cpu", RecordingReporter(), task_builder=_builder).ensure(TASKS[:2])


def test_shared_body_probes_share_one_body_and_the_embedding_form_is_symmetric(store):
    cfg = dataclasses.replace(_cfg(fisher_body="shared", shared_epochs=1, fisher_form="embedding"), tasks=tuple(TASKS))
    dic = Dictionary(store, cfg, "cpu", task_builder=_builder, source_loader=SOURCES.__getitem__)
    ids = dic.ensure(TASKS)
    bodies = [{k: v for k, v in store.load_probe(t, 0).items() if k.startswith("body.")} for t in ids]
    for other in bodies[1:]:
        assert all(np.array_equal(bodies[0][k], other[k]) for k in bodies[0])
    heads = [store.load_probe(t, 0)["head.weight"] for t in ids]
    assert not np.array_equal(heads[0], heads[1])
    # the task's `epochs` are the shared body's shared_epochs, and the record says so (issue 23 item 5)
    assert all(store.task(t)["probe_body"] == "shared" and store.task(t)["epochs"] == 1 for t in ids)
    m = store.distances("fisher")
    off = ~np.eye(len(ids), dtype=bool)
    assert np.all(m.value[off] > 0)
    np.testing.assert_allclose(m.value, m.value.T, atol=1e-6)
    assert store.distances("fisher").params["fisher_body"] == "shared"
    # A second dictionary on the same store recovers the body from a stored probe instead of training another.
    again = Dictionary(store, cfg, "cpu", task_builder=_builder, source_loader=lambda name: pytest.fail("retrained"))
    extra = TaskDef(name="alpha-c", source="alpha", positive=("c",))
    tid = again.add_task(extra)
    body = {k: v for k, v in store.load_probe(tid, 0).items() if k.startswith("body.")}
    assert all(np.array_equal(bodies[0][k], body[k]) for k in body)


def test_published_fisher_settings_are_not_recorded_as_new_keys(store):
    params = Dictionary(store, _cfg(), "cpu", task_builder=_builder).method_params("fisher")
    assert "fisher_body" not in params and "fisher_form" not in params


def test_per_layer_normalisation_is_recorded_and_changes_the_distances(tmp_path):
    values = {}
    for norm in ("global", "layer"):
        with Store.open(tmp_path / f"{norm}.zarr", "w", create=True) as st:
            dic = Dictionary(st, _cfg(fisher_norm=norm), "cpu", task_builder=_builder)
            dic.ensure(TASKS[:3])
            values[norm] = st.distances("fisher").value.copy()
            assert ("fisher_norm" in st.distances("fisher").params) == (norm == "layer")
    off = ~np.eye(3, dtype=bool)
    assert np.all(values["layer"][off] > 0) and not np.allclose(values["layer"], values["global"])


def test_domain_form_separates_sources_is_symmetric_and_label_free(tmp_path):
    """fisher_form = "domain": each task's head-free Fisher of the shared body on its inputs. Tasks of one source share
    their inputs' distribution, so each task's nearest is its source-mate; relabelling a task's classes moves nothing."""
    cfg = dataclasses.replace(_cfg(fisher_body="shared", shared_epochs=1, fisher_form="domain"), tasks=tuple(TASKS))
    with Store.open(tmp_path / "d.zarr", "w", create=True) as st:
        dic = Dictionary(st, cfg, "cpu", task_builder=_builder, source_loader=SOURCES.__getitem__)
        ids = dic.ensure(TASKS)
        m = st.distances("fisher")
        assert m.params["fisher_form"] == "domain"
        np.testing.assert_allclose(m.value, m.value.T, atol=1e-6)
        for tid in ids:
            near = nearest(st, tid, k=1)[0]
            assert near.name.split("-")[0] == st.task(tid)["name"].split("-")[0]
        floor = dic.noise_floor("fisher")
        assert "halves" in floor["kind"] and "domain" in floor["kind"]
        cross = [m.value[i, j] for i in range(4) for j in range(4)
                 if st.task(m.ids[i])["source"] != st.task(m.ids[j])["source"]]
        assert max(v[0] for v in floor["distances"].values()) < min(cross)
        # another labelling of alpha's inputs (3-way instead of one-vs-rest) lands next to alpha's tasks
        fid = dic.add_task(TaskDef(name="alpha-abc", source="alpha", classes=("a", "b", "c")))
        assert nearest(st, fid, k=1)[0].name.startswith("alpha")
