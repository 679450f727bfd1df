"""Nearest-task queries from the stored task vectors (issue 20 item 2): the exact scan, and beyond EXACT_MAX the
reduced-vector scan with an exact re-rank, whose answers must equal the exact ones (recall@10 = 1)."""
from __future__ import annotations

import numpy as np
import pytest

from store import Store
from store import queries as Q
from store.vectors import sqrt_unit_trace

DIM = 3_000


def _fishers(n: int, families: int = 12, seed: int = 0) -> list[np.ndarray]:
    """Fisher-like vectors in families: a family's pattern times per-task noise of varying size."""
    rng = np.random.default_rng(seed)
    bases = rng.gamma(0.3, 1.0, (families, DIM))
    out = []
    for i in range(n):
        noise = rng.uniform(0.05, 0.6)
        out.append(bases[i % families] * np.exp(noise * rng.standard_normal(DIM)))
    return out


def _store(path, fishers, roles=None):
    st = Store.open(path, "w", create=True)
    ids = [f"t{i:04d}" for i in range(len(fishers))]
    st.add_tasks({tid: {"name": f"task-{i}", "role": (roles or {}).get(i, "base")} for i, tid in enumerate(ids)})
    st.save_task_vectors("fisher", ids, np.stack([sqrt_unit_trace(f) for f in fishers]))
    st.add_distance_tasks("fisher", ids)
    return st, ids


def _exact(fishers, j, exclude=()):
    v = np.array([sqrt_unit_trace(f) for f in fishers])
    d = np.linalg.norm(v - v[j], axis=1) / np.sqrt(2)
    order = [i for i in np.argsort(d, kind="stable") if i != j and i not in exclude]
    return order, d


def test_exact_scan_equals_the_matrix_column(tmp_path):
    fishers = _fishers(40)
    st, ids = _store(tmp_path / "s.zarr", fishers, roles={5: "target"})
    with st:
        table = st.task_vectors("fisher")
        for tid in ids:     # the matrix as the dictionary writes it: every column from the vectors
            d = table.distances_to(table.vectors([tid])[0])
            st.set_distances("fisher", ids, [tid], d[:, None], np.zeros((len(ids), 1)))
        for j in (0, 7, 33):
            got = Q.nearest(st, ids[j], k=10)
            column = Q._ranked(st, ids[j], "fisher")[:10]
            assert [n.task_id for n in got] == [n.task_id for n in column]
            np.testing.assert_allclose([n.distance for n in got], [n.distance for n in column], atol=1e-6)
            assert ids[5] not in [n.task_id for n in got]          # role target left out
            order, _ = _exact(fishers, j, exclude={5})
            assert [n.task_id for n in got] == [ids[i] for i in order[:10]]


@pytest.mark.parametrize("few", [False, True])
def test_reduced_scan_with_exact_re_rank_equals_the_exact_answer(tmp_path, monkeypatch, few):
    """Beyond EXACT_MAX the reduced vectors rank and the exact re-rank decides; with a candidate set far too small
    (`few`) the widening still reaches the exact answer. recall@10 = 1 on every query."""
    monkeypatch.setattr(Q, "EXACT_MAX", 20)
    if few:
        monkeypatch.setattr(Q, "candidates", lambda k: k)
    fishers = _fishers(400, seed=1)
    st, ids = _store(tmp_path / "s.zarr", fishers)
    calls = []
    with st:
        table = st.task_vectors("fisher")
        real = type(table).distances_to
        monkeypatch.setattr(type(table), "distances_to",
                            lambda self, q, rows=None: (calls.append(None if rows is None else len(rows)),
                                                        real(self, q, rows))[1])
        recall = []
        for j in range(0, 400, 37):
            calls.clear()
            got = [n.task_id for n in Q.nearest(st, ids[j], k=10)]
            order, d = _exact(fishers, j)
            want = [ids[i] for i in order[:10]]
            recall.append(len(set(got) & set(want)) / 10)
            assert got == want
            assert calls and all(c is not None and c < 400 for c in calls)   # never a full exact scan
    assert recall == [1.0] * len(recall)


def test_nearest_to_a_vector_not_in_the_store(tmp_path, monkeypatch):
    monkeypatch.setattr(Q, "EXACT_MAX", 20)
    fishers = _fishers(120, seed=2)
    st, ids = _store(tmp_path / "s.zarr", fishers[:-1])
    with st:
        got = Q.nearest_to_vector(st, sqrt_unit_trace(fishers[-1]), k=5)
    v = np.array([sqrt_unit_trace(f) for f in fishers])
    d = np.linalg.norm(v[:-1] - v[-1], axis=1) / np.sqrt(2)
    assert [n.task_id for n in got] == [ids[i] for i in np.argsort(d)[:5]]
    np.testing.assert_allclose([n.distance for n in got], np.sort(d)[:5], atol=1e-6)


def test_fewer_tasks_than_k_gives_them_all(tmp_path):
    st, ids = _store(tmp_path / "s.zarr", _fishers(4))
    with st:
        assert len(Q.nearest(st, ids[0], k=10)) == 3


def test_bulk_and_one_by_one_writes_store_the_same_tasks_and_vectors(tmp_path):
    fishers = _fishers(6)
    bulk, ids = _store(tmp_path / "bulk.zarr", fishers)
    with bulk, Store.open(tmp_path / "one.zarr", "w", create=True) as one:
        for i, (tid, f) in enumerate(zip(ids, fishers)):
            one.add_task(tid, {"name": f"task-{i}", "role": "base"})
            one.save_task_vector("fisher", tid, sqrt_unit_trace(f))
        assert bulk.list_tasks() == one.list_tasks() and bulk.task_named("task-3") == ids[3]
        a, b = bulk.task_vectors("fisher"), one.task_vectors("fisher")
        assert a.row_ids == b.row_ids
        np.testing.assert_array_equal(np.asarray(a.full()), np.asarray(b.full()))
        np.testing.assert_allclose(np.asarray(a.reduced()), np.asarray(b.reduced()), rtol=1e-4, atol=1e-7)
        np.testing.assert_array_equal(a.squared_norms(), b.squared_norms())
        with pytest.raises(Exception, match="already exists"):
            bulk.add_tasks({"zz": {"name": "task-2"}})
        bulk.save_task_vectors("fisher", ids[:2], np.zeros((2, DIM)))      # stored already: skipped
        assert bulk.task_vectors("fisher").row_ids == ids
