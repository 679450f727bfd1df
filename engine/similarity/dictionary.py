"""The task dictionary over the store: probes, own Fishers and the distance matrix, built incrementally.

Adding task t to a dictionary of N ready tasks trains t's probe(s), stores F(t, t), then computes exactly its row and
column: d(b, t) and d(t, b) for every stored b, and d(t, t) = 0, i.e. 2N + 1 entries. Each entry is written as soon as
it is known, so an interrupted build loses at most the pair in progress; `ensure()` continues it (stored probes are
reused, only NaN entries are computed).

The parts: `Probes` (engine.similarity.probes: task data, training, the model cache and the one path that records
probes and own Fishers), one `Measure` per distance form (engine.similarity.measures: what a distance is computed
from, its parameters, noise floor and remote unit) and the `RemotePlanner` (engine.similarity.remote) that runs the
same work as units on a remote executor. This class registers tasks, decides what is missing and writes distances.

Fisher pairs (METHOD.md 3a): d(b, t) compares F(b, t) — b's probe on M samples of t's train split — with the stored
F(t, t) of t's probe on the same samples. The M samples are fixed by t's seed; in `model` mode the labels are drawn
from a generator fixed by (t's seed, seed index). With `seeds = n`, probe k of b is compared with probe k of t and
the matrix stores mean and sample std over k.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Iterable

import numpy as np
import torch

from engine.choices import DISTANCE_METHODS
from engine.config import Config, ConfigError
from engine.data.tasks import TaskData, TaskDef
from engine.runtime.reporting import SILENT, Reporter
from engine.similarity.distance import mean_std
from engine.similarity.fisher import fisher_sample_index  # noqa: F401  (re-exported for experiments/)
from engine.similarity.measures import Measure, make_measure, own_fisher_fn
from engine.similarity.probes import Probes, probe_seed, taskdef_from_dict, taskdef_to_dict  # noqa: F401
from store.faults import fault_point
from store.queries import Neighbor, farthest, nearest
from store.records import TaskRecord

METHODS = DISTANCE_METHODS
FLUSH_S = 2.0       # the per-pair forms store their finished pairs at least this often
ROLES = ("base", "target")


def _continues(pending: list[tuple[str, str, list[float]]], b: str, t: str) -> bool:
    """(b, t) extends the pending run of pairs: all of one target (a column) or all of one source (a row)."""
    if all(p[1] == t for p in pending):
        return True
    return all(p[0] == b for p in pending)


def task_rule(taskdef: TaskDef) -> str:
    """A human-readable labelling rule: "is 3", "is 3 or 5", "0|1|2|other"."""
    if taskdef.positive is not None:
        return "is " + " or ".join(taskdef.positive)
    return "|".join(tuple(taskdef.classes or ()) + (("other",) if taskdef.other else ()))


class Dictionary:
    """The dictionary of task-data pairs in `store` (opened for writing), under configuration `cfg`."""

    def __init__(self, store, cfg: Config, device: torch.device | str = "cpu", reporter: Reporter = SILENT, *,
                 job: str = "dictionary", task_builder: Callable[[TaskDef], TaskData] | None = None,
                 source_loader: Callable[[str], Any] | None = None, executor: Any = None):
        self.store, self.cfg, self.reporter, self.job = store, cfg, reporter, job
        if isinstance(device, str):
            from engine.runtime.device import resolve_device

            device = resolve_device(device)
        self.device = torch.device(device)
        self.probes = Probes(store, cfg, self.device, reporter, job, own_fisher_fn(cfg.dictionary),
                             task_builder=task_builder, source_loader=source_loader)
        self._measures: dict[str, Measure] = {}
        # None or a local executor: everything runs here, in order. A remote one (`executor.remote`): probe trainings
        # and Fisher passes are submitted as units (engine.similarity.units) and this object writes their results.
        self.executor = executor
        self._planner = None

    # ------------------------------------------------------------------ tasks

    @property
    def seeds(self) -> int:
        return self.cfg.dictionary.seeds

    @property
    def remote(self) -> bool:
        return bool(getattr(self.executor, "remote", False))

    def task_for(self, taskdef: TaskDef) -> TaskData:
        """The task-data pair of a definition, built once per dictionary (a job builds each task's data once)."""
        return self.probes.task_for(taskdef)

    def task_data(self, task_id: str) -> TaskData:
        """The task-data pair of a stored task, rebuilt from its stored definition (cached)."""
        return self.probes.task_data(task_id)

    def measure(self, method: str) -> Measure:
        if method not in self._measures:
            self._measures[method] = make_measure(method, self.cfg, self.probes)
        return self._measures[method]

    def method_params(self, method: str) -> dict[str, Any]:
        return self.measure(method).params()

    def _check_params(self, method: str) -> None:
        """Refuses to mix distances computed under different settings in one matrix."""
        wanted = self.method_params(method)
        stored = self.store.distance_params(method)
        if stored and any(stored.get(k) != v for k, v in wanted.items()):
            diff = ", ".join(f"{k}: stored {stored.get(k)!r}, config {v!r}"
                             for k, v in wanted.items() if stored.get(k) != v)
            raise ConfigError(f"the store's {method!r} distances were computed with other settings ({diff}); "
                              f"use another store or restore the settings", file=self.cfg.file, key="dictionary")
        if not stored:
            self.store.set_distance_params(method, wanted)

    def add_task(self, taskdef: TaskDef, role: str = "base") -> str:
        """Adds (or completes) a task: probes, own Fisher, and its row and column of the configured method."""
        if role not in ROLES:
            raise ValueError(f"task role must be one of {', '.join(ROLES)}, got {role!r}")
        method = self.cfg.dictionary.method
        self._check_params(method)
        tid = self._register(taskdef, role)
        if self.remote:
            self._compute_remote(method, only=tid)
            return tid
        self.complete_task(tid)
        fault_point("task-ready")
        ready = self._ready_ids(method)
        # every ready task must be in the matrix before pairs are read from it: a task that became ready just before
        # a crash, or a matrix of a method the store never used, is missing some (their entries start not computed)
        self.store.add_distance_tasks(method, ready + [tid])
        ids, row, col = self.store.distance_cross(method, tid)
        at = {t: i for i, t in enumerate(ids)}
        pairs = ([(b, tid) for b in ready if b != tid and np.isnan(col[at[b]])]
                 + [(tid, b) for b in ready if b != tid and np.isnan(row[at[b]])]
                 + ([(tid, tid)] if np.isnan(row[at[tid]]) else []))
        self._fill(method, pairs, checked=True)
        return tid

    def _register(self, taskdef: TaskDef, role: str) -> str:
        """Stores a task's record (once) and its role; returns its id."""
        task = self.task_for(taskdef)
        tid = task.id
        if not self.store.has_task(tid):
            clash = self.store.task_named(taskdef.name)
            if clash is not None:
                raise ValueError(f"task {taskdef.name!r} is already stored with another definition (id {clash}; "
                                 f"this one builds id {tid}): remove it first or choose another name")
            self.store.add_task(tid, self._initial_attrs(task, role))
            self.reporter.emit("task_added", task_id=tid, name=taskdef.name, role=role)
        elif self.store.task(tid).get("role") != role:
            self.store.update_task(tid, role=role)
        return tid

    def _initial_attrs(self, task: TaskData, role: str) -> dict[str, Any]:
        d = task.definition
        sizes = task.sizes
        return TaskRecord(
            name=d.name, source=d.source, group=d.group, rule=task_rule(d), definition=taskdef_to_dict(d),
            role=role, seed=d.seed, n_train=sizes["train"], n_val=sizes["val"], n_test=sizes["test"],
            num_classes=task.num_classes, class_names=list(task.class_names),
            probe_arch=self.cfg.dictionary.probe, status="training",
        ).to_attrs()

    def complete_task(self, task_id: str) -> None:
        """Trains the missing probes and computes the missing own Fishers of a stored task; marks it ready."""
        self.probes.complete(task_id)

    def ensure(self, taskdefs: Iterable[TaskDef], role: str = "base") -> list[str]:
        """Adds the tasks that are missing, completes interrupted ones, and fills every NaN distance entry."""
        if self.remote:  # register all, then one batch of units for everything missing
            self._check_params(self.cfg.dictionary.method)
            ids = [self._register(t, role) for t in taskdefs]
        else:
            ids = [self.add_task(t, role) for t in taskdefs]
        self.compute_distances(self.cfg.dictionary.method)
        return ids

    def remove_task(self, name_or_id: str) -> str:
        tid = self.store.find_task(name_or_id)
        name = self.store.task(tid).get("name", tid)
        self.store.remove_task(tid)
        self.probes.forget(tid)
        self.reporter.emit("task_removed", task_id=tid, name=name)
        return tid

    # ------------------------------------------------------------------ distances

    def _ready_ids(self, method: str | None = None) -> list[str]:
        """The ready tasks, in store order. With `method`: a task in its matrix counts as ready (it was when it
        entered it) and only the others' attributes are read, so an add to a large dictionary reads a few."""
        if method is None:
            return [t["id"] for t in self.store.list_tasks() if t.get("status") == "ready"]
        ids = self.store.task_ids()
        known = set(self.store.distance_ids(method))
        others = [t for t in ids if t not in known]
        ready = {a["id"] for a in self.store.tasks_attrs(others) if a is not None and a.get("status") == "ready"}
        return [t for t in ids if t in known or t in ready]

    def compute_distances(self, method: str | None = None) -> int:
        """Fills every NaN entry of `method`'s matrix (completing tasks as needed); returns how many it computed."""
        method = method or self.cfg.dictionary.method
        self._check_params(method)
        if self.remote:
            return self._compute_remote(method)
        ids = self.store.task_ids()
        for tid in ids:
            self.complete_task(tid)
        self.store.add_distance_tasks(method, ids)
        return self._fill(method, self._missing(method), checked=True)

    def _missing(self, method: str, among: set[str] | None = None) -> list[tuple[str, str]]:
        """The matrix's NaN entries (between tasks of `among`), grouped by target: consecutive pairs share t's samples
        and own Fisher."""
        matrix = self.store.distances(method)
        ids = matrix.ids
        mask = np.isnan(matrix.value)
        if among is not None:
            keep = np.array([t in among for t in ids], dtype=bool)
            mask &= keep[:, None] & keep[None, :]
        cols, rows = np.nonzero(mask.T)     # ordered by target, then source
        return [(ids[i], ids[j]) for j, i in zip(cols.tolist(), rows.tolist())]

    def _record_column(self, method: str, pending: list[tuple[str, str, list[float]]]) -> None:
        """Writes the pending pairs (one target's column or one source's row: see `_continues`) in one slice;
        empties `pending`."""
        if not pending:
            return
        stats = [mean_std(v) for _, _, v in pending]
        seeds = np.array([v for _, _, v in pending], dtype=np.float64).T if self.seeds > 1 else None
        value, std = np.array([m for m, _ in stats]), np.array([sd for _, sd in stats])
        if len({t for _, t, _ in pending}) == 1:
            self.store.set_distances(method, [b for b, _, _ in pending], [pending[0][1]], value[:, None],
                                     std[:, None], None if seeds is None else seeds[:, :, None])
        else:
            self.store.set_distances(method, [pending[0][0]], [t for _, t, _ in pending], value[None, :],
                                     std[None, :], None if seeds is None else seeds[:, None, :])
        fault_point("distance-set")
        for (b, t, _), (m, sd) in zip(pending, stats):
            self.reporter.emit("distance", method=method, source=b, target=t, value=m, std=sd)
        pending.clear()

    def _record(self, method: str, b: str, t: str, values: list[float]) -> None:
        """Writes d(b, t) (mean and std over the seeds' `values`, each seed's value when 2 or more) and says so."""
        value, std = mean_std(values)
        self.store.set_distance(method, b, t, value, std, values if self.seeds > 1 else None)
        fault_point("distance-set")
        self.reporter.emit("distance", method=method, source=b, target=t, value=value, std=std)

    def _fill(self, method: str, pairs: list[tuple[str, str]], checked: bool = False) -> int:
        """Computes and stores the pairs not computed yet (`checked`: the caller kept only NaN entries). The vector
        forms compute and write them in rows and blocks (engine.similarity.vector_rows); the per-pair forms write
        each target's column in one slice, flushed at least every `FLUSH_S` seconds and on any exit."""
        if checked:
            todo = list(pairs)
        else:
            matrix = self.store.distances(method)
            todo = [(b, t) for b, t in pairs if np.isnan(matrix.get(b, t)[0])]
        measure = self.measure(method)
        if measure.vector_form:
            from engine.similarity import vector_rows

            return vector_rows.fill(self.store, measure, method, todo, self.reporter, self.job)
        pending: list[tuple[str, str, list[float]]] = []
        flushed = time.monotonic()
        try:
            for done, (b, t) in enumerate(todo):
                if pending and (not _continues(pending, b, t) or time.monotonic() - flushed > FLUSH_S):
                    self._record_column(method, pending)
                    flushed = time.monotonic()
                self.reporter.emit("job_progress", job=self.job, stage=f"{method} distances", done=done,
                                   total=len(todo))
                self.reporter.check()
                values = [0.0] * self.seeds if b == t else measure.pair_values(b, t)
                pending.append((b, t, values))
        finally:
            self._record_column(method, pending)
        if todo:
            self.reporter.emit("job_progress", job=self.job, stage=f"{method} distances", done=len(todo),
                               total=len(todo))
        return len(todo)

    def pair(self, method: str, source_id: str, target_id: str) -> tuple[float, float]:
        """(mean, std) over seeds of d(source, target), computed now (not read from the store)."""
        return mean_std(self.pair_values(method, source_id, target_id))

    def pair_values(self, method: str, source_id: str, target_id: str) -> list[float]:
        """d(source, target) under each seed index, computed now."""
        return self.measure(method).pair_values(source_id, target_id)

    # ------------------------------------------------------------------ on a remote executor

    def _compute_remote(self, method: str, only: str | None = None) -> int:
        """The remote twin of completing tasks + filling NaN entries (engine.similarity.remote). With `only`, just
        that task and its row and column against the ready tasks (what `add_task` does locally)."""
        from engine.similarity.remote import RemotePlanner

        if self._planner is None:
            self._planner = RemotePlanner(self.probes, self.executor)
        ids = list(self.store.task_ids()) if only is None else [only] + [t for t in self._ready_ids() if t != only]
        for tid in ids:
            self.store.add_distance_task(method, tid)
        if only is None:
            pairs = self._missing(method, set(ids))
        else:
            matrix = self.store.distances(method)
            pairs = [(b, only) for b in ids if b != only] + [(only, b) for b in ids if b != only] + [(only, only)]
            pairs = [(b, t) for b, t in pairs if np.isnan(matrix.get(b, t)[0])]
        written = 0

        def record(b: str, t: str, values: list[float]) -> None:
            nonlocal written
            self._record(method, b, t, values)
            written += 1

        local = self._planner.run(ids, pairs, self.measure(method), record)
        for t, t2 in pairs:
            if t == t2:
                record(t, t, [0.0] * self.seeds)
        return written + (self._fill(method, local) if local else 0)

    # ------------------------------------------------------------------ noise floor

    def noise_floor(self, method: str | None = None) -> dict[str, Any]:
        """Measures and stores `method`'s noise floor: per task of the matrix, the distance between two versions of
        the task's probe (seed index 0) that differ only in what the distance should ignore (`Measure.noise_kind`).
        Returns the stored record."""
        method = method or self.cfg.dictionary.method
        if method not in METHODS:
            raise ValueError(f"unknown distance method {method!r} (use {' or '.join(METHODS)})")
        ids = self.store.distances(method).ids
        if not ids:
            raise ValueError(f"no {method!r} distance matrix in the store: compute the distances first")
        start = time.perf_counter()
        measure = self.measure(method)
        out: dict[str, list[float]] = {}
        for done, tid in enumerate(ids):
            self.reporter.emit("job_progress", job=self.job, stage=f"{method} noise floor", done=done, total=len(ids))
            self.reporter.check()
            self.complete_task(tid)
            out[tid] = [measure.same_task_distance(tid)]
        self.reporter.emit("job_progress", job=self.job, stage=f"{method} noise floor", done=len(ids),
                           total=len(ids))
        record = {"distances": out, "kind": measure.noise_kind, "seed_index": 0,
                  "seconds": round(time.perf_counter() - start, 3), "params": measure.params()}
        self.store.set_noise_floor(method, record)
        return record

    # ------------------------------------------------------------------ queries

    def nearest(self, target: str, k: int = 3, method: str | None = None) -> list[Neighbor]:
        return nearest(self.store, target, k, method or self.cfg.dictionary.method)

    def farthest(self, target: str, k: int = 3, method: str | None = None) -> list[Neighbor]:
        return farthest(self.store, target, k, method or self.cfg.dictionary.method)
