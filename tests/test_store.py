"""The Zarr store: create/open, format check, tasks, probes and Fisher vectors, distances, searches, checkpoints."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from store import NotFound, Store, StoreError, StoreIncompatible
from store import layout


def _tree(path):
    return sorted(
        (os.path.relpath(os.path.join(d, f), path), os.path.getmtime(os.path.join(d, f)))
        for d, _, files in os.walk(path) for f in files
    )


@pytest.fixture
def st(tmp_path):
    with Store.open(tmp_path / "s.zarr", mode="w", create=True, config={"search": {"rounds": 2}}) as store:
        yield store


def test_create_open_reopen(tmp_path):
    path = tmp_path / "s.zarr"
    with Store.open(path, mode="w", create=True, config={"project": {"seed": 3}, "shape": (1, 2)}) as st:
        assert st.writable and st.path == path.absolute() and st.run_dir == path.absolute() / "runs"
        st.add_task("t1", {"name": "mnist-3", "source": "mnist-5k"})
    assert not st.writable
    reader = Store.open(path)
    attrs = reader.attrs
    assert attrs["format"] == layout.FORMAT
    assert attrs["created"]
    assert attrs["config"] == {"project": {"seed": 3}, "shape": [1, 2]}
    assert not reader.writable
    assert reader.task_ids() == ["t1"]
    with Store.open(path, mode="w") as st:
        st.set_config_snapshot({"project": {"seed": 4}})
        assert st.task("t1")["name"] == "mnist-3"
    # create=True on an existing store opens it as is
    with Store.open(path, mode="w", create=True) as st:
        assert st.task_ids() == ["t1"]
        assert st.attrs["config"] == {"project": {"seed": 4}}


def test_missing_and_foreign_paths(tmp_path):
    with pytest.raises(StoreError, match=f"no tanas store at {tmp_path / 'nope.zarr'}"):
        Store.open(tmp_path / "nope.zarr")
    with pytest.raises(StoreError, match="no tanas store"):
        Store.open(tmp_path / "nope.zarr", mode="w")
    assert not (tmp_path / "nope.zarr").exists()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "zarr.json").write_text(json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {}}))
    with pytest.raises(StoreError, match=r"foreign is not a tanas store \(no .tanas-store. format attribute\); `tanas-tui run` creates a store there"):
        Store.open(foreign)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("x")
    with pytest.raises(StoreError, match="is not a tanas store"):
        Store.open(other)
    with pytest.raises(StoreError, match="exists and is not a tanas store"):
        Store.open(other, mode="w", create=True)
    with pytest.raises(StoreError, match="invalid store mode"):
        Store.open(tmp_path / "x", mode="a")


def test_incompatible_format_names_path_and_versions(tmp_path):
    path = tmp_path / "s.zarr"
    Store.open(path, mode="w", create=True).close()
    meta = json.loads((path / "zarr.json").read_text())
    meta["attributes"]["format"] = "tanas-store/2.0"
    (path / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(StoreIncompatible) as info:
        Store.open(path)
    message = str(info.value)
    assert str(path) in message and "tanas-store/2.0" in message and layout.FORMAT in message
    # a newer minor version of the same major format still opens
    meta["attributes"]["format"] = f"tanas-store/{layout.FORMAT_MAJOR}.7"
    (path / "zarr.json").write_text(json.dumps(meta))
    Store.open(path).close()


def test_read_only_never_writes(tmp_path):
    path = tmp_path / "s.zarr"
    with Store.open(path, mode="w", create=True) as st:
        st.add_task("t1", {"name": "a"})
        st.create_search("r1", {}, candidates=2).flush()
    before = _tree(path)
    reader = Store.open(path)
    reader.list_tasks(), reader.distances("fisher"), reader.read_search("r1"), reader.list_searches()
    with pytest.raises(StoreError, match="read-only"):
        reader.add_task("t2", {"name": "b"})
    with pytest.raises(StoreError, match="read-only"):
        reader.open_search_writer("r1")
    with pytest.raises(StoreError, match="read-only"):
        reader.set_distance("fisher", "t1", "t1", 0.0)
    reader.close()
    assert _tree(path) == before
    assert not (path / "runs" / "lock").exists()


def test_tasks_order_attrs_and_errors(st):
    st.add_task("b2", {"name": "two", "source": "mnist-5k", "class_names": ("rest", "3"), "n_train": np.int64(9)})
    st.add_task("a1", {"name": "one", "best_genotype": None})
    st.add_task("c3", {"name": "three"})
    assert st.task_ids() == ["b2", "a1", "c3"]
    assert [t["name"] for t in st.list_tasks()] == ["two", "one", "three"]
    t = st.task("b2")
    assert t == {"id": "b2", "name": "two", "source": "mnist-5k", "class_names": ["rest", "3"], "n_train": 9}
    assert st.find_task("one") == "a1" and st.find_task("c3") == "c3" and st.find_task("b") == "b2"
    with pytest.raises(NotFound, match="no task named 'nine'"):
        st.find_task("nine")
    with pytest.raises(StoreError, match="a task named 'one' already exists"):
        st.add_task("d4", {"name": "one"})
    with pytest.raises(StoreError, match="already exists"):
        st.add_task("a1", {"name": "other"})
    with pytest.raises(StoreError, match="'name'"):
        st.add_task("d4", {"source": "x"})
    with pytest.raises(StoreError, match="invalid task id"):
        st.add_task("../evil", {"name": "evil"})
    with pytest.raises(StoreError, match="attribute 'blob' cannot be stored as JSON"):
        st.add_task("d4", {"name": "four", "blob": object()})
    st.update_task("a1", status="ready", val_acc=0.97, representative=True)
    assert st.task("a1")["status"] == "ready" and st.task("a1")["val_acc"] == 0.97
    with pytest.raises(StoreError, match="already exists"):
        st.update_task("a1", name="two")
    with pytest.raises(NotFound):
        st.update_task("zz", status="x")
    st.remove_task("a1")
    assert st.task_ids() == ["b2", "c3"]
    with pytest.raises(NotFound):
        st.task("a1")
    st.add_task("a1", {"name": "one again"})
    assert st.task_ids() == ["b2", "c3", "a1"]


def test_probe_and_fisher_round_trip(st):
    st.add_task("t1", {"name": "one"})
    rng = np.random.default_rng(0)
    state = {
        "features.0.weight": rng.standard_normal((8, 1, 3, 3)).astype(np.float32),
        "features.1.running_mean": rng.standard_normal(8).astype(np.float32),
        "features.1.num_batches_tracked": np.array(17, dtype=np.int64),
        "_private.__odd/name%": np.arange(4, dtype=np.float64),
        "..": np.ones(2, dtype=np.float32),
        "head.weight": rng.standard_normal((2, 8)).astype(np.float32),
    }
    assert not st.has_probe("t1")
    st.save_probe("t1", state)
    st.save_probe("t1", {k: v * 2 for k, v in state.items()}, seed_index=1)
    assert st.has_probe("t1") and st.has_probe("t1", 1) and not st.has_probe("t1", 2)
    assert st.probe_seeds("t1") == [0, 1]
    loaded = Store.open(st.path).load_probe("t1")
    assert list(loaded) == list(state)
    for name, value in state.items():
        assert loaded[name].dtype == value.dtype and loaded[name].shape == value.shape
        np.testing.assert_array_equal(loaded[name], value)
    np.testing.assert_array_equal(st.load_probe("t1", 1)["head.weight"], state["head.weight"] * 2)
    with pytest.raises(NotFound, match="no stored probe for seed 2"):
        st.load_probe("t1", 2)
    # saving again replaces the whole probe, dropping parameters that are gone
    st.save_probe("t1", {"only.weight": np.zeros(3, np.float32)})
    assert list(st.load_probe("t1")) == ["only.weight"]

    assert st.load_fisher("t1") is None
    fisher = rng.random(1000)
    st.save_fisher("t1", fisher)
    got = st.load_fisher("t1")
    assert got.dtype == np.float32 and st.fisher_length("t1") == 1000
    np.testing.assert_array_equal(got, fisher.astype(np.float32))
    st.save_fisher("t1", np.ones(10), seed_index=0)
    assert st.load_fisher("t1").shape == (10,)
    with pytest.raises(StoreError, match="must be flat"):
        st.save_fisher("t1", np.ones((2, 2)))
    with pytest.raises(NotFound):
        st.save_fisher("nope", np.ones(3))
    st.remove_task("t1")
    st.add_task("t1", {"name": "one"})
    assert not st.has_probe("t1") and st.load_fisher("t1") is None


def test_param_key_is_safe_and_reversible():
    for name in ["features.0.weight", "_x", "__y", ".", "..", "a/b", "a%2Eb", "ü.weight", "x y"]:
        key = layout.param_key(name)
        assert "/" not in key and not key.startswith("_") and key not in (".", "..")
        assert layout.param_name(key) == name


def test_distance_matrix_grows_and_shrinks(st):
    for i in range(1, 5):
        st.add_task(f"t{i}", {"name": f"task {i}"})
    assert st.distances("fisher").ids == [] and st.distances("fisher").value.shape == (0, 0)
    for t in ("t1", "t2", "t3"):
        st.add_distance_task("fisher", t)
    st.set_distance_params("fisher", {"samples": 100})
    expected = {}
    for i, a in enumerate(("t1", "t2", "t3")):
        for j, b in enumerate(("t1", "t2", "t3")):
            if (i + j) % 2 == 0:  # leave some cells not computed
                expected[a, b] = 10 * i + j
                st.set_distance("fisher", a, b, 10 * i + j, std=0.5 + i)
    st.add_distance_task("fisher", "t4")
    st.add_distance_task("fisher", "t4")  # no-op
    m = Store.open(st.path).distances("fisher")
    assert m.ids == ["t1", "t2", "t3", "t4"] and m.value.shape == (4, 4) and m.std.shape == (4, 4)
    assert m.params == {"samples": 100}
    for i, a in enumerate(m.ids):
        for j, b in enumerate(m.ids):
            if (a, b) in expected:
                assert m.value[i, j] == expected[a, b] and m.get(a, b)[1] == 0.5 + i
            else:
                assert np.isnan(m.value[i, j]) and np.isnan(m.std[i, j])
    st.set_distance("fisher", "t4", "t1", 0.25)
    st.add_distance_task("transfer", "t2")
    st.add_distance_task("transfer", "t1")
    st.set_distance("transfer", "t1", "t2", 42.0)

    st.remove_task("t2")
    m = st.distances("fisher")
    assert m.ids == ["t1", "t3", "t4"]
    for a in m.ids:
        for b in m.ids:
            value = m.get(a, b)[0]
            if (a, b) in expected:
                assert value == expected[a, b]
            elif (a, b) == ("t4", "t1"):
                assert value == pytest.approx(0.25)
            else:
                assert np.isnan(value)
    assert st.distances("transfer").ids == ["t1"] and np.isnan(st.distances("transfer").value[0, 0])
    assert sorted(st.distance_methods()) == ["fisher", "transfer"]

    # a re-added task gets a fresh NaN row and column, not the removed task's old values in the boundary chunk
    st.add_task("t2", {"name": "task 2"})
    st.add_distance_task("fisher", "t2")
    m = st.distances("fisher")
    k = m.index("t2")
    assert np.isnan(m.value[k, :]).all() and np.isnan(m.value[:, k]).all()
    with pytest.raises(NotFound, match="source task 'zz'"):
        st.set_distance("fisher", "zz", "t1", 1.0)
    with pytest.raises(NotFound):
        st.add_distance_task("fisher", "zz")


def test_distance_matrix_interrupted_rewrite_is_repaired(tmp_path):
    path = tmp_path / "s.zarr"
    with Store.open(path, mode="w", create=True) as st:
        for t in ("a", "b"):
            st.add_task(t, {"name": t})
            st.add_distance_task("fisher", t)
        st.set_distance("fisher", "a", "b", 1.0)
        st._nodes.update_attrs("distances/fisher", {"generation": 1})  # as if a writer died mid-remove
    with Store.open(path, mode="w") as st:
        m = st.distances("fisher")
        assert m.ids == ["a", "b"] and np.isnan(m.value).all()


def _append_steps(writer, start, stop, c):
    for i in range(start, stop):
        writer.append([i + k / 8 for k in range(c)], i // 10, i % 3, float(i), -float(i), [i + k for k in range(c)])


def test_search_buffered_appends_and_records(st):
    writer = st.create_search("run-1", {"target": "t1", "status": "running"}, candidates=3,
                              flush_every=8, flush_seconds=None)
    reader = Store.open(st.path)
    _append_steps(writer, 0, 5, 3)
    assert writer.pending_steps == 5 and writer.committed_steps == 0
    assert reader.read_search("run-1").steps == 0 and reader.read_search("run-1").alpha.shape == (0, 3)
    _append_steps(writer, 5, 20, 3)  # auto-flush at 8 and 16 pending rows
    assert writer.committed_steps == 16 and writer.pending_steps == 4
    rec = reader.read_search("run-1")
    assert rec.steps == 16 and rec.alpha.shape == (16, 3) and rec.val_acc.shape == (16, 3)
    writer.set_candidates(0, [{"normal": []}, {"normal": [1]}], ["h0", "h1"])
    writer.set_candidates(1, [{"normal": [2]}], ["h2"])
    writer.set_candidates(0, [{"normal": [3]}], ["h3"])  # replaces round 0
    writer.flush()
    rec = reader.read_search("run-1")
    i = np.arange(20)
    np.testing.assert_array_equal(rec.round, i // 10)
    np.testing.assert_array_equal(rec.step_kind, i % 3)
    np.testing.assert_array_equal(rec.loss_train, i.astype(np.float32))
    np.testing.assert_array_equal(rec.loss_val, -i.astype(np.float32))
    np.testing.assert_array_equal(rec.alpha[:, 2], (i + 0.25).astype(np.float32))
    np.testing.assert_array_equal(rec.val_acc[:, 1], (i + 1).astype(np.float32))
    assert rec.alpha.dtype == np.float32 and rec.round.dtype == np.int32
    assert rec.candidates == [{"round": 0, "genotypes": [{"normal": [3]}], "hashes": ["h3"]},
                              {"round": 1, "genotypes": [{"normal": [2]}], "hashes": ["h2"]}]
    assert rec.attrs["status"] == "running" and rec.attrs["target"] == "t1"

    st.update_search("run-1", status="paused", result=None)
    writer.append([0, 0, 0], 2, 0, 0.0, 0.0, [0, 0, 0])
    writer.flush()
    assert reader.search("run-1")["status"] == "paused"  # the writer's attribute update did not clobber it
    with pytest.raises(StoreError, match="managed by the store|written by its SearchWriter"):
        st.update_search("run-1", committed_steps=3)
    with pytest.raises(StoreError, match="alpha has 2 values, expected 3"):
        writer.append([1, 2], 0, 0, 0.0, 0.0, [1, 2, 3])
    with pytest.raises(StoreError, match="already exists"):
        st.create_search("run-1", {}, candidates=3)
    with pytest.raises(NotFound):
        reader.read_search("run-9")

    # resume: a new writer continues after the committed steps; truncate forgets the steps after a checkpoint
    resumed = st.open_search_writer("run-1", flush_every=100, flush_seconds=None)
    assert resumed.committed_steps == 21 and resumed.num_candidates == 3
    resumed.truncate(12)
    assert reader.read_search("run-1").steps == 12
    _append_steps(resumed, 12, 30, 3)
    resumed.flush()
    rec = reader.read_search("run-1")
    assert rec.steps == 30
    np.testing.assert_array_equal(rec.loss_train, np.arange(30, dtype=np.float32))
    assert rec.candidates[0]["hashes"] == ["h3"]
    with pytest.raises(StoreError, match="cannot truncate to 31"):
        resumed.truncate(31)
    assert [s["id"] for s in reader.list_searches()] == ["run-1"]
    assert "candidates" not in reader.list_searches()[0]


def test_search_time_based_flush(st):
    writer = st.create_search("r", {}, candidates=1, flush_every=1000, flush_seconds=0.0)
    writer.append([1.0], 0, 0, 0.0, 0.0, [0.5])
    assert writer.committed_steps == 1


def test_checkpoint_atomic_replace(st):
    st.create_search("r", {}, candidates=2)
    assert st.load_checkpoint("r") is None
    st.save_checkpoint("r", b"first")
    st.save_checkpoint("r", b"second" * 1000)
    assert Store.open(st.path).load_checkpoint("r") == b"second" * 1000
    directory = st.path / "searches" / "r" / "checkpoint"
    assert sorted(p.name for p in directory.iterdir()) == ["checkpoint.pt", "zarr.json"]
    with pytest.raises(NotFound):
        st.save_checkpoint("zz", b"x")


def test_closed_store_refuses(st):
    st.close()
    with pytest.raises(StoreError, match="closed"):
        st.task_ids()
