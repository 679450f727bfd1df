"""The distance part of `Store` (a mixin it inherits): the matrices, their parameters, windows and the vector forms'
task vectors. Every method goes through the store's `_reading` / `_writing` nodes, as the rest of `Store` does."""
from __future__ import annotations

from typing import Any

from store import distances as D
from store import layout as L
from store import vectors as V
from store.distances import DistanceMatrix
from store.errors import NotFound


class DistanceAccess:
    def distance_methods(self) -> list[str]:
        return D.methods(self._reading())

    def distances(self, method: str) -> DistanceMatrix:
        """The matrix for `method` (empty when none is stored yet)."""
        return D.read(self._reading(), method)

    def add_distance_task(self, method: str, task_id: str) -> None:
        """Grows the matrix by the task's row and column (NaN); existing entries stay. No-op if already there."""
        nodes = self._writing("add a task to a distance matrix")
        self._require_task(task_id)
        D.add_task(nodes, method, task_id)

    def add_distance_tasks(self, method: str, task_ids: list[str]) -> None:
        """Grows the matrix by every task of `task_ids` it lacks, in one resize."""
        nodes = self._writing("add tasks to a distance matrix")
        known = set(self.task_ids())
        for task_id in task_ids:
            if task_id not in known:
                raise NotFound(f"no task with id {task_id!r} in store {self.path}")
        D.add_tasks(nodes, method, list(task_ids))

    def distance_params(self, method: str) -> dict[str, Any]:
        """The parameters the matrix was computed with ({} when none), without reading its arrays."""
        nodes = self._reading()
        path = L.distance_path(L.check_id("distance method", method))
        return dict(nodes.attrs(path).get(L.ATTR_PARAMS, {})) if nodes.exists(path) else {}

    def distance_ids(self, method: str) -> list[str]:
        """The matrix's task ids, in row order, without reading its arrays."""
        nodes = self._reading()
        path = L.distance_path(L.check_id("distance method", method))
        return list(nodes.attrs(path).get(L.ATTR_IDS, [])) if nodes.exists(path) else []

    def set_distances(self, method: str, source_ids: list[str], target_ids: list[str], value, std,
                      seed_values=None) -> None:
        """Stores the block d(source_ids[a], target_ids[b]) = value[a, b] (std, per-seed values [S, a, b]) in whole
        slices: a task's row or column is one write of the chunks it covers."""
        D.set_block(self._writing("set distances"), method, list(source_ids), list(target_ids), value, std,
                    seed_values)

    def distance_cross(self, method: str, task_id: str):
        """(ids, row d(task, ids), column d(ids, task)) of the matrix's values, reading only that row and column."""
        return D.read_cross(self._reading(), method, task_id)

    def distance_subset(self, method: str, task_ids: list[str]) -> DistanceMatrix:
        """The matrix restricted to `task_ids` (reads only their rows' and columns' chunks)."""
        return D.read_subset(self._reading(), method, list(task_ids))

    def distance_window(self, method: str, i0: int, i1: int, j0: int | None = None, j1: int | None = None):
        """Rows i0:i1 x columns j0:j1 (default all) of the matrix (`store.distances.MatrixWindow`), reading only the
        chunks they cover: what a view of a large matrix should read."""
        return D.read_window(self._reading(), method, i0, i1, j0, j1)

    def save_task_vector(self, method: str, task_id: str, vector, seed_index: int = 0) -> None:
        """Stores the task's vector of a vector distance form (`store.vectors.sqrt_unit_trace` of its Fisher)."""
        nodes = self._writing("save a task vector")
        self._require_task(task_id)
        D.ensure(nodes, method)
        V.VectorTable(nodes, L.check_id("distance method", method), seed_index).append(task_id, vector)

    def save_task_vectors(self, method: str, task_ids: list[str], vectors, seed_index: int = 0) -> None:
        """`save_task_vector` for many tasks at once (one write and one id update for all of them)."""
        nodes = self._writing("save task vectors")
        known = set(self.task_ids())
        for task_id in task_ids:
            if task_id not in known:
                raise NotFound(f"no task with id {task_id!r} in store {self.path}")
        D.ensure(nodes, method)
        V.VectorTable(nodes, L.check_id("distance method", method), seed_index).extend(list(task_ids), vectors)

    def task_vectors(self, method: str, seed_index: int = 0) -> "V.VectorTable":
        """The stored task vectors of `method` and seed (empty when none): ids, memmapped rows, exact scans."""
        return V.VectorTable(self._reading(), L.check_id("distance method", method), seed_index)

    def set_distance(self, method: str, source_id: str, target_id: str, value: float, std: float = 0.0,
                     seed_values: list[float] | None = None) -> None:
        """Stores d(source, target) as mean `value` and `std` over seeds (and each seed's value when 2 or more)."""
        D.set_value(self._writing("set a distance"), method, source_id, target_id, value, std, seed_values)

    def set_noise_floor(self, method: str, record: dict[str, Any]) -> None:
        """The method's noise floor (same-task distances); read back as `distances(method).noise_floor`."""
        D.set_noise_floor(self._writing("store a noise floor"), method, record)

    def set_distance_params(self, method: str, params: dict[str, Any]) -> None:
        D.set_params(self._writing("set distance parameters"), method, params)
