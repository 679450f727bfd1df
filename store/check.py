"""The store's invariants, checked and repaired: what `tanas-tui store check [--repair]` runs.

Invariants: the task order names exactly the task groups (none half-removed); every probe is complete with finite
parameters, every Fisher vector completely written (its `sum` mark), finite, not all zeros and summing to its mark,
and a `ready` task has both; each distance matrix names stored tasks only, once each, with [N, N] arrays and no
rewrite in progress; every search has its arrays, at least `committed_steps` rows in each, no orphaned temporary
checkpoint file and a readable checkpoint.

`repair_on_open` is the cheap part (no array data is read): a writer runs it each time it opens the store, so what
a killed writer left half-done is finished or undone before anything else is written.
"""
from __future__ import annotations

import io
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from store import distances as D
from store import layout as L
from store.errors import NotFound
from store.faults import fault_point
from store.nodes import Nodes


@dataclass
class CheckReport:
    problems: list[str] = field(default_factory=list)   # what was wrong (before any repair)
    repaired: list[str] = field(default_factory=list)   # what the repair changed
    remaining: list[str] = field(default_factory=list)  # the problems still there
    writer: int | None = None                            # a live writer's pid (a read-only check beside it)
    in_progress: list[str] = field(default_factory=list) # beside a live writer: what its unfinished work looks like
    recoveries: int = 0                                  # interrupted operations writers' opens finished or undid
    recovery_log: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.remaining


def task_ids(nodes: Nodes) -> list[str]:
    attrs = nodes.attrs(L.TASKS) if nodes.exists(L.TASKS) else {}
    removing = set(attrs.get(L.ATTR_REMOVING, []))
    ids = list(attrs[L.ATTR_ORDER]) if L.ATTR_ORDER in attrs else nodes.child_groups(L.TASKS)
    return [i for i in ids if i not in removing]


def finish_removal(nodes: Nodes, task_id: str) -> None:
    """The rest of a removal once the id is in /tasks `removing`; safe to run again after a kill at any point."""
    with nodes.write_lock:
        for method in D.methods(nodes):
            D.drop_task(nodes, method, task_id)
        fault_point("remove-dropped")
        nodes.delete(L.task_path(task_id))
        fault_point("remove-deleted")
        attrs = nodes.attrs(L.TASKS)
        nodes.update_attrs(L.TASKS, {
            L.ATTR_ORDER: [i for i in attrs.get(L.ATTR_ORDER, []) if i != task_id],
            L.ATTR_REMOVING: [i for i in attrs.get(L.ATTR_REMOVING, []) if i != task_id],
            L.ATTR_REMOVING_NAMES: {k: v for k, v in attrs.get(L.ATTR_REMOVING_NAMES, {}).items() if k != task_id},
        })


def repair_on_open(nodes: Nodes) -> list[str]:
    """Finishes interrupted removals and matrix rewrites, drops matrix rows of tasks that are gone, deletes orphaned
    temporary files. Runs under the writer lock, so every leftover belongs to a writer that died."""
    changed: list[str] = []
    with nodes.write_lock:
        changed += D.repair(nodes)
        names = nodes.attrs(L.TASKS).get(L.ATTR_REMOVING_NAMES, {})
        for task_id in list(nodes.attrs(L.TASKS).get(L.ATTR_REMOVING, [])):
            finish_removal(nodes, task_id)
            label = f"task {names[task_id]!r} ({task_id})" if task_id in names else f"task {task_id}"
            changed.append(f"{label}: finished its interrupted removal")
        for task_id in [t for t in nodes.attrs(L.TASKS).get(L.ATTR_ORDER, []) if not nodes.exists(L.task_path(t))]:
            nodes.update_attrs(L.TASKS, {L.ATTR_ORDER: [
                i for i in nodes.attrs(L.TASKS).get(L.ATTR_ORDER, []) if i != task_id]})
            changed.append(f"task {task_id}: dropped from the task order (it has no data)")
        changed += _drop_half_written(nodes)
        tasks = set(task_ids(nodes))
        for method in D.methods(nodes):
            for gone in [i for i in nodes.attrs(L.distance_path(method)).get(L.ATTR_IDS, []) if i not in tasks]:
                D.drop_task(nodes, method, gone)
                changed.append(f"{method!r} distance matrix: dropped the row and column of {gone}, not a stored task")
        for run_id in nodes.child_groups(L.SEARCHES):
            for tmp in (nodes.path / L.checkpoint_group_path(run_id)).glob(L.CHECKPOINT_TMP_GLOB):
                tmp.unlink(missing_ok=True)
                changed.append(f"search {run_id}: deleted the orphaned temporary checkpoint {tmp.name}")
        runs = nodes.path / L.RUNS
        if runs.is_dir():
            for leftover in runs.glob(f"{L.NEW_SEARCH_PREFIX}*"):
                shutil.rmtree(leftover, ignore_errors=True)
                changed.append(f"deleted {L.RUNS}/{leftover.name}, a search whose creation was interrupted")
    return changed


