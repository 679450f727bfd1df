"""Task distance matrices: /distances/<method>/{value,std} float32 [N, N], NaN = not computed; ids in attrs.

With `seeds >= 2` each seed's own matrix is kept too, as /distances/<method>/seed_<k> (same shape, grown with
value and std; a task removal drops them), so the similarity check can ask whether a nearest task holds across seeds.
The noise floor of a method (same-task distances, see `set_noise_floor`) is an attribute of the matrix's group.

Adding a task grows both arrays by one row and column (new cells NaN) before the ids attribute names it, so a reader
that cuts at len(ids) is always consistent. Removing a task rewrites the matrix; that rewrite is bracketed by an
odd `generation` (a seqlock) so a reader retries instead of seeing a half-rewritten matrix, and it is journaled: the
whole matrix before the rewrite is saved to `rewrite.npz` in the matrix's group first, so a writer that dies
mid-rewrite is rolled forward from the journal by the next writer (`repair`) instead of losing the matrix.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from store import layout as L
from store.errors import NotFound, StoreError
from store.faults import fault_point
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
    L.check_id("distance method", method)
    path = L.distance_path(method)
    if nodes.exists(path):
        return path
    nodes.ensure_group(L.DISTANCES)
    group = nodes.create_group(path, {L.ATTR_IDS: [], L.ATTR_PARAMS: {}, L.ATTR_GENERATION: 0})
    for name in (L.DIST_VALUE, L.DIST_STD):
        group.create_array(
            name, shape=(0, 0), chunks=(L.DIST_CHUNK, L.DIST_CHUNK), dtype="float32", fill_value=np.nan
        )
    return path


def add_task(nodes: Nodes, method: str, task_id: str) -> None:
    with nodes.write_lock:
        path = _ensure(nodes, method)
        ids = list(nodes.attrs(path).get(L.ATTR_IDS, []))
        if task_id in ids:
            return
        n = len(ids)
        for name in _arrays(nodes, path):
            arr = nodes.array(f"{path}/{name}")
            arr.resize((n + 1, n + 1))
            # boundary chunks may still hold values of a removed task: new cells must be NaN explicitly
            arr[n, :] = np.nan
            arr[:, n] = np.nan
        nodes.update_attrs(path, {L.ATTR_IDS: ids + [task_id]})


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
            group = nodes.group(path)
            existing = set(group.array_keys())
            for k, v in enumerate(seed_values):
                name = f"{SEED_PREFIX}{k}"
                if name not in existing:
                    group.create_array(name, shape=(len(ids), len(ids)), chunks=(L.DIST_CHUNK, L.DIST_CHUNK),
                                       dtype="float32", fill_value=np.nan)
                nodes.array(f"{path}/{name}")[i, j] = np.float32(v)


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
    for method in methods(nodes):
        path = L.distance_path(method)
        with nodes.write_lock:
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
