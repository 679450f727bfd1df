"""Task distance matrices: /distances/<method>/{value,std} float32 [N, N], NaN = not computed; ids in attrs.

With `seeds >= 2` each seed's own matrix is kept too, as /distances/<method>/seed_<k> (same shape, grown with
value and std; a task removal drops them), so the similarity check can ask whether a nearest task holds across seeds.
The noise floor of a method (same-task distances, see `set_noise_floor`) is an attribute of the matrix's group.

Adding a task grows both arrays by one row and column (new cells NaN) before the ids attribute names it, so a reader
that cuts at len(ids) is always consistent. Removing a task rewrites the matrix; that rewrite is bracketed by an
odd `generation` (a seqlock) so a reader retries instead of seeing a half-rewritten matrix, and it is journaled: the
whole matrix before the rewrite is saved to `rewrite.npz` in the matrix's group first, so a writer that dies
mid-rewrite is rolled forward from the journal by the next writer (`repair`) instead of losing the matrix.

Writes go in whole slices (`set_block`: a task's row and column, or a block, cost the chunks they cover); growing by
many tasks is one resize (`add_tasks`); `read_cross` and `read_window` read a task's row and column or a window
without the rest. A new matrix is built under runs/ and renamed into place. The vector forms also keep each task's
vector (store/vectors.py) in the matrix's group, from which rows are computed and nearest-task queries answered.
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from store import layout as L
from store.errors import NotFound, StoreError
from store.faults import fault_point
from store import vectors as V
from store.nodes import Nodes, plain

JOURNAL_FILE = "rewrite.npz"

_READ_RETRIES = 200
_READ_RETRY_S = 0.005


@dataclass
class DistanceMatrix:
    """value[i, j] = d(source=ids[i], target=ids[j]); NaN where not computed."""

    ids: list[str]
    value: np.ndarray
    std: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)
    method: str = ""
    seed_values: np.ndarray | None = None       # [seeds, N, N] per-seed values when seeds >= 2 were stored
    noise_floor: dict[str, Any] = field(default_factory=dict)   # see set_noise_floor; {} = not measured

    def index(self, task_id: str) -> int:
        try:
            return self.ids.index(task_id)
        except ValueError:
            raise NotFound(f"task {task_id!r} is not in the {self.method!r} distance matrix") from None

    def get(self, source_id: str, target_id: str) -> tuple[float, float]:
        """(value, std) of d(source, target); NaN when not computed."""
        i, j = self.index(source_id), self.index(target_id)
        return float(self.value[i, j]), float(self.std[i, j])


ATTR_NOISE_FLOOR = "noise_floor"
SEED_PREFIX = "seed_"


def methods(nodes: Nodes) -> list[str]:
    return nodes.child_groups(L.DISTANCES)


def _seed_arrays(nodes: Nodes, path: str) -> list[str]:
    names = [k for k in nodes.group(path).array_keys() if k.startswith(SEED_PREFIX)]
    return sorted(names, key=lambda k: int(k[len(SEED_PREFIX):]))


def _arrays(nodes: Nodes, path: str) -> list[str]:
    return [L.DIST_VALUE, L.DIST_STD] + _seed_arrays(nodes, path)


def read(nodes: Nodes, method: str) -> DistanceMatrix:
    L.check_id("distance method", method)
    path = L.distance_path(method)
    if not nodes.exists(path):
        empty = np.full((0, 0), np.nan, dtype=np.float32)
        return DistanceMatrix([], empty, empty.copy(), {}, method)
    for _ in range(_READ_RETRIES):
        before = nodes.attrs(path)
        generation = int(before.get(L.ATTR_GENERATION, 0))
        if generation % 2 == 0:
            ids = list(before.get(L.ATTR_IDS, []))
            n = len(ids)
            value = nodes.read(f"{path}/{L.DIST_VALUE}", (slice(0, n), slice(0, n)))
            std = nodes.read(f"{path}/{L.DIST_STD}", (slice(0, n), slice(0, n)))
            seeds = [np.asarray(nodes.read(f"{path}/{k}", (slice(0, n), slice(0, n))))
                     for k in _seed_arrays(nodes, path)]
            after = nodes.attrs(path)
            if (int(after.get(L.ATTR_GENERATION, 0)) == generation and value.shape == (n, n) and std.shape == (n, n)
                    and all(a.shape == (n, n) for a in seeds)):
                params = dict(before.get(L.ATTR_PARAMS, {}))
                return DistanceMatrix(ids, np.asarray(value), np.asarray(std), params, method,
                                      np.stack(seeds) if seeds else None, dict(before.get(ATTR_NOISE_FLOOR, {})))
        time.sleep(_READ_RETRY_S)
    raise StoreError(
        f"the {method!r} distance matrix in store {nodes.path} stayed mid-rewrite for over "
        f"{_READ_RETRIES * _READ_RETRY_S:.0f} s; open the store for writing once to repair it"
    )


def _ensure(nodes: Nodes, method: str) -> str:
    """The matrix group, created when missing. Built complete (group and both arrays) under runs/ and moved into
    /distances in one rename, so a kill during its creation leaves no matrix without its arrays (issue 22, F2)."""
    L.check_id("distance method", method)
    path = L.distance_path(method)
    if nodes.exists(path):
        return path
    nodes.ensure_group(L.DISTANCES)
    nodes.ensure_group(L.RUNS)
    aside = f"{L.RUNS}/{L.NEW_MATRIX_PREFIX}{method}.{os.getpid()}"
    shutil.rmtree(nodes.path / aside, ignore_errors=True)
    group = nodes.create_group(aside, {L.ATTR_IDS: [], L.ATTR_PARAMS: {}, L.ATTR_GENERATION: 0, L.ATTR_EXTENT: 0})
    for name in (L.DIST_VALUE, L.DIST_STD):
        group.create_array(
            name, shape=(0, 0), chunks=(L.DIST_CHUNK, L.DIST_CHUNK), dtype="float32", fill_value=np.nan
        )
        fault_point("matrix-create")
    os.replace(nodes.path / aside, nodes.path / path)
    return path


def ensure(nodes: Nodes, method: str) -> None:
    """Creates the (empty) matrix when missing; the vectors live in its group."""
    with nodes.write_lock:
        _ensure(nodes, method)


def _grow(nodes: Nodes, path: str, ids: list[str], new: list[str]) -> None:
    n, m = len(ids), len(new)
    extent = nodes.attrs(path).get(L.ATTR_EXTENT)
    for name in _arrays(nodes, path):
        arr = nodes.array(f"{path}/{name}")
        arr.resize((n + m, n + m))
        # boundary chunks may still hold values of a removed task: new cells must be NaN explicitly, unless the
        # matrix never was this large (`extent`), so that no cell beyond n was ever written: they read as NaN
        if extent is None or n < int(extent):
            arr[n:, :] = np.nan
            arr[:n, n:] = np.nan
    nodes.update_attrs(path, {L.ATTR_IDS: ids + new, L.ATTR_EXTENT: max(int(extent or 0), n + m)})


def add_task(nodes: Nodes, method: str, task_id: str) -> None:
    add_tasks(nodes, method, [task_id])


def add_tasks(nodes: Nodes, method: str, task_ids: list[str]) -> None:
    """Grows the matrix by the tasks it lacks (one resize and one NaN row and column block for all of them)."""
    with nodes.write_lock:
        path = _ensure(nodes, method)
        ids = list(nodes.attrs(path).get(L.ATTR_IDS, []))
        have = set(ids)
        new = [t for t in dict.fromkeys(task_ids) if t not in have]
        if new:
            _grow(nodes, path, ids, new)


def _span(index: list[int]) -> slice | None:
    """The slice covering `index` exactly when it is consecutive and increasing, else None."""
    if index and index == list(range(index[0], index[0] + len(index))):
        return slice(index[0], index[0] + len(index))
    return None


def _write_block(arr, rows: list[int], cols: list[int], block: np.ndarray) -> None:
    """arr[rows, cols] = block with one slice write: straight for consecutive indices, else read-modify-write of
    the bounding box (only the chunks it covers)."""
    rs, cs = _span(rows), _span(cols)
    if rs is not None and cs is not None:
        arr[rs, cs] = block
        return
    r0, r1, c0, c1 = min(rows), max(rows) + 1, min(cols), max(cols) + 1
    box = np.asarray(arr[r0:r1, c0:c1])
    box[np.ix_([r - r0 for r in rows], [c - c0 for c in cols])] = block
    arr[r0:r1, c0:c1] = box


def set_block(nodes: Nodes, method: str, source_ids: list[str], target_ids: list[str], value, std,
              seed_values=None) -> None:
    """Stores d(source_ids[a], target_ids[b]) = value[a, b] (and std, and seed_values[k, a, b] per seed when given
    with 2 or more seeds) as whole slices: a row, a column or a block costs the chunks it covers, not one store
    operation per entry. NaN in `value` is written as NaN (not computed)."""
    path = L.distance_path(L.check_id("distance method", method))
    if not nodes.exists(path):
        raise NotFound(f"no {method!r} distance matrix in store {nodes.path}; add its tasks first")
    ids = list(nodes.attrs(path).get(L.ATTR_IDS, []))
    where = {t: i for i, t in enumerate(ids)}
    for role, group in (("source", source_ids), ("target", target_ids)):
        for task_id in group:
            if task_id not in where:
                raise NotFound(f"{role} task {task_id!r} is not in the {method!r} distance matrix of store "
                               f"{nodes.path}")
    rows, cols = [where[t] for t in source_ids], [where[t] for t in target_ids]
    if not rows or not cols:
        return
    shape = (len(rows), len(cols))
    value = np.asarray(value, dtype=np.float32).reshape(shape)
    std = np.asarray(std, dtype=np.float32).reshape(shape)
    with nodes.write_lock:
        _write_block(nodes.array(f"{path}/{L.DIST_VALUE}"), rows, cols, value)
        _write_block(nodes.array(f"{path}/{L.DIST_STD}"), rows, cols, std)
        if seed_values is not None and len(seed_values) >= 2:
            for k, v in enumerate(seed_values):
                _write_block(_seed_array(nodes, path, k, len(ids)), rows, cols,
                             np.asarray(v, np.float32).reshape(shape))


def read_cross(nodes: Nodes, method: str, task_id: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(ids, d(task_id, ids) row, d(ids, task_id) column) of `value`, reading only that row and column."""
    path = L.distance_path(method)
    ids = list(nodes.attrs(path).get(L.ATTR_IDS, []))
    if task_id not in ids:
        raise NotFound(f"task {task_id!r} is not in the {method!r} distance matrix")
    k, n = ids.index(task_id), len(ids)
    row = nodes.read(f"{path}/{L.DIST_VALUE}", (k, slice(0, n)))
    col = nodes.read(f"{path}/{L.DIST_VALUE}", (slice(0, n), k))
    return ids, np.asarray(row), np.asarray(col)


