"""A dictionary's probes: each task's data, its ε-representative probe network(s) and its own Fisher(s).

`Probes` trains what is missing here (or fits heads on the shared body), caches built tasks and loaded networks, and
is the ONE place that records a probe or an own Fisher in the store: the local path and the remote planner
(`engine.similarity.remote`) both hand their results to `record_probe` / `record_own_fisher`, so the task's
val accuracies, epochs, ε flag, events and `ready` mark are written the same way whoever computed them.
"""
from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import Any, Callable

import numpy as np
import torch

from engine.config import Config, ConfigError
from engine.data.tasks import TaskData, TaskDef
from engine.data.tasks import task_id as definition_id
from engine.runtime.finite import check
from engine.runtime.reporting import Reporter
from engine.similarity.fisher import fisher_samples
from engine.similarity.probe import load_probe, probe_state, train_probe

_MODEL_CACHE = 64

# (network, fisher_samples(task, M), seed index, [dictionary] section, head classes) -> unnormalised diagonal
FisherFn = Callable[..., torch.Tensor]


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


class Probes:
    """Task data, probes and own Fishers of the tasks in `store`; `own_fisher` is the configured Fisher form's."""

    def __init__(self, store, cfg: Config, device: torch.device, reporter: Reporter, job: str,
                 own_fisher: FisherFn, task_builder: Callable[[TaskDef], TaskData] | None = None,
                 source_loader: Callable[[str], Any] | None = None):
        self.store, self.cfg, self.device, self.reporter, self.job = store, cfg, device, reporter, job
        self.own_fisher = own_fisher
        self._builder = task_builder or self._build_from_source
        self._source_loader = source_loader     # name -> Dataset, for the shared body's broad task
        self._shared = None
        self._skip_reported: set[str] = set()
        self._tasks: dict[str, TaskData] = {}
        self._models: OrderedDict[tuple[str, int], torch.nn.Module] = OrderedDict()

    @property
    def seeds(self) -> int:
        return self.cfg.dictionary.seeds

    @property
    def shared(self) -> bool:
        """Probes are heads fitted here on one shared body (so they are never remote units)."""
        return self.cfg.dictionary.fisher_body == "shared"

    # ------------------------------------------------------------------ task data

    def _build_from_source(self, taskdef: TaskDef) -> TaskData:
        from engine.data import get_source
        from engine.data.tasks import build_task

        data = get_source(taskdef.source, self.cfg.sources, self.cfg.data_dir, base_dir=self.cfg.root).load()
        if data.skipped and taskdef.source not in self._skip_reported:
            self._skip_reported.add(taskdef.source)
            self.reporter.emit("warning", code="skipped_unreadable", message=(
                f"source {taskdef.source!r}: skipped {len(data.skipped)} unreadable file"
                f"{'' if len(data.skipped) == 1 else 's'} (skip_unreadable = true), first: {data.skipped[0]}"))
        return build_task(taskdef, data)

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

    def samples(self, task_id: str) -> tuple[torch.Tensor, torch.Tensor, int]:
        """The M rows of the task every Fisher on its data uses (`fisher_samples`)."""
        return fisher_samples(self.task_data(task_id), self.cfg.dictionary.fisher_samples)

    def forget(self, task_id: str) -> None:
        self._tasks.pop(task_id, None)
        for key in [k for k in self._models if k[0] == task_id]:
            del self._models[key]

    # ------------------------------------------------------------------ checks

    def check_arch(self, attrs: dict[str, Any]) -> None:
        """Every task of a dictionary uses the same probe architecture."""
        if attrs.get("probe_arch") != self.cfg.dictionary.probe:
            raise ConfigError(f"task {attrs['name']!r} in the store has probe {attrs.get('probe_arch')!r}, "
                              f"the config says {self.cfg.dictionary.probe!r}; every task of a dictionary uses the "
                              f"same probe", file=self.cfg.file, key="dictionary.probe")

    def missing_probes(self, task_id: str) -> list[int]:
        return [s for s in range(self.seeds) if not self.store.has_probe(task_id, s)]

    # ------------------------------------------------------------------ local work

    def complete(self, task_id: str) -> None:
        """Trains the missing probes and computes the missing own Fishers of a stored task; marks it ready."""
        attrs = self.store.task(task_id)
        self.check_arch(attrs)
        missing = self.missing_probes(task_id)
        if missing:
            self.train(task_id, missing)
        for s in range(self.seeds):
            if self.store.fisher_length(task_id, s) is None:
                self.reporter.check()
                self.reporter.emit("task_status", task_id=task_id, name=attrs["name"], status="fisher")
                vec = self.own_fisher(self.model(task_id, s), self.samples(task_id), s, self.cfg.dictionary)
                self.record_own_fisher(task_id, s, vec.numpy())
        self.mark_ready(task_id)

    def train(self, task_id: str, seed_indices: list[int]) -> None:
        """Trains (or fits on the shared body) the task's probes of `seed_indices` here, recording each."""
        task = self.task_data(task_id)
        name = task.definition.name
        self.mark_training(task_id)
        for s in seed_indices:
            self.reporter.emit("job_progress", job=self.job, stage=f"probe {name}", done=s, total=self.seeds)
            if self.shared:
                result = self.shared_bodies().task_probe(task, s)
                self._note_body_sources(task_id, task.definition, self.shared_bodies().trained_on(s))
            else:
                result = train_probe(task, self.cfg.dictionary, seed=probe_seed(self.cfg, task.definition, s),
                                     device=self.device, reporter=self.reporter, seed_index=s)
            self._models[(task_id, s)] = result.model
            self.record_probe(task_id, s, probe_state(result.model), result.val_acc, result.epochs, result.seconds)

    def _note_body_sources(self, task_id: str, definition, sources: tuple[str, ...]) -> None:
        """Records which sources the task's shared body learned; a task from another source gets a notice (its
        features, and so its Fisher and distances, come from a body that never saw such images)."""
        unseen = bool(sources) and definition.source not in sources
        self.store.update_task(task_id, body_sources=list(sources), unseen_source=unseen)
        if unseen:
            n = len(self.store.task_ids())
            self.reporter.emit("warning", code="unseen_source", message=(
                f"task {definition.name!r}: its source {definition.source!r} is not among the shared body's training "
                f"sources ({', '.join(sources)}); its Fisher and distances come from features learned on other "
                f"images. To refit the body on every source, build the dictionary into a new store ([project] store "
                f"= a new path, then `tanas-tui run`): every task's probe head and own Fisher are recomputed "
                f"({n} tasks)"))

    # ------------------------------------------------------------------ the one recording path

    def mark_training(self, task_id: str) -> None:
        if self.store.task(task_id).get("status") != "training":
            self.store.update_task(task_id, status="training")
        self.reporter.emit("task_status", task_id=task_id, name=self.store.task(task_id)["name"], status="training")

    def record_probe(self, task_id: str, s: int, state: dict[str, np.ndarray], val_acc: float, epochs: int,
                     seconds: float) -> None:
        """Stores probe s of the task and its training record; once every seed's probe is in, the task's val
        accuracy, ε flag and `probe_done` (plus a warning when it is not ε-representative)."""
        self.store.save_probe(task_id, state, s)
        attrs = self.store.task(task_id)
        accs = list(attrs.get("val_accs") or [])
        accs += [None] * (self.seeds - len(accs))
        accs[s] = val_acc
        per_seed = list(attrs.get("epochs_per_seed") or [])
        per_seed += [None] * (self.seeds - len(per_seed))
        per_seed[s] = epochs
        done = [a for a in accs if a is not None]
        trained = [e for e in per_seed if e is not None]
        target = 1.0 - self.cfg.dictionary.epsilon
        mean_acc = float(np.mean(done))
        representative = all(a >= target for a in done)
        total_seconds = float(attrs.get("train_seconds") or 0.0) + seconds
        body = "shared" if self.shared else "per-task"     # shared: `epochs` are the body's, not this task's
        self.store.update_task(task_id, val_accs=accs, epochs_per_seed=per_seed, val_acc=mean_acc, probe_body=body,
                               epochs=max(trained), train_seconds=total_seconds, representative=representative)
        if len(done) == self.seeds:
            self.reporter.emit("probe_done", task_id=task_id, name=attrs["name"], val_acc=mean_acc,
                               epochs=max(trained), seconds=total_seconds, representative=representative,
                               shared_body=self.shared)
            if not representative:
                self.reporter.emit("warning", code="not_representative", message=(
                    f"task {attrs['name']!r}: probe val accuracy {min(done):.3f} < 1 − ε = {target:.3f} after "
                    f"{max(trained)} epochs; stored as not ε-representative"))

    def record_own_fisher(self, task_id: str, s: int, vec: np.ndarray) -> None:
        check(vec, "Fisher", s, "own Fisher vector", f"task {self.store.task(task_id)['name']!r}")
        self.store.save_fisher(task_id, vec, s)

    def mark_ready(self, task_id: str) -> bool:
        """Marks the task ready once every seed's own Fisher is stored; True when it is ready."""
        if any(self.store.fisher_length(task_id, s) is None for s in range(self.seeds)):
            return False
        if self.store.task(task_id).get("status") != "ready":
            self.store.update_task(task_id, status="ready")
            self.reporter.emit("task_status", task_id=task_id, name=self.store.task(task_id)["name"],
                               status="ready")
        return True

    # ------------------------------------------------------------------ networks

    def model(self, task_id: str, s: int) -> torch.nn.Module:
        """Probe s of the task, in eval mode on the dictionary's device (cached, least recently used dropped)."""
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

    def shared_bodies(self):
        from engine.similarity.shared_probe import SharedBodies

        if self._shared is None:
            # The tasks' test images are only used to keep them out of the body's training set (not a test read).
            self._shared = SharedBodies(self.cfg, self.store, self.device, self._source_loader,
                                        lambda: [self._builder(t)._test_x for t in self.cfg.all_tasks()])
        return self._shared