def _drop_half_written(nodes: Nodes) -> list[str]:
    """A probe without its parameter names and a Fisher vector still marked `writing` were being written by a writer
    that died (the lock is ours now): delete them, and take back the task's `ready` if it had it. Attributes only."""
    changed = []
    for task_id in task_ids(nodes):
        if not nodes.exists(L.task_path(task_id)):
            continue
        for seed in nodes.child_groups(f"{L.task_path(task_id)}/{L.PROBE}"):
            path = f"{L.task_path(task_id)}/{L.PROBE}/{seed}"
            if L.ATTR_PARAMS not in nodes.attrs(path):
                _drop(nodes, task_id, path)
                changed.append(f"task {task_id}: deleted probe {seed}, whose training was interrupted (trained "
                               f"again by the next `tasks add` or `run`)")
        for seed, path in _fisher_paths(nodes, task_id):
            if L.ATTR_WRITING in nodes.array(path).attrs:
                _drop(nodes, task_id, path)
                changed.append(f"task {task_id}: deleted Fisher vector {seed}, whose write was interrupted "
                               f"(recomputed by the next `tasks add` or `run`)")
    return changed


def check(nodes: Nodes, repair: bool = False, writer: int | None = None) -> CheckReport:
    """Every invariant; with `repair` (a writer's `nodes`), fixes what it can. Run `repair_on_open` first when
    repairing (opening the store for writing does) so its findings are not reported twice.

    `writer`: the pid of a live process holding the writer lock (a read-only check beside it). What a write under way
    looks like from outside (a probe without its names yet, a Fisher vector still `writing`, a removal's journal, a
    matrix growing, a search being created) is then listed in `in_progress`, not as a problem; only what no write
    window produces (bad data in a complete item, an unreadable checkpoint, a duplicated row) stays a problem."""
    root = nodes.attrs("")
    report = CheckReport(writer=writer, recoveries=int(root.get(L.ATTR_RECOVERIES, 0)),
                         recovery_log=list(root.get(L.ATTR_RECOVERY_LOG, [])))

    def problem(text: str, fix=None, fixed: str | None = None, transient: bool = True) -> None:
        if writer is not None and transient:
            report.in_progress.append(text)
            return
        report.problems.append(text)
        if repair and fix is not None:
            fix()
            report.repaired.append(fixed or text)
        else:
            report.remaining.append(text)

    _check_tasks(nodes, problem)
    _check_matrices(nodes, problem)
    _check_searches(nodes, problem)
    return report


def _check_tasks(nodes: Nodes, problem) -> None:
    attrs = nodes.attrs(L.TASKS) if nodes.exists(L.TASKS) else {}
    for task_id in attrs.get(L.ATTR_REMOVING, []):
        problem(f"task {task_id}: its removal was interrupted",
                lambda t=task_id: finish_removal(nodes, t), f"task {task_id}: finished its removal")
    order = list(attrs.get(L.ATTR_ORDER, []))
    groups = set(nodes.child_groups(L.TASKS))
    for task_id in order:
        if task_id not in groups:
            problem(f"task {task_id}: in the task order but has no group",
                    lambda t=task_id: nodes.update_attrs(L.TASKS, {L.ATTR_ORDER: [
                        i for i in nodes.attrs(L.TASKS).get(L.ATTR_ORDER, []) if i != t]}),
                    f"task {task_id}: dropped from the task order (it has no data)")
    for task_id in sorted(groups - set(order)):
        problem(f"task group {task_id}: not in the task order (left by an interrupted add)",
                lambda t=task_id: nodes.delete(L.task_path(t)), f"task group {task_id}: deleted")
    for task_id in [t for t in order if t in groups]:
        for seed in nodes.child_groups(f"{L.task_path(task_id)}/{L.PROBE}"):
            path = f"{L.task_path(task_id)}/{L.PROBE}/{seed}"
            probe_attrs = nodes.attrs(path)
            if L.ATTR_PARAMS not in probe_attrs:
                problem(f"task {task_id}: probe {seed} is incomplete (its training was interrupted)",
                        lambda p=path, t=task_id: _drop(nodes, t, p),
                        f"task {task_id}: deleted incomplete probe {seed}")
                continue
            bad = _probe_data_problem(nodes, path, probe_attrs[L.ATTR_PARAMS])
            if bad:
                problem(f"task {task_id}: probe {seed} {bad}", lambda p=path, t=task_id: _drop(nodes, t, p),
                        f"task {task_id}: deleted probe {seed} (the next `tasks add` or `run` trains it again)",
                        transient=not bad.startswith("has NaN"))   # a probe being replaced lacks arrays a moment
        for seed, path in _fisher_paths(nodes, task_id):
            bad = _fisher_data_problem(nodes, path)
            if bad:
                problem(f"task {task_id}: Fisher vector {seed} {bad}", lambda p=path, t=task_id: _drop(nodes, t, p),
                        f"task {task_id}: deleted Fisher vector {seed} (the next `tasks add` or `run` recomputes it)",
                        transient=bad.startswith("is incomplete"))
        if nodes.attrs(L.task_path(task_id)).get("status") == "ready" and not (
                _probe_complete(nodes, L.probe_path(task_id, 0))
                and _fisher_complete(nodes, L.fisher_path(task_id, 0))):
            problem(f"task {task_id}: marked ready but its probe or Fisher vector is missing",
                    lambda t=task_id: _unready(nodes, t),
                    f"task {task_id}: marked training (the next `tasks add` or `run` completes it)")


