"""Distances of the vector forms from stored task vectors, written in rows and blocks (issue 20 item 1); stores of
the per-entry layout read unchanged and are migrated on the next add (item 2); atomic matrix creation (issue 22 F2)."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch
import zarr
from typer.testing import CliRunner

from engine.config import Config, DictionarySection, ProjectSection, SearchSection, SpaceSection, TransferSection
from engine.data import Dataset
from engine.data.tasks import TaskDef, build_task
from engine.runtime.reporting import RecordingReporter
from engine.similarity.dictionary import Dictionary
from engine.similarity.distance import fisher_distance
from store import Store
from store import distances as D
from store import layout as L
from store.faults import FAULT_ENV, FAULT_EXIT
from store.vectors import sqrt_unit_trace
from tanas_tui.cli import app

runner = CliRunner()


def _source(name: str, seed: int, n_per_class: int = 24) -> Dataset:
    gen = torch.Generator().manual_seed(seed)
    templates = (torch.rand(3, 1, 28, 28, generator=gen) > 0.6).float() * 200
    x = templates.repeat_interleave(n_per_class, 0) + torch.rand(3 * n_per_class, 1, 28, 28, generator=gen) * 55
    return Dataset(name, x.to(torch.uint8), torch.arange(3).repeat_interleave(n_per_class), ("a", "b", "c"))


SOURCES = {"alpha": _source("alpha", 1), "beta": _source("beta", 2)}
TASKS = [TaskDef(name=f"{s}-{c}", source=s, positive=(c,)) for s in ("alpha", "beta") for c in ("a", "b")]


def _cfg(**dictionary) -> Config:
    d = DictionarySection(**{"max_epochs": 1, "batch_size": 32, "fisher_samples": 12, "fisher_body": "shared",
                             "shared_epochs": 1, "fisher_form": "domain", **dictionary})
    return Config(file=None, project=ProjectSection(), dictionary=d, transfer=TransferSection(),
                  space=SpaceSection(), search=SearchSection(), sources={}, tasks=tuple(TASKS), target=None)


def _dictionary(st, cfg=None, reporter=None) -> Dictionary:
    return Dictionary(st, cfg or _cfg(), "cpu", reporter or RecordingReporter(),
                      task_builder=lambda t: build_task(t, SOURCES[t.source]), source_loader=SOURCES.__getitem__)


def _per_entry(st, d: Dictionary, method: str = "fisher") -> np.ndarray:
    """Today's per-entry path: every pair through the measure's `pair` (fisher_distance of the two Fishers)."""
    ids = st.distances(method).ids
    out = np.zeros((len(ids), len(ids)))
    for i, b in enumerate(ids):
        for j, t in enumerate(ids):
            out[i, j] = 0.0 if b == t else d.pair(method, b, t)[0]
    return out


@pytest.mark.parametrize("form", ["domain", "embedding"])
def test_vector_rows_equal_the_per_entry_path(tmp_path, form):
    with Store.open(tmp_path / "s.zarr", "w", create=True) as st:
        d = _dictionary(st, _cfg(fisher_form=form))
        assert d.measure("fisher").vector_form
        d.ensure(TASKS)
        m = st.distances("fisher")
        assert not np.isnan(m.value).any()
        np.testing.assert_allclose(m.value, _per_entry(st, d), rtol=0, atol=1e-6)
        assert st.task_vectors("fisher").ids() == m.ids


def test_seeds_rows_store_mean_std_and_per_seed_values(tmp_path):
    with Store.open(tmp_path / "s.zarr", "w", create=True) as st:
        d = _dictionary(st, _cfg(seeds=2))
        d.ensure(TASKS[:3])
        m = st.distances("fisher")
        for i, b in enumerate(m.ids):
            for j, t in enumerate(m.ids):
                values = [0.0, 0.0] if b == t else d.pair_values("fisher", b, t)
                np.testing.assert_allclose(m.seed_values[:, i, j], values, atol=1e-6)
                np.testing.assert_allclose(m.value[i, j], np.mean(values), atol=1e-6)
                np.testing.assert_allclose(m.std[i, j], np.std(values, ddof=1), atol=1e-6)


@pytest.mark.parametrize("form", ["domain", "pair"])
def test_adding_a_task_writes_its_row_and_column_in_a_fixed_number_of_slices(tmp_path, monkeypatch, form):
    """Per add: one growth (a NaN block per array) and two slices per array (the column, the row), whatever N is;
    the per-pair form too (its pairs are written per column and row, not per entry)."""
    writes = []
    real = D._write_block
    monkeypatch.setattr(D, "_write_block", lambda arr, rows, cols, block: (writes.append(block.shape),
                                                                           real(arr, rows, cols, block)))
    with Store.open(tmp_path / "s.zarr", "w", create=True) as st:
        d = _dictionary(st, _cfg(fisher_body="per-task", fisher_form="pair") if form == "pair" else None)
        counts = []
        for task in TASKS:
            writes.clear()
            d.add_task(task)
            counts.append(len(writes))
        n = len(TASKS)
        assert counts[1:] == [4] * (n - 1), counts      # value + std: the column, the row
        assert st.distances("fisher").value.shape == (n, n)


def test_nan_entries_of_a_vector_matrix_are_filled_in_blocks(tmp_path):
    with Store.open(tmp_path / "s.zarr", "w", create=True) as st:
        d = _dictionary(st)
        d.ensure(TASKS)
        before = st.distances("fisher").value.copy()
        ids = st.distance_ids("fisher")
        nan = np.full((2, len(ids)), np.nan)
        st.set_distances("fisher", ids[1:3], ids, nan, nan)
        assert d.compute_distances() == 2 * len(ids)
        # computed from the other end of each pair now (the target's column): equal within float32 rounding
        np.testing.assert_allclose(st.distances("fisher").value, before, rtol=0, atol=1e-6)


# ------------------------------------------------------------------ stores written by the per-entry code

def _per_entry_store(path, tasks) -> None:
    """A store as today's per-entry code wrote it: probes and Fishers, the matrix grown one task at a time with
    `add_distance_task` and filled entry by entry with `set_distance`; no task vectors."""
    with Store.open(path, "w", create=True) as st:
        d = _dictionary(st)
        d._check_params("fisher")
        for task in tasks:
            tid = d._register(task, "base")
            d.complete_task(tid)
        ids = st.task_ids()
        for tid in ids:
            st.add_distance_task("fisher", tid)
        for b in ids:
            for t in ids:
                st.set_distance("fisher", b, t, 0.0 if b == t else fisher_distance(st.load_fisher(b), st.load_fisher(t)))
    assert not (path / L.distance_path("fisher") / L.VECTORS).exists()


def test_a_per_entry_store_reads_unchanged_and_is_migrated_by_the_next_add(tmp_path):
    path = tmp_path / "old.zarr"
    _per_entry_store(path, TASKS[:3])
    with Store.open(path) as st:
        old = st.distances("fisher")
    with Store.open(path, "w") as st:            # a writer's open changes nothing in it
        again = st.distances("fisher")
        assert again.ids == old.ids
        np.testing.assert_array_equal(again.value, old.value)
        d = _dictionary(st)
        d.add_task(TASKS[3])
        m = st.distances("fisher")
        np.testing.assert_array_equal(m.value[:3, :3], old.value)      # the stored entries stay as they were
        assert sorted(st.task_vectors("fisher").ids()) == sorted(m.ids)  # vectors backfilled once
        np.testing.assert_allclose(m.value, _per_entry(st, d), atol=1e-6)
    result = runner.invoke(app, ["store", "check", "--store", str(path)])
    assert result.exit_code == 0, result.output


def test_vectors_of_a_removed_task_are_forgotten_and_a_re_add_stores_them_again(tmp_path):
    with Store.open(tmp_path / "s.zarr", "w", create=True) as st:
        d = _dictionary(st)
        d.ensure(TASKS[:3])
        gone = d.remove_task(TASKS[1].name)
        assert gone not in st.task_vectors("fisher").ids()
        d.add_task(TASKS[1])
        m = st.distances("fisher")
        assert sorted(st.task_vectors("fisher").ids()) == sorted(m.ids)
        np.testing.assert_allclose(m.value, _per_entry(st, d), atol=1e-6)


def test_vector_scan_matches_float64_also_for_near_duplicates(tmp_path):
    rng = np.random.default_rng(3)
    base = rng.gamma(0.3, 1.0, 5_000)
    fishers = [base * (1 + s * rng.standard_normal(base.size)).clip(0.01) for s in (0, 1e-4, 1e-2, 0.3, 1.0)]
    with Store.open(tmp_path / "s.zarr", "w", create=True) as st:
        for i, f in enumerate(fishers):
            st.add_task(f"t{i}", {"name": f"t{i}"})
            st.save_task_vector("fisher", f"t{i}", sqrt_unit_trace(f))
        table = st.task_vectors("fisher")
        got = table.distances_to(table.vectors(["t0"])[0])
    want = [fisher_distance(f.astype(np.float32), fishers[0].astype(np.float32)) for f in fishers]
    np.testing.assert_allclose(got, want, atol=1e-7)


# ------------------------------------------------------------------ atomic creation (issue 22, F2)

def test_a_kill_while_the_matrix_is_created_leaves_no_half_matrix(tmp_path):
    path = tmp_path / "s.zarr"
    with Store.open(path, "w", create=True) as st:
        st.add_task("t0", {"name": "t0"})
    for point in ("matrix-create", "matrix-create@2"):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                os.environ[FAULT_ENV] = point
                with Store.open(path, "w") as st:
                    st.add_distance_task("fisher", "t0")
            except BaseException:  # noqa: BLE001
                code = 1
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == FAULT_EXIT
        with Store.open(path) as st:
            assert st.distance_methods() == []            # nothing half-made is visible
        result = runner.invoke(app, ["store", "check", "--store", str(path)])
        assert result.exit_code == 0, result.output
    with Store.open(path, "w") as st:                     # the next writer clears the leftover and can create it
        assert any("creation was interrupted" in line for line in st.repaired)
        assert not list((path / L.RUNS).glob(f"{L.NEW_MATRIX_PREFIX}*"))
        st.add_distance_task("fisher", "t0")
        st.set_distance("fisher", "t0", "t0", 0.0)
        assert st.distances("fisher").value.tolist() == [[0.0]]


def test_a_matrix_left_without_its_std_array_is_repaired(tmp_path):
    """What the creation of older writers could leave (`array 'std' is missing`): repaired by `--repair`."""
    path = tmp_path / "s.zarr"
    with Store.open(path, "w", create=True) as st:
        st.add_task("t0", {"name": "t0"})
    group = zarr.create_group(store=str(path), path=L.distance_path("fisher"),
                              attributes={L.ATTR_IDS: [], L.ATTR_PARAMS: {}, L.ATTR_GENERATION: 0})
    group.create_array(L.DIST_VALUE, shape=(0, 0), chunks=(64, 64), dtype="float32", fill_value=np.nan)
    result = runner.invoke(app, ["store", "check", "--store", str(path)])
    assert result.exit_code != 0 and "'std' is missing" in result.output
    result = runner.invoke(app, ["store", "check", "--repair", "--store", str(path)])
    assert result.exit_code == 0, result.output
    with Store.open(path, "w") as st:
        st.add_distance_task("fisher", "t0")
        st.set_distance("fisher", "t0", "t0", 0.0)
        assert st.distances("fisher").std.tolist() == [[0.0]]
    shutil.rmtree(path)


def test_growing_a_matrix_that_never_was_larger_writes_no_chunk(tmp_path):
    """Cells beyond the largest size the matrix ever had were never written and read as NaN: growth is a resize
    only. After a removal the boundary chunks may hold old values, and growth writes NaN there again."""
    def chunks(path):
        return sorted(p.name for p in (path / L.distance_path("fisher") / L.DIST_VALUE).rglob("*") if p.is_file()
                      and p.name != "zarr.json")
    path = tmp_path / "s.zarr"
    with Store.open(path, "w", create=True) as st:
        st.add_tasks({f"t{i}": {"name": f"t{i}"} for i in range(5)})
        st.add_distance_tasks("fisher", ["t0", "t1", "t2"])
        st.set_distances("fisher", ["t0", "t1", "t2"], ["t0", "t1", "t2"], np.ones((3, 3)), np.zeros((3, 3)))
        before = chunks(path)
        st.add_distance_tasks("fisher", ["t3"])
        assert chunks(path) == before
        m = st.distances("fisher")
        assert np.isnan(m.value[3]).all() and np.isnan(m.value[:, 3]).all()
        st.remove_task("t3")
        st.remove_task("t2")
        st.add_distance_tasks("fisher", ["t4"])
        m = st.distances("fisher")
        assert m.ids == ["t0", "t1", "t4"]
        assert np.isnan(m.value[2]).all() and np.isnan(m.value[:, 2]).all()
        assert m.value[:2, :2].tolist() == [[1.0, 1.0], [1.0, 1.0]]
