"""The task dictionary over the store: probes, own Fishers and the distance matrix, built incrementally.

Adding task t to a dictionary of N ready tasks trains t's probe(s), stores F(t, t), then computes exactly its row and
column: d(b, t) and d(t, b) for every stored b, and d(t, t) = 0, i.e. 2N + 1 entries. Each entry is written as soon as
it is known, so an interrupted build loses at most the pair in progress; `ensure()` continues it (stored probes are
reused, only NaN entries are computed).

Fisher pairs (METHOD.md 3a): d(b, t) compares F(b, t) — b's probe on M samples of t's train split — with the stored
F(t, t) of t's probe on the same samples. The M samples are fixed by t's seed; in `model` mode the labels are drawn
from a generator fixed by (t's seed, seed index). With `seeds = n`, probe k of b is compared with probe k of t and
the matrix stores mean and sample std over k.
"""
from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import Any, Callable, Iterable

import numpy as np
import torch

from engine.choices import DISTANCE_METHODS
from engine.config import Config, ConfigError
from engine.similarity.distance import fisher_distance, mean_std, per_layer_unit_trace
from engine.similarity.fisher import diagonal_fisher, fisher_layout, fisher_sample_index, task_fisher  # noqa: F401
from engine.similarity.probe import load_probe, probe_state, train_probe
from engine.runtime.reporting import SILENT, Reporter
from store.queries import Neighbor, farthest, nearest
from store.records import TaskRecord
from engine.data.tasks import TaskData, TaskDef
from store.faults import fault_point
from engine.data.tasks import task_id as definition_id

METHODS = DISTANCE_METHODS
ROLES = ("base", "target")
_MODEL_CACHE = 64


def task_rule(taskdef: TaskDef) -> str:
    """A human-readable labelling rule: "is 3", "is 3 or 5", "0|1|2|other"."""
    if taskdef.positive is not None:
        return "is " + " or ".join(taskdef.positive)
    return "|".join(tuple(taskdef.classes or ()) + (("other",) if taskdef.other else ()))


def taskdef_to_dict(taskdef: TaskDef) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(taskdef).items()}