def read_subset(nodes: Nodes, method: str, task_ids: list[str]) -> DistanceMatrix:
    """The matrix restricted to `task_ids` (in that order), with per-seed values, params and noise floor: reads the
    chunks holding those rows and columns only (orthogonal selection), e.g. for a sampled check of a large matrix."""
    full = read_window(nodes, method, 0, 0)       # ids, consistently with the arrays
    path = L.distance_path(method)
    where = {t: i for i, t in enumerate(full.ids)}
    missing = [t for t in task_ids if t not in where]
    if missing:
        raise NotFound(f"task(s) {', '.join(missing[:5])} are not in the {method!r} distance matrix")
    index = np.array([where[t] for t in task_ids], dtype=np.int64)
    order = np.argsort(index)
    back = np.argsort(order)
    sorted_index = index[order]

    def sub(name: str) -> np.ndarray:
        block = np.asarray(nodes.array(f"{path}/{name}").oindex[sorted_index, sorted_index])
        return block[np.ix_(back, back)]

    attrs = nodes.attrs(path)
    seeds = [sub(k) for k in _seed_arrays(nodes, path)]
    return DistanceMatrix(list(task_ids), sub(L.DIST_VALUE), sub(L.DIST_STD), dict(attrs.get(L.ATTR_PARAMS, {})),
                          method, np.stack(seeds) if seeds else None, dict(attrs.get(ATTR_NOISE_FLOOR, {})))


