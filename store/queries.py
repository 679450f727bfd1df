"""Questions answered from the store alone (no training): the nearest (and farthest) dictionary tasks of a task."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from store.errors import NotFound


@dataclass(frozen=True)
class Neighbor:
    task_id: str
    name: str
    distance: float
    std: float


def nearest(store, target: str, k: int = 3, method: str = "fisher") -> list[Neighbor]:
    """The k tasks b with the smallest d(b, target), excluding the target and tasks with role "target".

    Entries not computed yet (NaN) are left out.
    """
    return _ranked(store, target, k, method)[:k]


def farthest(store, target: str, k: int = 3, method: str = "fisher") -> list[Neighbor]:
    """The k tasks b with the LARGEST d(b, target), farthest first (the control arm's space); same exclusions."""
    ranked = _ranked(store, target, k, method)
    ranked.sort(key=lambda n: (-n.distance, n.name))
    return ranked[:k]


def _ranked(store, target: str, k: int, method: str) -> list[Neighbor]:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    tid = store.find_task(target)
    matrix = store.distances(method)
    if tid not in matrix.ids:
        raise NotFound(f"task {target!r} has no {method!r} distances yet: run `tanas-tui distances --method {method}`")
    tasks = {t["id"]: t for t in store.list_tasks()}
    j = matrix.index(tid)
    out = []
    for i, b in enumerate(matrix.ids):
        attrs = tasks.get(b)
        if b == tid or attrs is None or attrs.get("role") == "target" or np.isnan(matrix.value[i, j]):
            continue
        out.append(Neighbor(b, attrs.get("name", b), float(matrix.value[i, j]), float(matrix.std[i, j])))
    out.sort(key=lambda n: (n.distance, n.name))
    return out