def _fisher_paths(nodes: Nodes, task_id: str) -> list[tuple[str, str]]:
    group = L.fisher_group_path(task_id)
    if not nodes.exists(group):
        return []
    return [(name, f"{group}/{name}") for name, _ in sorted(nodes.group(group).arrays())]


def _probe_complete(nodes: Nodes, path: str) -> bool:
    return nodes.exists(path) and L.ATTR_PARAMS in nodes.attrs(path)


def _fisher_complete(nodes: Nodes, path: str) -> bool:
    return nodes.exists(path) and L.ATTR_WRITING not in nodes.array(path).attrs


def _unready(nodes: Nodes, task_id: str) -> None:
    if nodes.attrs(L.task_path(task_id)).get("status") == "ready":
        nodes.update_attrs(L.task_path(task_id), {"status": "training"})


def _drop(nodes: Nodes, task_id: str, path: str) -> None:
    """Deletes a task's probe or Fisher vector that is not what it vouches for; the task is no longer ready."""
    nodes.delete(path)
    _unready(nodes, task_id)


def _fisher_data_problem(nodes: Nodes, path: str) -> str | None:
    """What is wrong with a stored Fisher vector's data (it is read: a few hundred kB per task), or None."""
    arr = nodes.array(path)
    if L.ATTR_WRITING in arr.attrs:
        return "is incomplete (its write was interrupted)"
    try:
        vec = np.asarray(arr[...], dtype=np.float64)
    except Exception as exc:  # noqa: BLE001 - any codec failure is the finding
        return f"is unreadable ({type(exc).__name__})"
    if vec.ndim != 1 or vec.size == 0:
        return f"has shape {vec.shape}, expected a non-empty vector"
    if not np.isfinite(vec).all():
        return "holds NaN or infinite entries"
    total = float(vec.sum())
    if total == 0.0:
        return "sums to zero (its data was never written)"
    recorded = arr.attrs.get(L.ATTR_SUM)
    if recorded is not None and abs(total - float(recorded)) > 1e-4 * max(abs(float(recorded)), 1e-30):
        return f"sums to {total:.6g}, not the {float(recorded):.6g} recorded when it was written (data lost)"
    return None


def _probe_data_problem(nodes: Nodes, path: str, names: list[str]) -> str | None:
    for name in names:
        key = f"{path}/{L.param_key(name)}"
        if not nodes.exists(key):
            return f"lacks its parameter {name!r}"
        try:
            value = np.asarray(nodes.array(key)[...])
        except Exception as exc:  # noqa: BLE001
            return f"has an unreadable parameter {name!r} ({type(exc).__name__})"
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            return f"has NaN or infinite values in {name!r}"
    return None


