"""What the store says has happened, as lines: the history `attach` prints before it follows, and the follower for a
store written by a headless `tanas-tui run` (no engine, so no events: the store's records are the progress).

Plain reads through `store` only; the writer's own flush order (data first, then `committed_steps`) makes every poll
consistent.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tanas_tui import units

POLL_S = 1.0


@dataclass
class StoreView:
    tasks: dict[str, tuple[str, str, str, float | None]] = field(default_factory=dict)   # id -> name, role, status, acc
    distances: dict[str, tuple[int, int]] = field(default_factory=dict)                  # method -> computed, total
    searches: dict[str, tuple[str, str, int, Any]] = field(default_factory=dict)         # id -> target, status, steps, result


def store_writer(store_path: Path | str) -> int | None:
    """The live pid holding the store's writer lock when it is not this process (None: nobody writes)."""
    from store.lock import pid_alive, read_pid

    pid = read_pid(Path(store_path) / "runs" / "lock")
    return pid if pid is not None and pid != os.getpid() and pid_alive(pid) else None


def read_view(store_path: Path | str) -> StoreView:
    from engine.choices import DISTANCE_METHODS
    from store import Store, StoreError

    view = StoreView()
    with Store.open(Path(store_path), mode="r") as st:
        names = {}
        for t in st.list_tasks():
            acc = t.get("val_acc")
            names[str(t["id"])] = str(t.get("name", t["id"]))
            view.tasks[str(t["id"])] = (names[str(t["id"])], str(t.get("role") or "base"), str(t.get("status") or ""),
                                        float(acc) if isinstance(acc, (int, float)) else None)
        for method in DISTANCE_METHODS:
            try:
                dm = st.distances(method)
            except (StoreError, KeyError):
                continue
            n = len(dm.ids)
            if n:
                computed = sum(1 for row in dm.value.tolist() for v in row if not math.isnan(v)) - n
                view.distances[method] = (max(0, computed), n * (n - 1))
        for s in st.list_searches():
            target = names.get(str(s.get("target")), str(s.get("target_name") or s.get("target") or "?"))
            view.searches[str(s["id"])] = (target, str(s.get("status") or ""), int(s.get("committed_steps") or 0),
                                           s.get("result") or None)
    return view


def _acc(value: float | None) -> str:
    return f", val acc {units.pct(value)}" if value is not None else ""


def _result(result: Any) -> str:
    if isinstance(result, dict) and isinstance(result.get("test_error"), (int, float)):
        return f", test error {units.test_error(result['test_error'])}"
    return ""


def history_lines(view: StoreView) -> list[str]:
    """Everything the store holds, one line per task, distance method and search."""
    lines = [f"task {name} ({role}): {status or '?'}{_acc(acc)}" for name, role, status, acc in view.tasks.values()]
    lines += [f"distances ({method}): {done}/{total} computed" for method, (done, total) in view.distances.items()]
    lines += [f"search {rid} for {target}: {status}, {steps} α steps{_result(result)}"
              for rid, (target, status, steps, result) in view.searches.items()]
    return lines


def change_lines(old: StoreView, new: StoreView) -> list[str]:
    """What changed between two reads of the store."""
    lines = []
    for tid, (name, role, status, acc) in new.tasks.items():
        before = old.tasks.get(tid)
        if before is None:
            lines.append(f"task {name} added as {role}: {status}")
        elif before[2] != status:
            lines.append(f"task {name}: {status}{_acc(acc)}")
    for tid in old.tasks.keys() - new.tasks.keys():
        lines.append(f"task {old.tasks[tid][0]} removed")
    for method, (done, total) in new.distances.items():
        if old.distances.get(method) != (done, total):
            lines.append(f"distances ({method}): {done}/{total} computed")
    for rid, (target, status, steps, result) in new.searches.items():
        before = old.searches.get(rid)
        if before is None:
            lines.append(f"search {rid} for {target} started: {status}")
        if before is None or before[2] != steps:
            if steps:
                lines.append(f"search {rid}: {steps} α steps")
        if before is not None and before[1] != status:
            lines.append(f"search {rid}: {status}{_result(result)}")
    return lines


def follow_store(store_path: Path | str, pid: int, emit: Callable[[str], None], poll: float = POLL_S,
                 view: StoreView | None = None) -> StoreView:
    """Prints the store's changes while process `pid` writes it; returns the last view when it has let go."""
    from store.lock import pid_alive

    view = read_view(store_path) if view is None else view
    while True:
        writing = pid_alive(pid) and store_writer(store_path) == pid
        time.sleep(0 if not writing else poll)
        new = read_view(store_path)
        for line in change_lines(view, new):
            emit(line)
        view = new
        if not writing:
            return view
