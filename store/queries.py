"""Questions answered from the store alone (no training): the nearest (and farthest) dictionary tasks of a task.

`nearest` of a vector form (one seed, every matrix task with a stored vector, store/vectors.py) asks the vectors,
never the N × N matrix:
- up to `EXACT_MAX` vectors: an exact scan, streamed in float32 chunks with float64 sums (store.vectors);
- beyond: a scan of the reduced vectors (a fixed random projection to 256 dimensions, 1 KB per task: 100 MB at
  N = 100,000, kept in memory) ranks every task, the best `candidates(k)` are re-ranked exactly from their full
  vectors (read from the store, only those rows), and the candidate set is doubled until the k-th exact distance is
  below the best reduced distance left out, scaled by the smallest exact / reduced ratio seen among the candidates
  (the projection's observed distortion) with a margin. A flat scan of the reduced vectors, not a graph index: at
  N = 100,000 it takes milliseconds (benchmarks/bench_dictionary_scale.py), so an index would buy nothing the
  re-rank does not cost anyway.
Other forms read the target's column of the matrix (one column, not the matrix).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from store.errors import NotFound

EXACT_MAX = 2_000        # up to this many vectors an exact scan is fast enough (~0.1 s; see docs/SCALE.md)
MARGIN = 0.9             # the distortion bound is relaxed by this factor before a candidate set is trusted


@dataclass(frozen=True)
class Neighbor:
    task_id: str
    name: str
    distance: float
    std: float


def candidates(k: int) -> int:
    return max(10 * k, 100)


def nearest(store, target: str, k: int = 3, method: str = "fisher") -> list[Neighbor]:
    """The k tasks b with the smallest d(b, target), excluding the target and tasks with role "target".

    Entries not computed yet (NaN) are left out.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    tid = store.find_task(target)
    table = _vector_table(store, method, tid)
    if table is not None:
        q = table.vectors([tid])[0]
        return [n for n in _vector_nearest(store, table, q, k, exclude={tid}, method=method)]
    return _ranked(store, tid, method)[:k]


def nearest_to_vector(store, vector: np.ndarray, k: int = 3, method: str = "fisher") -> list[Neighbor]:
    """The k dictionary tasks nearest to a task vector not in the store (`store.vectors.sqrt_unit_trace` of a new
    task's Fisher), by the same exact-or-re-ranked scan."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    table = store.task_vectors(method, 0)
    if not table.ids():
        raise NotFound(f"no {method!r} task vectors in store {store.path}")
    return _vector_nearest(store, table, np.asarray(vector, np.float32), k, exclude=set(), method=method)


def farthest(store, target: str, k: int = 3, method: str = "fisher") -> list[Neighbor]:
    """The k tasks b with the LARGEST d(b, target), farthest first (the control arm's space); same exclusions."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    ranked = _ranked(store, store.find_task(target), method)
    ranked.sort(key=lambda n: (-n.distance, n.name))
    return ranked[:k]


def _vector_table(store, method: str, tid: str):
    """The vector table answering `method`'s queries for tid, or None when the column must be read instead."""
    ids = store.distance_ids(method)
    if tid not in ids:
        raise NotFound(f"task {tid!r} has no {method!r} distances yet: run `tanas-tui distances --method {method}`")
    if int(store.distance_params(method).get("seeds", 1) or 1) != 1:
        return None
    table = store.task_vectors(method, 0)
    if not table.exists:
        return None
    have = table.rows_of()
    return table if all(t in have for t in ids) else None


def _ranked(store, tid: str, method: str) -> list[Neighbor]:
    """Every other base task with a computed d(b, tid), nearest first: from tid's column of the matrix."""
    ids = store.distance_ids(method)
    if tid not in ids:
        raise NotFound(f"task {tid!r} has no {method!r} distances yet: run `tanas-tui distances --method {method}`")
    window = store.distance_window(method, 0, len(ids), ids.index(tid), ids.index(tid) + 1)
    tasks = {t["id"]: t for t in store.list_tasks()}
    out = []
    for i, b in enumerate(ids):
        attrs = tasks.get(b)
        value = float(window.value[i, 0])
        if b == tid or attrs is None or attrs.get("role") == "target" or np.isnan(value):
            continue
        out.append(Neighbor(b, attrs.get("name", b), value, float(window.std[i, 0])))
    out.sort(key=lambda n: (n.distance, n.name))
    return out


def _vector_nearest(store, table, q: np.ndarray, k: int, exclude: set[str], method: str) -> list[Neighbor]:
    in_matrix = set(store.distance_ids(method))
    live = np.array([bool(t) and t in in_matrix and t not in exclude for t in table.row_ids], dtype=bool)
    rows = np.nonzero(live)[0]
    if rows.size <= EXACT_MAX:
        exact = table.distances_to(q, rows)
        ranked = np.argsort(exact, kind="stable")
        return _accept(store, table, rows[ranked], exact[ranked], k)
    approx = _reduced_distances(table, q, rows)
    order = np.argsort(approx, kind="stable")
    c = min(candidates(k), rows.size)
    while True:
        pick = order[:c]
        exact = table.distances_to(q, rows[pick])
        ranked = np.argsort(exact, kind="stable")
        found = _accept(store, table, rows[pick][ranked], exact[ranked], k)
        if c >= rows.size:
            return found
        if len(found) == k:
            left_out = float(approx[order[c]])
            with_approx = approx[pick] > 0
            ratio = float(np.min(exact[with_approx] / approx[pick][with_approx])) if with_approx.any() else 0.0
            if found[-1].distance < MARGIN * ratio * left_out:
                return found
        c = min(2 * c, rows.size)


def _reduced_distances(table, q: np.ndarray, rows: np.ndarray) -> np.ndarray:
    from store.vectors import projection

    reduced = np.asarray(table.reduced())[rows]
    rq = (q.astype(np.float32) @ projection(table.dim, table.reduced_dim)).astype(np.float32)
    d2 = np.einsum("ij,ij->i", reduced, reduced) + float(rq @ rq) - 2.0 * (reduced @ rq)
    return np.sqrt(np.maximum(d2, 0.0) * 0.5)


def _accept(store, table, rows: np.ndarray, dist: np.ndarray, k: int) -> list[Neighbor]:
    """The first k of the ranked rows that are base tasks (the attributes of those only are read, in batches)."""
    out: list[Neighbor] = []
    ranked = list(zip(rows.tolist(), dist.tolist()))
    step = k + 2
    for start in range(0, len(ranked), step):
        batch = ranked[start:start + step]
        attrs = store.tasks_attrs([table.row_ids[r] for r, _ in batch])
        for (r, d), a in zip(batch, attrs):
            if a is None or a.get("role") == "target":
                continue
            out.append(Neighbor(a["id"], a.get("name", a["id"]), float(np.float32(d)), 0.0))
            if len(out) == k:
                return out
    return out