@dataclass
class MatrixWindow:
    """A window of a matrix: value[a, b] = d(row_ids[a], col_ids[b]) for rows i0:i1 and columns j0:j1."""

    ids: list[str]          # every id of the matrix, in order (len = the matrix's size)
    rows: slice
    cols: slice
    value: np.ndarray
    std: np.ndarray

    @property
    def row_ids(self) -> list[str]:
        return self.ids[self.rows]

    @property
    def col_ids(self) -> list[str]:
        return self.ids[self.cols]


def read_window(nodes: Nodes, method: str, i0: int, i1: int, j0: int | None = None,
                j1: int | None = None) -> MatrixWindow:
    """Rows i0:i1 (and columns j0:j1, default all) of the matrix: reads only the chunks they cover, so a view of a
    10,000-task matrix costs its window, not 10⁸ cells."""
    path = L.distance_path(L.check_id("distance method", method))
    if not nodes.exists(path):
        empty = np.zeros((0, 0), np.float32)
        return MatrixWindow([], slice(0, 0), slice(0, 0), empty, empty.copy())
    for _ in range(_READ_RETRIES):
        before = nodes.attrs(path)
        generation = int(before.get(L.ATTR_GENERATION, 0))
        if generation % 2 == 0:
            ids = list(before.get(L.ATTR_IDS, []))
            n = len(ids)
            rows = slice(*slice(i0, i1).indices(n)[:2])
            cols = slice(*slice(0 if j0 is None else j0, n if j1 is None else j1).indices(n)[:2])
            value = nodes.read(f"{path}/{L.DIST_VALUE}", (rows, cols))
            std = nodes.read(f"{path}/{L.DIST_STD}", (rows, cols))
            if int(nodes.attrs(path).get(L.ATTR_GENERATION, 0)) == generation:
                return MatrixWindow(ids, rows, cols, np.asarray(value), np.asarray(std))
        time.sleep(_READ_RETRY_S)
    raise StoreError(f"the {method!r} distance matrix in store {nodes.path} stayed mid-rewrite; open the store for "
                     f"writing once to repair it")


