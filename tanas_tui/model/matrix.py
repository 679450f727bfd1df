"""One distance method's matrix as the UI holds it: the store's matrix, grown live by `distance` events."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Matrix:
    """value[i, j] = d(source=ids[i], target=ids[j]); NaN = not computed."""

    method: str
    ids: list[str] = field(default_factory=list)
    value: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    std: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    params: dict[str, Any] = field(default_factory=dict)

    def index(self, task_id: str) -> int:
        return self.ids.index(task_id)

    def ensure(self, task_id: str) -> int:
        if task_id in self.ids:
            return self.ids.index(task_id)
        n = len(self.ids)
        value = np.full((n + 1, n + 1), np.nan, np.float32)
        std = np.full((n + 1, n + 1), np.nan, np.float32)
        value[:n, :n] = self.value
        std[:n, :n] = self.std
        value[n, n] = 0.0
        std[n, n] = 0.0
        self.ids.append(task_id)
        self.value, self.std = value, std
        return n

    def drop(self, task_id: str) -> None:
        if task_id not in self.ids:
            return
        i = self.ids.index(task_id)
        self.ids.pop(i)
        self.value = np.delete(np.delete(self.value, i, 0), i, 1)
        self.std = np.delete(np.delete(self.std, i, 0), i, 1)

    def set(self, source: str, target: str, value: float, std: float) -> bool:
        """Sets one entry; False when it already held these values (nothing to redraw)."""
        i, j = self.ensure(source), self.ensure(target)
        if self.value[i, j] == value and self.std[i, j] == std:
            return False
        self.value[i, j] = value
        self.std[i, j] = std
        return True

    def keep_live(self, live: "Matrix") -> None:
        """Entries `live` holds that this (freshly read) matrix does not have yet: the store has not committed them."""
        for i, s in enumerate(live.ids):
            for j, t in enumerate(live.ids):
                v = live.value[i, j]
                if not math.isnan(v) and s in self.ids and t in self.ids:
                    a, b = self.index(s), self.index(t)
                    if math.isnan(self.value[a, b]):
                        self.value[a, b], self.std[a, b] = v, live.std[i, j]

    def nearest(self, target: str, k: int) -> list[tuple[str, float]]:
        """The k sources closest to `target` (the target itself excluded), nearest first."""
        if target not in self.ids:
            return []
        j = self.ids.index(target)
        pairs = [(self.ids[i], float(self.value[i, j])) for i in range(len(self.ids))
                 if i != j and not math.isnan(self.value[i, j])]
        pairs.sort(key=lambda p: (p[1], p[0]))
        return pairs[:k]

    def computed(self) -> int:
        return int(np.count_nonzero(~np.isnan(self.value)))