def _check_matrices(nodes: Nodes, problem) -> None:
    tasks = set(task_ids(nodes))
    for method in D.methods(nodes):
        path = L.distance_path(method)
        attrs = nodes.attrs(path)
        what = f"{method!r} distance matrix"
        if int(attrs.get(L.ATTR_GENERATION, 0)) % 2 or D.journal_path(nodes, method).exists():
            problem(f"{what}: a task removal was interrupted mid-rewrite", lambda: D.repair(nodes),
                    f"{what}: finished the interrupted rewrite")
            continue
        ids = list(attrs.get(L.ATTR_IDS, []))
        if len(set(ids)) != len(ids):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            problem(f"{what}: names task(s) {', '.join(dupes)} more than once",  # not repairable: which row is right?
                    transient=False)
        for gone in [i for i in dict.fromkeys(ids) if i not in tasks]:
            problem(f"{what}: has a row and column for {gone}, which is not a stored task",
                    lambda g=gone, m=method: D.drop_task(nodes, m, g), f"{what}: dropped {gone}")
        n = len(ids)
        for name in (L.DIST_VALUE, L.DIST_STD):
            try:
                shape = nodes.array(f"{path}/{name}").shape
            except NotFound:
                problem(f"{what}: array {name!r} is missing")
                continue
            if shape != (n, n):
                def grow(name=name, shape=shape):
                    arr = nodes.array(f"{path}/{name}")
                    arr.resize((n, n))
                    if shape[0] < n:
                        arr[shape[0]:, :] = np.nan
                        arr[:, shape[0]:] = np.nan
                problem(f"{what}: array {name!r} has shape {shape}, expected ({n}, {n}) for its {n} tasks", grow,
                        f"{what}: resized {name!r} to ({n}, {n}) (new entries not computed)")


def _check_searches(nodes: Nodes, problem) -> None:
    runs = nodes.path / L.RUNS
    if runs.is_dir():
        for leftover in runs.glob(f"{L.NEW_SEARCH_PREFIX}*"):
            problem(f"{L.RUNS}/{leftover.name}: a search whose creation was interrupted",
                    lambda p=leftover: shutil.rmtree(p, ignore_errors=True), f"deleted {L.RUNS}/{leftover.name}")
    for run_id in nodes.child_groups(L.SEARCHES):
        path = L.search_path(run_id)
        attrs = nodes.attrs(path)
        committed = int(attrs.get(L.ATTR_COMMITTED, 0))
        width = int(attrs.get(L.ATTR_NUM_CANDIDATES, 1) or 1)
        lengths = {}
        for name, (dtype, per_step) in L.SEARCH_ARRAYS.items():
            try:
                lengths[name] = nodes.array(f"{path}/{name}").shape[0]
            except NotFound:
                def create(name=name, dtype=dtype, per_step=per_step):
                    shape = (committed, width) if per_step == "C" else (committed,)
                    nodes.group(path).create_array(name, shape=shape, chunks=(L.SEARCH_CHUNK_STEPS,) + shape[1:],
                                                   dtype=dtype, fill_value=np.nan if dtype.startswith("float") else 0)
                problem(f"search {run_id}: array {name!r} is missing", create,
                        f"search {run_id}: created array {name!r}" + (" (its committed steps hold no data)"
                                                                     if committed else ""))
        short = min(lengths.values(), default=committed)
        if short < committed:
            problem(f"search {run_id}: committed_steps is {committed} but an array holds only {short} rows",
                    lambda p=path, s=short: nodes.update_attrs(p, {L.ATTR_COMMITTED: s}),
                    f"search {run_id}: committed_steps lowered to {short}")
        directory = nodes.path / L.checkpoint_group_path(run_id)
        for tmp in directory.glob(L.CHECKPOINT_TMP_GLOB):
            problem(f"search {run_id}: orphaned temporary checkpoint {tmp.name}",
                    lambda t=tmp: t.unlink(missing_ok=True), f"search {run_id}: deleted {tmp.name}")
        checkpoint = directory / L.CHECKPOINT_FILE
        if checkpoint.is_file():
            error = _unreadable(checkpoint)
            if error:
                problem(f"search {run_id}: checkpoint {checkpoint} is unreadable ({error})",
                        lambda c=checkpoint: c.unlink(),
                        f"search {run_id}: deleted its unreadable checkpoint (a resume starts the search again)",
                        transient=False)   # replaced atomically: never half-written


def _unreadable(path: Path) -> str | None:
    try:
        import torch
    except ImportError:  # the store alone does not need torch; without it checkpoints are not inspected
        return None
    try:
        blob = torch.load(io.BytesIO(path.read_bytes()), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to load is the finding
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]
    if not isinstance(blob, dict) or blob.get("kind") not in ("search", "final"):
        return "not a tanas checkpoint"
    return None


__all__ = ["CheckReport", "check", "repair_on_open", "finish_removal", "task_ids"]