def set_value(nodes: Nodes, method: str, source_id: str, target_id: str, value: float, std: float,
              seed_values: list[float] | None = None) -> None:
    path = L.distance_path(L.check_id("distance method", method))
    if not nodes.exists(path):
        raise NotFound(f"no {method!r} distance matrix in store {nodes.path}; add its tasks first")
    ids = list(nodes.attrs(path).get(L.ATTR_IDS, []))
    index = {}
    for role, task_id in (("source", source_id), ("target", target_id)):
        if task_id not in ids:
            raise NotFound(f"{role} task {task_id!r} is not in the {method!r} distance matrix of store {nodes.path}")
        index[role] = ids.index(task_id)
    i, j = index["source"], index["target"]
    with nodes.write_lock:
        nodes.array(f"{path}/{L.DIST_VALUE}")[i, j] = np.float32(value)
        nodes.array(f"{path}/{L.DIST_STD}")[i, j] = np.float32(std)
        if seed_values is not None and len(seed_values) >= 2:
            for k, v in enumerate(seed_values):
                _seed_array(nodes, path, k, len(ids))[i, j] = np.float32(v)


def set_noise_floor(nodes: Nodes, method: str, record: dict[str, Any]) -> None:
    """Stores a method's noise floor: {"distances": {task_id: [same-task distances]}, "kind": what differed, ...}."""
    path = L.distance_path(L.check_id("distance method", method))
    if not nodes.exists(path):
        raise NotFound(f"no {method!r} distance matrix in store {nodes.path}; add its tasks first")
    with nodes.write_lock:
        nodes.update_attrs(path, {ATTR_NOISE_FLOOR: plain(record, f"noise floor of {method!r}")})


