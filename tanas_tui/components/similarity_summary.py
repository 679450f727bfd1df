"""One line under the distance matrix: does it put same-group tasks together? (`distances --check`'s summary.)"""
from __future__ import annotations

from typing import Any

from rich.text import Text

from tanas_tui.components.line import Line
from tanas_tui.similarity_check import check_matrix, task_groups

PERMUTATIONS = 200     # the panel's quick p-value; `tanas-tui distances --check` uses 1,000


class SimilaritySummary(Line):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("", **kwargs)
        self._key: tuple | None = None

    def show(self, state, method: str) -> None:
        """Recomputed only when the matrix or the tasks' groups changed."""
        matrix = state.matrices.get(method)
        if matrix is None or not matrix.ids:
            self._key = None   # the next matrix shown is computed afresh, even the one shown before this
            self.set(Text(f"{method}: not checked (no {method} distances in the store yet)", style="dim"))
            return
        tasks = [{"id": tid, "name": info.name, "group": info.record.group, "source": info.source}
                 for tid, info in state.tasks.items()]
        groups = task_groups(tasks)
        key = (method, tuple(matrix.ids), matrix.value.tobytes(), tuple(sorted(groups.items())))
        if key == self._key:
            return
        self._key = key
        report = check_matrix(matrix, groups, {t["id"]: t["name"] for t in tasks}, permutations=PERMUTATIONS)
        style = "green" if report.detected else ("yellow" if report.hit_rate is not None else "dim")
        self.set(Text(report.summary(), style=style))
