"""Per-task vectors of a distance form that is a function of two task vectors (the domain and embedding forms).

    /distances/<method>/vectors/<seed>/   attrs: ids (row i holds task ids[i]; "" = a removed task's row), dim,
                                          reduced_dim, projection_seed
        vectors.f32          float32 [rows, dim]: each task's sqrt of its unit-trace Fisher, ready for the product
        vectors.norm.f64     float64 [rows]: the squared norm of each stored float32 row
        vectors.reduced.f32  float32 [rows, reduced_dim]: the row times a fixed random projection (the index's input)

The three files are plain little-endian arrays read through `np.memmap`, so a scan streams them with no copy and a
re-rank reads only the rows it needs. A row is written at offset rows × row size (the files are cut there first, so
a row torn by a kill is overwritten) and fsynced before the ids attribute names it: a reader that cuts at len(ids)
never sees a partial row. A removed task's id is blanked, its row stays (no O(N²) rewrite).

Distances: d(a, b) = ‖a − b‖ / √2 with ‖a − b‖² = ‖a‖² + ‖b‖² − 2 a·b; the dot products are float32 BLAS over
column blocks of `_BLOCK` entries summed in float64, which keeps them within ~1e-8 of a float64 computation (one
float32 product over all 55,904 entries loses ~1e-4) at the speed of one float32 pass.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from store import layout as L
from store.errors import StoreError
from store.faults import fault_point
from store.nodes import Nodes

REDUCED_DIM = 256
PROJECTION_SEED = 20_260_412
_BLOCK = 1024          # float32 BLAS accumulates at most this many products before a float64 sum
_NEAR = 0.05          # below this a distance is recomputed from the difference (see `_refine_near`)
_ROWS = 256            # rows per scan chunk (~57 MB of float32 at the default probe's 55,904)


def table_path(method: str, seed_index: int = 0) -> str:
    return f"{L.distance_path(method)}/{L.VECTORS}/{int(seed_index)}"


@lru_cache(maxsize=2)
def projection(dim: int, reduced_dim: int = REDUCED_DIM, seed: int = PROJECTION_SEED) -> np.ndarray:
    """A fixed Gaussian random projection [dim, reduced_dim] scaled by 1/√reduced_dim (Johnson-Lindenstrauss)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((dim, reduced_dim), dtype=np.float32) / np.float32(np.sqrt(reduced_dim))


def sqrt_unit_trace(f: np.ndarray) -> np.ndarray:
    """√(f / Σf) in float64: the vector whose distances are the Hellinger distances of METHOD 3a."""
    a = np.asarray(f, dtype=np.float64).reshape(-1)
    total = a.sum()
    if a.size == 0 or not np.all(np.isfinite(a)) or np.any(a < 0) or total <= 0:
        raise StoreError("a task vector needs a finite, non-negative Fisher vector with a positive sum")
    return np.sqrt(a / total)


def block_dot(rows: np.ndarray, q: np.ndarray) -> np.ndarray:
    """rows [n, dim] float32 · q [dim] float32 (or [dim, m]) -> float64, accurate to ~1e-8 (see the module doc)."""
    out = np.zeros((rows.shape[0],) + q.shape[1:], dtype=np.float64)
    for k in range(0, rows.shape[1], _BLOCK):
        out += rows[:, k:k + _BLOCK] @ q[k:k + _BLOCK]
    return out


def to_distance(sq_a, sq_b, dot) -> np.ndarray:
    d2 = np.maximum(np.asarray(sq_a, np.float64) + np.asarray(sq_b, np.float64) - 2.0 * dot, 0.0)
    return np.minimum(np.sqrt(0.5 * d2), 1.0)