def set_params(nodes: Nodes, method: str, params: dict[str, Any]) -> None:
    with nodes.write_lock:
        path = _ensure(nodes, method)
        nodes.update_attrs(path, {L.ATTR_PARAMS: plain(params, f"distance method {method!r} params")})


def journal_path(nodes: Nodes, method: str):
    return nodes.path / L.distance_path(method) / JOURNAL_FILE


def drop_task(nodes: Nodes, method: str, task_id: str) -> None:
    """Removes the task's row and column, keeping every other entry (journaled: see the module doc)."""
    path = L.distance_path(method)
    with nodes.write_lock:
        _roll_forward(nodes, method)  # a dead writer's rewrite first: the arrays may not match the ids until then
        V.forget(nodes, method, task_id)
        attrs = nodes.attrs(path)
        ids = list(attrs.get(L.ATTR_IDS, []))
        if task_id not in ids:
            return
        # per-seed arrays are not journaled: a removal drops them (mean and std stay; later pairs store them again)
        for name in _seed_arrays(nodes, path):
            nodes.delete(f"{path}/{name}")
        floor = dict(attrs.get(ATTR_NOISE_FLOOR, {}))
        if task_id in floor.get("distances", {}):
            floor["distances"] = {k: v for k, v in floor["distances"].items() if k != task_id}
            nodes.update_attrs(path, {ATTR_NOISE_FLOOR: floor})
        n = len(ids)
        value = np.asarray(nodes.array(f"{path}/{L.DIST_VALUE}")[:n, :n])
        std = np.asarray(nodes.array(f"{path}/{L.DIST_STD}")[:n, :n])
        journal = journal_path(nodes, method)
        tmp = journal.with_name(f".{JOURNAL_FILE}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, ids=np.array(ids, dtype=object).astype(str), value=value, std=std,
                     drop=np.array(task_id))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, journal)
        fault_point("distance-journal")
        _rewrite(nodes, method, ids, value, std, task_id)


def _rewrite(nodes: Nodes, method: str, ids: list[str], value: np.ndarray, std: np.ndarray, task_id: str) -> None:
    """Writes the matrix `value`/`std` over `ids` without `task_id`; idempotent, so a repair can run it again."""
    path = L.distance_path(method)
    k, n = ids.index(task_id), len(ids)
    keep = [i for i in range(n) if i != k]
    generation = int(nodes.attrs(path).get(L.ATTR_GENERATION, 0))
    generation += 1 if generation % 2 == 0 else 0
    nodes.update_attrs(path, {L.ATTR_GENERATION: generation})
    for name, old in ((L.DIST_VALUE, value), (L.DIST_STD, std)):
        arr = nodes.array(f"{path}/{name}")
        if arr.shape[0] < n - 1:  # resized already by the run that died: grow back, every cell is rewritten
            arr.resize((n - 1, n - 1))
        if n > 1:
            arr[: n - 1, : n - 1] = old[np.ix_(keep, keep)]
        fault_point("distance-rewrite")
        arr.resize((n - 1, n - 1))
    nodes.update_attrs(path, {L.ATTR_IDS: [ids[i] for i in keep], L.ATTR_GENERATION: generation + 1})
    journal_path(nodes, method).unlink(missing_ok=True)


