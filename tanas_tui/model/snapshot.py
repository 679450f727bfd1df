"""The store reads behind the UI's model: run in thread workers (zarr I/O never on the event loop), merged into the
model by `UiModel.load_snapshot` / `load_search` / `load_task`. Read-only; the store is opened per read."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tanas_tui.model.matrix import Matrix
from tanas_tui.model.state import METHODS

if TYPE_CHECKING:
    from store.search import SearchRecord


@dataclass
class StoreSnapshot:
    """Everything `read_store` reads in one go."""

    path: str
    attrs: dict[str, Any]
    tasks: list[dict[str, Any]]
    matrices: dict[str, Matrix]
    searches: list[dict[str, Any]]


def read_store(path: str | Path) -> StoreSnapshot:
    """Tasks, every method's distance matrix and the searches' attrs (not their trajectories)."""
    from store import Store, StoreError

    with Store.open(Path(path), mode="r") as store:
        tasks = store.list_tasks()
        matrices: dict[str, Matrix] = {}
        for method in METHODS:
            try:
                dm = store.distances(method)
            except (StoreError, KeyError):   # NotFound is a StoreError: no such matrix yet
                continue
            matrices[method] = Matrix(method, list(dm.ids), np.array(dm.value, np.float32, copy=True),
                                      np.array(dm.std, np.float32, copy=True), dict(dm.params or {}))
        return StoreSnapshot(str(path), dict(store.attrs), tasks, matrices, store.list_searches())


def read_task(path: str | Path, task_id: str) -> dict[str, Any]:
    from store import Store

    with Store.open(Path(path), mode="r") as store:
        return {**store.task(task_id), "id": task_id}


def read_search(path: str | Path, run_id: str) -> SearchRecord:
    """One search's attrs and its step arrays, cut at committed_steps."""
    from store import Store

    with Store.open(Path(path), mode="r") as store:
        return store.read_search(run_id)