class VectorTable:
    """One (method, seed)'s task vectors. Opened afresh per use; cheap (one attribute read)."""

    def __init__(self, nodes: Nodes, method: str, seed_index: int = 0):
        self.nodes, self.method, self.seed_index = nodes, method, int(seed_index)
        self.path = table_path(method, seed_index)
        self.dir: Path = nodes.path / self.path
        self.attrs = nodes.attrs(self.path) if nodes.exists(self.path) else {}
        self.row_ids: list[str] = list(self.attrs.get(L.ATTR_IDS, []))
        self.dim = int(self.attrs.get("dim", 0))
        self.reduced_dim = int(self.attrs.get("reduced_dim", REDUCED_DIM))

    @property
    def exists(self) -> bool:
        return bool(self.attrs)

    def ids(self) -> list[str]:
        return [i for i in self.row_ids if i]

    def rows_of(self) -> dict[str, int]:
        return {t: r for r, t in enumerate(self.row_ids) if t}

    def __contains__(self, task_id: str) -> bool:
        return task_id in self.rows_of()

    # ------------------------------------------------------------------ files

    def _file(self, name: str) -> Path:
        return self.dir / name

    def _map(self, name: str, dtype, width: int | None) -> np.ndarray:
        n = len(self.row_ids)
        shape = (n, width) if width else (n,)
        if n == 0:
            return np.zeros(shape, dtype=dtype)
        return np.memmap(self._file(name), dtype=dtype, mode="r", shape=shape)

    def full(self) -> np.ndarray:
        return self._map(L.VECTORS_FILE, np.float32, self.dim)

    def squared_norms(self) -> np.ndarray:
        return np.asarray(self._map(L.VECTOR_NORMS_FILE, np.float64, None))

    def reduced(self) -> np.ndarray:
        return self._map(L.VECTOR_REDUCED_FILE, np.float32, self.reduced_dim)

    # ------------------------------------------------------------------ writing

    def append(self, task_id: str, vector: np.ndarray) -> None:
        """Stores `vector` (a `sqrt_unit_trace` result) as task_id's row; a no-op when it is stored already."""
        self.extend([task_id], np.asarray(vector).reshape(1, -1))

    def extend(self, task_ids: list[str], vectors) -> None:
        """Stores each vector as its task's row (tasks stored already are skipped), in one write per file."""
        nodes = self.nodes
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        if vecs.ndim != 2 or len(vecs) != len(task_ids):
            raise StoreError(f"{len(task_ids)} task ids need as many vectors, got shape {vecs.shape}")
        with nodes.write_lock:
            self.__init__(nodes, self.method, self.seed_index)    # re-read: another call may have added rows
            have = self.rows_of()
            keep, seen = [], set(have)
            for i, t in enumerate(task_ids):
                if t not in seen:
                    keep.append(i)
                    seen.add(t)
            if not keep:
                return
            vecs = vecs[keep]
            if not self.exists:
                nodes.ensure_group(f"{L.distance_path(self.method)}/{L.VECTORS}")
                nodes.create_group(self.path, {L.ATTR_IDS: [], "dim": int(vecs.shape[1]),
                                               "reduced_dim": REDUCED_DIM, "projection_seed": PROJECTION_SEED})
                self.__init__(nodes, self.method, self.seed_index)
            if vecs.shape[1] != self.dim:
                raise StoreError(f"task {task_ids[keep[0]]!r}: its vector has {vecs.shape[1]} entries, the "
                                 f"{self.method!r} vectors {self.dim} (the probes' architectures differ)")
            n = len(self.row_ids)
            red = (vecs @ projection(self.dim, self.reduced_dim)).astype(np.float32)
            wide = vecs.astype(np.float64)
            sq = np.einsum("ij,ij->i", wide, wide)
            for name, data in ((L.VECTORS_FILE, vecs), (L.VECTOR_NORMS_FILE, sq), (L.VECTOR_REDUCED_FILE, red)):
                _write_rows(self._file(name), n, data)
            fault_point("vector-row")
            new = [task_ids[i] for i in keep]
            nodes.update_attrs(self.path, {L.ATTR_IDS: self.row_ids + new})
            self.row_ids.extend(new)

    def forget(self, task_id: str) -> None:
        """Blanks the task's id (its row stays unread); O(1) in the vectors."""
        with self.nodes.write_lock:
            self.__init__(self.nodes, self.method, self.seed_index)
            if task_id in self:
                self.nodes.update_attrs(self.path, {L.ATTR_IDS: ["" if i == task_id else i for i in self.row_ids]})

    # ------------------------------------------------------------------ reading

    def vectors(self, task_ids: list[str]) -> np.ndarray:
        rows = self.rows_of()
        missing = [t for t in task_ids if t not in rows]
        if missing:
            raise StoreError(f"task(s) {', '.join(missing[:5])} have no stored {self.method!r} vector")
        full = self.full()
        return np.asarray(full[[rows[t] for t in task_ids]]) if task_ids else np.zeros((0, self.dim), np.float32)

    def distances_to(self, q: np.ndarray, rows=None) -> np.ndarray:
        """Exact distances from vector(s) q ([dim] or [dim, m], float32) to every stored row (or to `rows`),
        float64 [n] or [n, m]; blanked rows come back too (callers map through `row_ids`). Streams `_ROWS` rows at
        a time, so memory stays at one chunk whatever the table's size."""
        q = np.ascontiguousarray(q, dtype=np.float32)
        qd = q.astype(np.float64)
        sq_q = (qd * qd).sum(0)
        full, norms = self.full(), self.squared_norms()
        if rows is None:
            index = np.arange(len(self.row_ids))
        else:
            index = np.asarray(rows, dtype=np.int64)
        order = np.argsort(index, kind="stable")
        sorted_index = index[order]
        out = np.empty((index.size,) + q.shape[1:], dtype=np.float64)
        for s in range(0, index.size, _ROWS):
            sel = sorted_index[s:s + _ROWS]
            part = full[sel[0]:sel[-1] + 1] if rows is None else full[sel]
            part = np.asarray(part)
            dot = block_dot(part, q)
            sq = norms[sel][:, None] if q.ndim == 2 else norms[sel]
            d = to_distance(sq, sq_q, dot)
            _refine_near(d, part, q)
            out[order[s:s + _ROWS]] = d
        return out


def _refine_near(d: np.ndarray, part: np.ndarray, q: np.ndarray) -> None:
    """Recomputes the distances below `_NEAR` from the difference itself: from the products, d² loses ~1e-8 to
    cancellation, which is an error of ~1e-8 / d in d (1e-4 for a task with itself)."""
    qs = q.reshape(q.shape[0], -1)
    d2 = d.reshape(d.shape[0], -1)
    for i, j in zip(*np.nonzero(d2 < _NEAR)):
        diff = part[i].astype(np.float64) - qs[:, j].astype(np.float64)
        d2[i, j] = min(float(np.sqrt(0.5 * np.dot(diff, diff))), 1.0)


def _write_rows(path: Path, row: int, data: np.ndarray) -> None:
    size = data.nbytes // len(data)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.ftruncate(fd, row * size)     # a row torn by a kill (beyond the ids) goes
        os.pwrite(fd, np.ascontiguousarray(data).tobytes(), row * size)
        os.fsync(fd)
    finally:
        os.close(fd)


def tables(nodes: Nodes, method: str) -> list[int]:
    """The seed indices with a vector table for `method`."""
    base = f"{L.distance_path(method)}/{L.VECTORS}"
    return sorted(int(s) for s in nodes.child_groups(base) if s.isdigit())


def forget(nodes: Nodes, method: str, task_id: str) -> None:
    for s in tables(nodes, method):
        VectorTable(nodes, method, s).forget(task_id)