def taskdef_from_dict(data: dict[str, Any]) -> TaskDef:
    fields = {f.name for f in dataclasses.fields(TaskDef)}
    unknown = set(data) - fields
    if unknown:
        raise ValueError(f"stored task definition has unknown keys: {', '.join(sorted(unknown))}")
    return TaskDef(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def probe_seed(cfg: Config, taskdef: TaskDef, seed_index: int) -> int:
    return cfg.project.seed * 1_000_003 + taskdef.seed * 1000 + seed_index


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
        self._builder = task_builder or self._build_from_source
        self._source_loader = source_loader     # name -> Dataset, for the shared body's broad task
        self._shared = None
        # None or a local executor: everything runs here, in order. A remote one (`executor.remote`): probe trainings
        # and Fisher passes are submitted as units (engine.similarity.units) and this object writes their results.
        self.executor = executor
        self._task_refs: dict[str, Any] = {}     # what went to the cluster (object refs), kept for the whole job
        self._sample_refs: dict[str, Any] = {}
        self._tasks: dict[str, TaskData] = {}
        self._models: OrderedDict[tuple[str, int], torch.nn.Module] = OrderedDict()

    # ------------------------------------------------------------------ tasks

    @property
    def seeds(self) -> int:
        return self.cfg.dictionary.seeds

    def _build_from_source(self, taskdef: TaskDef) -> TaskData:
        from engine.data import get_source
        from engine.data.tasks import build_task

        return build_task(taskdef, get_source(taskdef.source, self.cfg.sources, self.cfg.data_dir,
                                              base_dir=self.cfg.root))

    def task_for(self, taskdef: TaskDef) -> TaskData:
        """The task-data pair of a definition, built once per dictionary (a job builds each task's data once)."""
        tid = definition_id(taskdef)
        if tid not in self._tasks:
            self._tasks[tid] = self._builder(taskdef)
        return self._tasks[tid]

    def task_data(self, task_id: str) -> TaskData:
        """The task-data pair of a stored task, rebuilt from its stored definition (cached)."""
        if task_id not in self._tasks:
            attrs = self.store.task(task_id)
            task = self._builder(taskdef_from_dict(attrs["definition"]))
            if task.id != task_id:
                raise ValueError(f"task {attrs.get('name')!r}: its stored definition now builds task id {task.id}, "
                                 f"not {task_id}")
            self._tasks[task_id] = task
        return self._tasks[task_id]

    def _check_params(self, method: str) -> None:
        """Refuses to mix distances computed under different settings in one matrix."""
        wanted = self.method_params(method)
        stored = self.store.distances(method).params
        if stored and any(stored.get(k) != v for k, v in wanted.items()):
            diff = ", ".join(f"{k}: stored {stored.get(k)!r}, config {v!r}"
                             for k, v in wanted.items() if stored.get(k) != v)
            raise ConfigError(f"the store's {method!r} distances were computed with other settings ({diff}); "
                              f"use another store or restore the settings", file=self.cfg.file, key="dictionary")
        if not stored:
            self.store.set_distance_params(method, wanted)

    def method_params(self, method: str) -> dict[str, Any]:
        d = self.cfg.dictionary
        # The probe protocol is part of a distance's definition: probes trained differently give other distances.
        common = {"probe": d.probe, "seeds": d.seeds,
                  "probe_training": {"epsilon": d.epsilon, "min_epochs": d.min_epochs, "max_epochs": d.max_epochs,
                                     "lr": d.lr, "batch_size": d.batch_size}}
        if method == "fisher":
            params = {**common, "fisher": d.fisher, "fisher_samples": d.fisher_samples, "include_head": d.include_head}
            # Recorded only when not the published setting, so stores built before these options stay valid.
            if d.fisher_body != "per-task":
                params.update(fisher_body=d.fisher_body, shared_epochs=d.shared_epochs)
            if d.fisher_form != "pair":
                params["fisher_form"] = d.fisher_form
            if d.fisher_norm != "global":
                params["fisher_norm"] = d.fisher_norm
            return params
        if method == "transfer":
            return {**common, "transfer": dataclasses.asdict(self.cfg.transfer)}
        raise ValueError(f"unknown distance method {method!r} (use {' or '.join(METHODS)})")

    def add_task(self, taskdef: TaskDef, role: str = "base") -> str:
        """Adds (or completes) a task: probes, own Fisher, and its row and column of the configured method."""
        if role not in ROLES:
            raise ValueError(f"task role must be one of {', '.join(ROLES)}, got {role!r}")
        method = self.cfg.dictionary.method
        self._check_params(method)
        if self.remote:
            tid = self._register(taskdef, role)
            self._compute_remote(method, only=tid)
            return tid
        tid = self._register(taskdef, role)
        self.complete_task(tid)
        fault_point("task-ready")
        ready = self._ready_ids()
        # every ready task must be in the matrix before pairs are read from it: a task that became ready just before
        # a crash, or a matrix of a method the store never used, is missing some (their entries start not computed)
        for b in ready:
            self.store.add_distance_task(method, b)
        self.store.add_distance_task(method, tid)
        self._fill(method, [(b, tid) for b in ready if b != tid] + [(tid, b) for b in ready if b != tid]
                   + [(tid, tid)])
        return tid

    def _register(self, taskdef: TaskDef, role: str) -> str:
        """Stores a task's record (once) and its role; returns its id."""
        task = self.task_for(taskdef)
        tid = task.id
        self._tasks[tid] = task
        if not self.store.has_task(tid):
            clash = [t["id"] for t in self.store.list_tasks() if t.get("name") == taskdef.name]
            if clash:
                raise ValueError(f"task {taskdef.name!r} is already stored with another definition (id {clash[0]}; "
                                 f"this one builds id {tid}): remove it first or choose another name")
            self.store.add_task(tid, self._initial_attrs(task, role))
            self.reporter.emit("task_added", task_id=tid, name=taskdef.name, role=role)
        elif self.store.task(tid).get("role") != role:
            self.store.update_task(tid, role=role)
        return tid

    @property
    def remote(self) -> bool:
        return bool(getattr(self.executor, "remote", False))

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
        attrs = self.store.task(task_id)
        if attrs.get("probe_arch") != self.cfg.dictionary.probe:
            raise ConfigError(f"task {attrs['name']!r} in the store has probe {attrs.get('probe_arch')!r}, "
                              f"the config says {self.cfg.dictionary.probe!r}; every task of a dictionary uses the "
                              f"same probe", file=self.cfg.file, key="dictionary.probe")
        missing = [s for s in range(self.seeds) if not self.store.has_probe(task_id, s)]
        if missing:
            self._train(task_id, missing)
        for s in range(self.seeds):
            if self.store.load_fisher(task_id, s) is None:
                self.reporter.check()
                self.reporter.emit("task_status", task_id=task_id, name=attrs["name"], status="fisher")
                task = self.task_data(task_id)
                vec = self._fisher(self._probe(task_id, s), task, s)
                self.store.save_fisher(task_id, vec.numpy(), s)
        if self.store.task(task_id).get("status") != "ready":
            self.store.update_task(task_id, status="ready")
            self.reporter.emit("task_status", task_id=task_id, name=attrs["name"], status="ready")

    def _train(self, task_id: str, seed_indices: list[int]) -> None:
        task = self.task_data(task_id)
        name = task.definition.name
        self.store.update_task(task_id, status="training")
        self.reporter.emit("task_status", task_id=task_id, name=name, status="training")
        for s in seed_indices:
            self.reporter.emit("job_progress", job=self.job, stage=f"probe {name}", done=s, total=self.seeds)
            if self.cfg.dictionary.fisher_body == "shared":
                result = self._shared_bodies().task_probe(task, s)
            else:
                result = train_probe(task, self.cfg.dictionary, seed=probe_seed(self.cfg, task.definition, s),
                                     device=self.device, reporter=self.reporter, seed_index=s)
            self.store.save_probe(task_id, probe_state(result.model), s)
            self._models[(task_id, s)] = result.model
            accs = list(self.store.task(task_id).get("val_accs") or [])
            accs += [None] * (self.seeds - len(accs))
            accs[s] = result.val_acc
            epochs = list(self.store.task(task_id).get("epochs_per_seed") or [])
            epochs += [None] * (self.seeds - len(epochs))
            epochs[s] = result.epochs
            self.store.update_task(task_id, val_accs=accs, epochs_per_seed=epochs)
            self._after_probe(task_id, result.seconds)

    def _after_probe(self, task_id: str, seconds: float) -> None:
        attrs = self.store.task(task_id)
        accs = [a for a in attrs["val_accs"] if a is not None]
        epochs = [e for e in attrs["epochs_per_seed"] if e is not None]
        target = 1.0 - self.cfg.dictionary.epsilon
        val_acc = float(np.mean(accs))
        representative = all(a >= target for a in accs)
        total_seconds = float(attrs.get("train_seconds") or 0.0) + seconds
        self.store.update_task(task_id, val_acc=val_acc, epochs=max(epochs), train_seconds=total_seconds,
                               representative=representative)
        if len(accs) == self.seeds:
            self.reporter.emit("probe_done", task_id=task_id, name=attrs["name"], val_acc=val_acc,
                               epochs=max(epochs), seconds=total_seconds, representative=representative)
            if not representative:
                self.reporter.emit("warning", code="not_representative", message=(
                    f"task {attrs['name']!r}: probe val accuracy {min(accs):.3f} < 1 − ε = {target:.3f} after "
                    f"{max(epochs)} epochs; stored as not ε-representative"))

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
        self._tasks.pop(tid, None)
        for key in [k for k in self._models if k[0] == tid]:
            del self._models[key]
        self.reporter.emit("task_removed", task_id=tid, name=name)
        return tid

    # ------------------------------------------------------------------ distances

    def _ready_ids(self) -> list[str]:
        return [t["id"] for t in self.store.list_tasks() if t.get("status") == "ready"]

    def compute_distances(self, method: str | None = None) -> int:
        """Fills every NaN entry of `method`'s matrix (completing tasks as needed); returns how many it computed."""
        method = method or self.cfg.dictionary.method
        self._check_params(method)
        if self.remote:
            return self._compute_remote(method)
        for tid in self.store.task_ids():
            self.complete_task(tid)
            self.store.add_distance_task(method, tid)
        matrix = self.store.distances(method)
        # Grouped by target: consecutive pairs share t's samples and own Fisher.
        todo = [(matrix.ids[i], matrix.ids[j]) for j in range(len(matrix.ids)) for i in range(len(matrix.ids))
                if np.isnan(matrix.value[i, j])]
        return self._fill(method, todo)

    def _fill(self, method: str, pairs: list[tuple[str, str]]) -> int:
        matrix = self.store.distances(method)
        todo = [(b, t) for b, t in pairs if np.isnan(matrix.get(b, t)[0])]
        for done, (b, t) in enumerate(todo):
            self.reporter.emit("job_progress", job=self.job, stage=f"{method} distances", done=done,
                               total=len(todo))
            self.reporter.check()
            values = [0.0] * self.seeds if b == t else self.pair_values(method, b, t)
            value, std = mean_std(values)
            self.store.set_distance(method, b, t, value, std, values if self.seeds > 1 else None)
            fault_point("distance-set")
            self.reporter.emit("distance", method=method, source=b, target=t, value=value, std=std)
        if todo:
            self.reporter.emit("job_progress", job=self.job, stage=f"{method} distances", done=len(todo),
                               total=len(todo))
        return len(todo)

    def pair(self, method: str, source_id: str, target_id: str) -> tuple[float, float]:
        """(mean, std) over seeds of d(source, target), computed now (not read from the store)."""
        return mean_std(self.pair_values(method, source_id, target_id))

    def pair_values(self, method: str, source_id: str, target_id: str) -> list[float]:
        """d(source, target) under each seed index, computed now."""
        values = []
        for s in range(self.seeds):
            if method == "fisher":
                values.append(self._fisher_pair(source_id, target_id, s))
            elif method == "transfer":
                values.append(self._transfer_pair(source_id, target_id, s))
            else:
                raise ValueError(f"unknown distance method {method!r} (use {' or '.join(METHODS)})")
        return values

    # ------------------------------------------------------------------ noise floor

    def noise_floor(self, method: str | None = None) -> dict[str, Any]:
        """Measures and stores `method`'s noise floor: per task of the matrix, the distance between two versions of
        the task's probe (seed index 0) that differ only in what the distance should ignore. Shared body: heads
        fitted on the two halves of the train split. Per-task probes: a second probe with the same initialisation
        and another data order. Returns the stored record."""
        import time

        method = method or self.cfg.dictionary.method
        if method not in METHODS:
            raise ValueError(f"unknown distance method {method!r} (use {' or '.join(METHODS)})")
        ids = self.store.distances(method).ids
        if not ids:
            raise ValueError(f"no {method!r} distance matrix in the store: compute the distances first")
        start = time.perf_counter()
        shared = method == "fisher" and self.cfg.dictionary.fisher_body == "shared"
        out: dict[str, list[float]] = {}
        for done, tid in enumerate(ids):
            self.reporter.emit("job_progress", job=self.job, stage=f"{method} noise floor", done=done, total=len(ids))
            self.reporter.check()
            self.complete_task(tid)
            out[tid] = [self._same_task_distance(method, tid, shared)]
        self.reporter.emit("job_progress", job=self.job, stage=f"{method} noise floor", done=len(ids),
                           total=len(ids))
        kind = ("the two halves of the train split (shared body, domain form)"
                if shared and self.cfg.dictionary.fisher_form == "domain"
                else "heads fitted on the two halves of the train split (shared body)" if shared
                else "two probes with the same initialisation and another data order")
        record = {"distances": out, "kind": kind, "seed_index": 0, "seconds": round(time.perf_counter() - start, 3),
                  "params": self.method_params(method)}
        self.store.set_noise_floor(method, record)
        return record

    def _same_task_distance(self, method: str, tid: str, shared: bool) -> float:
        task = self.task_data(tid)
        if shared:
            from engine.similarity.shared_probe import task_view

            m = len(task.train_y)
            perm = torch.randperm(m, generator=torch.Generator().manual_seed(5 + task.definition.seed))
            if self.cfg.dictionary.fisher_form == "domain":   # label-free: the two halves' own inputs
                from engine.similarity.fisher import feature_fisher

                net, n = self._probe(tid, 0), self.cfg.dictionary.fisher_samples
                halves = [task.train_x[perm[: m // 2][:n]], task.train_x[perm[m // 2:][:n]]]
                vecs = [feature_fisher(net, h, generator=torch.Generator().manual_seed(31_337)) for h in halves]
                return self._distance(vecs[0], vecs[1], net, None)
            body = self._shared_bodies().body(0)
            a, b = (task_view(body, task, rows=perm[: m // 2]), task_view(body, task, rows=perm[m // 2:]))
            return self._distance(self._fisher(a, task, 0), self._fisher(b, task, 0), a, None)
        seed = probe_seed(self.cfg, task.definition, 0)
        other = train_probe(task, self.cfg.dictionary, seed=seed, device=self.device, order_seed=seed + 7_919).model
        net = self._probe(tid, 0)
        if method == "transfer":
            from engine.similarity.transfer import transfer_distance

            return float(transfer_distance(other, net, task, self.cfg.transfer, device=self.device,
                                           seed=self.cfg.project.seed * 1000, reporter=self.reporter).distance)
        head_classes = net.head.out_features if self.cfg.dictionary.include_head else None
        if self.cfg.dictionary.fisher_form == "embedding":
            return self._distance(self._fisher(other, task, 0, head_classes), self._fisher(net, task, 0, head_classes),
                                  net, head_classes)
        f_tt = self.store.load_fisher(tid, 0)
        if f_tt is None:
            raise ValueError(f"task {task.definition.name!r} has no stored Fisher for seed 0")
        f_tt = torch.from_numpy(f_tt)
        if head_classes is not None:
            f_tt = pad_head(f_tt, net, head_classes)
        return self._distance(self._fisher(other, task, 0, head_classes), f_tt, net, head_classes)

    def _shared_bodies(self):
        from engine.similarity.shared_probe import SharedBodies

        if self._shared is None:
            # The tasks' test images are only used to keep them out of the body's training set (not a test read).
            self._shared = SharedBodies(self.cfg, self.store, self.device, self._source_loader,
                                        lambda: [self._builder(t)._test_x for t in self.cfg.all_tasks()])
        return self._shared

    def _fisher_pair(self, b: str, t: str, s: int) -> float:
        if self.cfg.dictionary.fisher_form in ("embedding", "domain"):
            return self._fisher_embedding_pair(b, t, s)
        task_t = self.task_data(t)
        net_b, net_t = self._probe(b, s), self._probe(t, s)
        head_classes = None
        if self.cfg.dictionary.include_head:
            head_classes = max(net_b.head.out_features, net_t.head.out_features)
        f_bt = self._fisher(net_b, task_t, s, head_classes)
        f_tt = self.store.load_fisher(t, s)
        if f_tt is None:
            raise ValueError(f"task {self.store.task(t)['name']!r} has no stored Fisher for seed {s}")
        if head_classes is not None:
            f_tt = pad_head(torch.from_numpy(f_tt), net_t, head_classes)
        return self._distance(f_bt, f_tt, net_t, head_classes)

    def _distance(self, f_a, f_b, net: torch.nn.Module, head_classes: int | None) -> float:
        if self.cfg.dictionary.fisher_norm == "layer":
            layout = fisher_layout(net, self.cfg.dictionary.include_head, head_classes)
            f_a, f_b = per_layer_unit_trace(f_a, layout), per_layer_unit_trace(f_b, layout)
        return fisher_distance(f_a, f_b)

    def _fisher_embedding_pair(self, b: str, t: str, s: int) -> float:
        """Task2Vec's form: each task's own Fisher on its own data, d = H(F(b, b), F(t, t)) (also "domain")."""
        vecs = []
        for tid in (b, t):
            f = self.store.load_fisher(tid, s)
            if f is None:
                raise ValueError(f"task {self.store.task(tid)['name']!r} has no stored Fisher for seed {s}")
            vecs.append(torch.from_numpy(f))
        nets = [self._probe(b, s), self._probe(t, s)]
        classes = None
        if self.cfg.dictionary.include_head:
            classes = max(n.head.out_features for n in nets)
            vecs = [pad_head(v, n, classes) for v, n in zip(vecs, nets)]
        return self._distance(vecs[0], vecs[1], nets[1], classes)

    def _fisher(self, net: torch.nn.Module, task: TaskData, s: int, head_classes: int | None = None) -> torch.Tensor:
        return task_fisher(net, task, s, self.cfg.dictionary, head_classes)

    def _transfer_pair(self, a: str, b: str, s: int) -> float:
        from engine.similarity.transfer import transfer_distance

        result = transfer_distance(self._probe(a, s), self._probe(b, s), self.task_data(b), self.cfg.transfer,
                                   device=self.device, seed=self.cfg.project.seed * 1000 + s, reporter=self.reporter)
        return float(result.distance)

    def _probe(self, task_id: str, s: int) -> torch.nn.Module:
        key = (task_id, s)
        if key in self._models:
            self._models.move_to_end(key)
            return self._models[key]
        attrs = self.store.task(task_id)
        model = load_probe(attrs["probe_arch"], int(attrs["num_classes"]), self.store.load_probe(task_id, s))
        from engine.runtime.device import prepare_model

        model = prepare_model(model, self.device).eval()
        self._models[key] = model
        while len(self._models) > _MODEL_CACHE:
            self._models.popitem(last=False)
        return model

    # ------------------------------------------------------------------ on a remote executor

    def _compute_remote(self, method: str, only: str | None = None) -> int:
        """The remote twin of completing tasks + filling NaN entries: one unit per missing probe (task, seed), one
        Fisher unit per probe that has passes to make and, for `method = "transfer"`, one transfer unit per source
        probe with missing pairs; results are written here as each arrives. With `only`,
        just that task and its row and column against the ready tasks (what `add_task` does locally)."""
        from engine.similarity.fisher import fisher_samples
        from engine.similarity.units import fisher_unit, train_probe_unit, transfer_unit, worker_task

        ex, d, seeds = self.executor, self.cfg.dictionary, self.seeds
        if only is None:
            ids = list(self.store.task_ids())
        else:
            ids = [only] + [t for t in self._ready_ids() if t != only]
        attrs = {t: self.store.task(t) for t in ids}
        for tid in ids:
            if attrs[tid].get("probe_arch") != d.probe:
                raise ConfigError(f"task {attrs[tid]['name']!r} in the store has probe {attrs[tid].get('probe_arch')!r}, "
                                  f"the config says {d.probe!r}; every task of a dictionary uses the same probe",
                                  file=self.cfg.file, key="dictionary.probe")
        for tid in ids:
            self.store.add_distance_task(method, tid)
        matrix = self.store.distances(method)
        if only is None:
            pairs = [(matrix.ids[i], matrix.ids[j]) for j in range(len(matrix.ids)) for i in range(len(matrix.ids))
                     if np.isnan(matrix.value[i, j]) and matrix.ids[i] in attrs and matrix.ids[j] in attrs]
        else:
            pairs = [(b, only) for b in ids if b != only] + [(only, b) for b in ids if b != only] + [(only, only)]
            pairs = [(b, t) for b, t in pairs if np.isnan(matrix.get(b, t)[0])]
        cross = [(b, t) for b, t in pairs if b != t]
        shared = method == "fisher" and d.fisher_body == "shared"
        if shared:    # a shared-body probe is a head fitted here on the one body (trained once, or read back)
            for t in ids:
                todo = [s for s in range(seeds) if not self.store.has_probe(t, s)]
                if todo:
                    self._train(t, todo)
        # the embedding and domain forms compare own Fishers only: no Fisher pass of one probe on another's data
        own_only = shared and d.fisher_form != "pair"
        fisher_pairs = cross if method == "fisher" and not own_only else []
        missing_probes = [(t, s) for t in ids for s in range(seeds) if not self.store.has_probe(t, s)]
        own_vec: dict[tuple[str, int], np.ndarray] = {}
        for t in ids:
            for s in range(seeds):
                vec = self.store.load_fisher(t, s)
                if vec is not None:
                    own_vec[(t, s)] = vec
        targets_of: dict[str, list[str]] = {}
        for b, t in fisher_pairs:
            targets_of.setdefault(b, []).append(t)
        transfer_targets: dict[str, list[str]] = {}  # one unit per source probe (b, s): b loaded once
        for b, t in (cross if method == "transfer" else []):
            transfer_targets.setdefault(b, []).append(t)

        refs, sample_refs = self._task_refs, self._sample_refs

        def task_ref(t: str) -> Any:  # a probe unit's task (train + val) goes to the cluster once per job
            if t not in refs:
                refs[t] = ex.put(worker_task(self.task_data(t)))
            return refs[t]

        def samples_ref(t: str) -> Any:  # a Fisher pass needs only t's M samples: shipped once per job
            if t not in sample_refs:
                x, y, seed = fisher_samples(self.task_data(t), d.fisher_samples)
                sample_refs[t] = ex.put((x.cpu(), y.cpu(), seed))
            return sample_refs[t]

        probe_refs: dict[tuple[str, int], Any] = {}
        kinds: dict[Any, tuple[str, str, int]] = {}
        for t, s in missing_probes:
            if attrs[t].get("status") != "training":
                self.store.update_task(t, status="training")
                attrs[t]["status"] = "training"
            task = self.task_data(t)
            ref = ex.submit(train_probe_unit, task_ref(t), d, probe_seed(self.cfg, task.definition, s), s, ex.device,
                            ex.unit_reporter(f"probe {task.definition.name}/{s}"),
                            name=f"probe:{task.definition.name}:{s}")
            probe_refs[(t, s)] = ref
            kinds[ref] = ("probe", t, s)

        def probe_ref(t: str, s: int) -> Any:  # a probe unit's result ref, or the stored weights shipped once
            if (t, s) not in probe_refs:
                probe_refs[(t, s)] = ex.put((self.store.load_probe(t, s), None))
            return probe_refs[(t, s)]

        for b in ids:
            for s in range(seeds):
                own = (b, s) not in own_vec
                targets = targets_of.get(b, [])
                if not own and not targets:
                    continue
                probe_ref(b, s)
                listed = ([b] if own else []) + targets
                classes = [0] * own + [int(attrs[t]["num_classes"]) for t in targets]  # 0: own, unpadded
                ref = ex.submit(fisher_unit, d.probe, int(attrs[b]["num_classes"]), probe_refs[(b, s)], d, s,
                                ex.device, listed, classes, *[samples_ref(t) for t in listed],
                                name=f"fisher:{attrs[b]['name']}:{s}")
                kinds[ref] = ("fisher", b, s)
        for b, targets in transfer_targets.items():
            for s in range(seeds):
                ref = ex.submit(transfer_unit, d.probe, int(attrs[b]["num_classes"]), probe_ref(b, s),
                                self.cfg.transfer, s, self.cfg.project.seed * 1000 + s, ex.device,
                                ex.unit_reporter(f"transfer {attrs[b]['name']}/{s}"), targets,
                                [int(attrs[t]["num_classes"]) for t in targets],
                                *[probe_ref(t, s) for t in targets], *[task_ref(t) for t in targets],
                                name=f"transfer:{attrs[b]['name']}:{s}")
                kinds[ref] = ("transfer", b, s)

        n_probes = len(missing_probes)
        n_fisher = sum(1 for k in kinds.values() if k[0] == "fisher")
        n_transfer = sum(1 for k in kinds.values() if k[0] == "transfer")
        pair_vecs: dict[tuple[str, str, int], np.ndarray] = {}
        transfer_vals: dict[tuple[str, str], dict[int, float]] = {}
        remaining = set(fisher_pairs)
        written = 0
        done_probes = done_fisher = done_transfer = 0
        if kinds:
            more = (f", {n_transfer} transfer units ({len(cross)} pairs)" if method == "transfer"
                    else f" ({len(fisher_pairs)} pairs)")
            self.reporter.emit("log", level="info", message=(
                f"{ex.status()}: {n_probes} probe units, {n_fisher} Fisher units{more}"))
        for ref, value in ex.completed(list(kinds), self.reporter):
            kind, b, s = kinds[ref]
            if kind == "probe":
                state, info = value
                self.store.save_probe(b, state, s)
                accs = list(self.store.task(b).get("val_accs") or [])
                accs += [None] * (seeds - len(accs))
                accs[s] = info["val_acc"]
                epochs = list(self.store.task(b).get("epochs_per_seed") or [])
                epochs += [None] * (seeds - len(epochs))
                epochs[s] = info["epochs"]
                self.store.update_task(b, val_accs=accs, epochs_per_seed=epochs)
                self._after_probe(b, info["seconds"])
                done_probes += 1
                self.reporter.emit("job_progress", job=self.job, stage="probes", done=done_probes, total=n_probes)
                continue
            if kind == "transfer":
                for t, dist in value.items():
                    got = transfer_vals.setdefault((b, t), {})
                    got[s] = dist
                    if len(got) == seeds:  # every seed's d(b, t) is here: one entry, as the local path writes it
                        values = [got[i] for i in range(seeds)]
                        mean, std = mean_std(values)
                        self.store.set_distance(method, b, t, mean, std, values if seeds > 1 else None)
                        self.reporter.emit("distance", method=method, source=b, target=t, value=mean, std=std)
                        written += 1
                done_transfer += 1
                self.reporter.emit("job_progress", job=self.job, stage="transfer units", done=done_transfer,
                                   total=n_transfer)
                continue
            for t, vec in value.items():
                if t == b and (b, s) not in own_vec:
                    self.store.save_fisher(b, vec, s)
                    own_vec[(b, s)] = self.store.load_fisher(b, s)
                else:
                    pair_vecs[(b, t, s)] = vec
            done_fisher += 1
            self.reporter.emit("job_progress", job=self.job, stage="fisher passes", done=done_fisher, total=n_fisher)
            self._mark_ready(b, own_vec)
            for pair in [p for p in remaining if b in p]:
                if self._write_pair(method, pair, pair_vecs, own_vec):
                    remaining.discard(pair)
                    written += 1
        for t in ids:
            self._mark_ready(t, own_vec)
        for pair in list(remaining):  # every unit has arrived: all its inputs are here
            if self._write_pair(method, pair, pair_vecs, own_vec):
                written += 1
        for t, t2 in pairs:
            if t == t2:
                self.store.set_distance(method, t, t, 0.0, 0.0, [0.0] * seeds if seeds > 1 else None)
                self.reporter.emit("distance", method=method, source=t, target=t, value=0.0, std=0.0)
                written += 1
        if own_only:            # from the stored own Fishers: no network pass left
            written += self._fill(method, cross)
        return written

    def _mark_ready(self, t: str, own_vec: dict[tuple[str, int], np.ndarray]) -> None:
        if all((t, s) in own_vec for s in range(self.seeds)) and self.store.task(t).get("status") != "ready":
            self.store.update_task(t, status="ready")

    def _write_pair(self, method: str, pair: tuple[str, str], pair_vecs, own_vec) -> bool:
        """Writes d(b, t) when every seed's F(b, t) and F(t, t) are here; False if something is still missing."""
        b, t = pair
        if not all((b, t, s) in pair_vecs and (t, s) in own_vec for s in range(self.seeds)):
            return False
        values = []
        for s in range(self.seeds):
            f_bt, f_tt = pair_vecs.pop((b, t, s)), own_vec[(t, s)]
            if self.cfg.dictionary.include_head:
                net_b, net_t = self._probe(b, s), self._probe(t, s)
                head_classes = max(net_b.head.out_features, net_t.head.out_features)
                f_tt = pad_head(torch.from_numpy(f_tt), net_t, head_classes)
            values.append(fisher_distance(f_bt, f_tt))
        value, std = mean_std(values)
        self.store.set_distance(method, b, t, value, std, values if self.seeds > 1 else None)
        self.reporter.emit("distance", method=method, source=b, target=t, value=value, std=std)
        return True

    # ------------------------------------------------------------------ queries

    def nearest(self, target: str, k: int = 3, method: str | None = None) -> list[Neighbor]:
        return nearest(self.store, target, k, method or self.cfg.dictionary.method)

    def farthest(self, target: str, k: int = 3, method: str | None = None) -> list[Neighbor]:
        return farthest(self.store, target, k, method or self.cfg.dictionary.method)


def pad_head(vec: torch.Tensor, model: torch.nn.Module, head_classes: int) -> torch.Tensor:
    """Zero-pads the head blocks of a Fisher computed with include_head=True (unpadded) to `head_classes` rows."""
    head_ids = {id(p) for p in model.head.parameters()}
    head_names = {n for n, p in model.named_parameters() if id(p) in head_ids}
    parts, start = [], 0
    for name, n in fisher_layout(model, include_head=True):
        block = vec[start:start + n]
        start += n
        if name in head_names:
            rows = model.get_parameter(name).shape[0]
            block = torch.cat([block, block.new_zeros(n // rows * (head_classes - rows))])
        parts.append(block)
    if start != len(vec):
        raise ValueError(f"Fisher vector has {len(vec)} entries, the probe's layout {start}")
    return torch.cat(parts)