def _roll_forward(nodes: Nodes, method: str) -> bool:
    """Finishes a journaled rewrite a dead writer left behind; True when there was one."""
    journal = journal_path(nodes, method)
    if not journal.is_file():
        return False
    try:
        with np.load(journal, allow_pickle=False) as data:
            ids = [str(i) for i in data["ids"]]
            value, std, task_id = data["value"], data["std"], str(data["drop"])
    except Exception:  # noqa: BLE001 - a torn journal means the rewrite never started (it is written first)
        journal.unlink(missing_ok=True)
        return False
    current = nodes.attrs(L.distance_path(method))
    if task_id in current.get(L.ATTR_IDS, []) or int(current.get(L.ATTR_GENERATION, 0)) % 2:
        _rewrite(nodes, method, ids, value, std, task_id)
    else:  # the rewrite finished; only the journal's deletion was lost
        journal.unlink(missing_ok=True)
    return True


def repair(nodes: Nodes) -> list[str]:
    """Finishes rewrites a dead writer left behind (from the journal); a rewrite without a journal (an older
    writer's) cannot be trusted: that matrix is marked all not computed. Returns what it changed, one line each."""
    changed = []
    runs = nodes.path / L.RUNS
    for leftover in sorted(runs.glob(f"{L.NEW_MATRIX_PREFIX}*")) if runs.is_dir() else []:
        shutil.rmtree(leftover, ignore_errors=True)
        changed.append(f"deleted {L.RUNS}/{leftover.name}, a distance matrix whose creation was interrupted")
    for method in methods(nodes):
        path = L.distance_path(method)
        with nodes.write_lock:
            changed += _restore_arrays(nodes, method)
            for stale in (nodes.path / path).glob(f".{JOURNAL_FILE}.*.tmp"):
                stale.unlink(missing_ok=True)
                changed.append(f"{method!r} distance matrix: deleted the unfinished journal {stale.name}")
            if _roll_forward(nodes, method):
                changed.append(f"{method!r} distance matrix: finished a task removal interrupted mid-rewrite")
                continue
            attrs = nodes.attrs(path)
            generation = int(attrs.get(L.ATTR_GENERATION, 0))
            if generation % 2 == 0:
                continue
            n = len(attrs.get(L.ATTR_IDS, []))
            for name in _arrays(nodes, path):
                arr = nodes.array(f"{path}/{name}")
                arr.resize((n, n))
                arr[:, :] = np.nan
            nodes.update_attrs(path, {L.ATTR_GENERATION: generation + 1})
            changed.append(f"{method!r} distance matrix: interrupted rewrite without a journal; every entry "
                           f"marked not computed")
    return changed


def _restore_arrays(nodes: Nodes, method: str) -> list[str]:
    """A matrix group without its value or std array (left by a writer older than the atomic creation): the
    missing array is created, every entry then not computed (a value without its std cannot be trusted alone)."""
    path = L.distance_path(method)
    group = nodes.group(path)
    present = set(group.array_keys())
    missing = [name for name in (L.DIST_VALUE, L.DIST_STD) if name not in present]
    if not missing:
        return []
    n = len(nodes.attrs(path).get(L.ATTR_IDS, []))
    for name in missing:
        group.create_array(name, shape=(n, n), chunks=(L.DIST_CHUNK, L.DIST_CHUNK), dtype="float32",
                           fill_value=np.nan)
    for name in _arrays(nodes, path):
        if name not in missing and n:
            nodes.array(f"{path}/{name}")[:, :] = np.nan
    return [f"{method!r} distance matrix: created its missing array(s) {', '.join(map(repr, missing))}"
            + ("; every entry marked not computed" if n else "")]


def _seed_array(nodes, path: str, k: int, n: int):
    """Seed k's [n, n] value array of the matrix at `path`, created (NaN) when it is not there yet."""
    name = f"{SEED_PREFIX}{k}"
    if name not in set(nodes.group(path).array_keys()):
        nodes.group(path).create_array(name, shape=(n, n), chunks=(L.DIST_CHUNK, L.DIST_CHUNK), dtype="float32",
                                       fill_value=np.nan)
    return nodes.array(f"{path}/{name}")
