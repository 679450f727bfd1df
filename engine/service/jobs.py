"""The jobs (pipeline stages) that both the engine server and the in-process CLI run.

Each job is `fn(store, cfg, device, reporter, job_id, **params) -> JSON-able result`. `execute()` wraps one in
`job_started` / `job_done` events; stages inside a job report `job_progress`. Every stage reuses what the store
already holds (probes, distances, genotypes, finished or checkpointed searches), so re-running is cheap and a
crashed run resumes.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

from engine.service.protocol import plain
from engine.runtime.reporting import JobStopped, Reporter

JobFn = Callable[..., Any]
PIPELINE_STAGES = ("dictionary", "distances", "genotypes", "nearest", "space", "search", "comparison")


class JobError(Exception):
    """A job that cannot run as asked (bad parameters, missing target); the message says why."""


class Stages:
    """Emits `job_progress` for a job made of named stages and records each stage's wall time."""

    def __init__(self, reporter: Reporter, job_id: str, names: list[str]):
        self.reporter, self.job_id, self.names = reporter, job_id, names
        self.timings: dict[str, float] = {}
        self._current: str | None = None
        self._t0 = 0.0

    def start(self, name: str) -> None:
        self._finish_current()
        self.reporter.check()
        self._current, self._t0 = name, time.perf_counter()
        self.reporter.emit("job_progress", job=self.job_id, stage=name, done=self.names.index(name),
                           total=len(self.names))

    def _finish_current(self) -> None:
        if self._current is not None:
            self.timings[self._current] = round(time.perf_counter() - self._t0, 3)
            self._current = None

    def finish(self) -> dict[str, float]:
        self._finish_current()
        self.reporter.emit("job_progress", job=self.job_id, stage="done", done=len(self.names), total=len(self.names))
        return self.timings


# --------------------------------------------------------------------------- job kinds


def run_pipeline(store, cfg, device, reporter: Reporter, job_id: str = "") -> dict[str, Any]:
    """Dictionary (base tasks + target), distances, base genotypes, nearest tasks, task-aware space, FUSE and final
    training, and the comparison when `search.compare`. Returns nearest tasks, the search result, comparison rows
    and per-stage timings."""
    from engine.similarity.dictionary import Dictionary
    from engine.search import searching

    target = cfg.target
    names = list(PIPELINE_STAGES[:3])
    if target is not None:
        names += list(PIPELINE_STAGES[3:6]) + (["comparison"] if cfg.search.compare else [])
    stages = Stages(reporter, job_id, names)
    method = cfg.dictionary.method
    result: dict[str, Any] = {"target": target.name if target else None, "method": method, "space": cfg.space.kind}

    stages.start("dictionary")
    dictionary = Dictionary(store, cfg, device, reporter, job=job_id)
    dictionary.ensure(list(cfg.tasks), "base")
    if target is not None:
        dictionary.ensure([target], "target")
    stages.start("distances")
    dictionary.compute_distances(method)
    stages.start("genotypes")
    searching.assign_base_genotypes(store, cfg, device, reporter)
    if target is not None:
        stages.start("nearest")
        result["nearest"] = _nearest_rows(dictionary.nearest(target.name, cfg.dictionary.k, method))
        stages.start("space")
        space = searching.build_space(store, cfg, target.name, cfg.space.kind, device=device, reporter=reporter)
        result["space_description"] = space.describe()
        stages.start("search")
        result["search"] = searching.run_search(store, cfg, target.name, cfg.space.kind, device=device,
                                                reporter=reporter, seed=cfg.project.seed, space=space)
        if cfg.search.compare:
            stages.start("comparison")
            result["comparison"] = searching.run_comparison(store, cfg, target.name, device=device, reporter=reporter)
    result["timings"] = stages.finish()
    return result


def add_task(store, cfg, device, reporter: Reporter, job_id: str = "", *, task: dict[str, Any],
             role: str = "base") -> dict[str, Any]:
    from engine.similarity.dictionary import Dictionary

    taskdef = taskdef_from(task, cfg)
    stages = Stages(reporter, job_id, ["probe", "distances"])
    stages.start("probe")
    dictionary = Dictionary(store, cfg, device, reporter, job=job_id)
    task_id = dictionary.add_task(taskdef, role)
    stages.start("distances")
    dictionary.compute_distances(cfg.dictionary.method)
    return {"task_id": task_id, "name": taskdef.name, "role": role, "timings": stages.finish()}


def remove_task(store, cfg, device, reporter: Reporter, job_id: str = "", *, task: str) -> dict[str, Any]:
    from engine.similarity.dictionary import Dictionary

    task_id = store.find_task(task)
    name = store.task(task_id).get("name", task)
    Dictionary(store, cfg, device, reporter, job=job_id).remove_task(task_id)
    return {"task_id": task_id, "name": name}


def compute_distances(store, cfg, device, reporter: Reporter, job_id: str = "", *,
                      method: str | None = None) -> dict[str, Any]:
    from engine.similarity.dictionary import Dictionary

    method = method or cfg.dictionary.method
    computed = Dictionary(store, cfg, device, reporter, job=job_id).compute_distances(method)
    return {"method": method, "computed": computed}


def build_space(store, cfg, device, reporter: Reporter, job_id: str = "", *, target: str | None = None,
                kind: str | None = None) -> dict[str, Any]:
    from engine.search import searching

    target_name = _target_name(cfg, target)
    kind = kind or cfg.space.kind
    space = searching.build_space(store, cfg, target_name, kind, device=device, reporter=reporter)
    return {"target": target_name, "kind": kind, "space": space.to_dict(), "description": space.describe()}


def start_search(store, cfg, device, reporter: Reporter, job_id: str = "", *, target: str | None = None,
                 space: str | None = None, run_id: str | None = None, seed: int | None = None) -> dict[str, Any]:
    from engine.search import searching

    target_name = _target_name(cfg, target)
    return searching.run_search(store, cfg, target_name, space or cfg.space.kind, run_id=run_id, device=device,
                                reporter=reporter, seed=cfg.project.seed if seed is None else seed)


def sleep(store, cfg, device, reporter: Reporter, job_id: str = "", *, steps: int = 1,
          seconds: float = 0.0) -> dict[str, Any]:
    """Diagnostic job: exercises the queue, events and pause / stop without touching the store."""
    for i in range(steps):
        reporter.check()
        if seconds:
            time.sleep(seconds)
        reporter.emit("job_progress", job=job_id, stage="sleep", done=i + 1, total=steps)
    return {"steps": steps}


JOBS: dict[str, JobFn] = {
    "run_pipeline": run_pipeline, "add_task": add_task, "remove_task": remove_task,
    "compute_distances": compute_distances, "build_space": build_space, "start_search": start_search,
    "sleep": sleep,
}
NEEDS_NO_CONFIG = {"sleep"}


# --------------------------------------------------------------------------- running a job


def execute(kind: str, params: dict[str, Any], *, store, reporter: Reporter, job_id: str, cfg=None,
            config_path: Path | None = None, store_path: Path | None = None, device: str | None = None) -> Any:
    """Runs one job with `job_started` / `job_done` around it and returns its result; re-raises its exception
    (JobStopped when stopped) after reporting it. Without `cfg`, loads the config: `params["config"]` or
    `config_path`, with `store_path` as the store; `params["device"]` or `device` overrides the config's."""
    fn = JOBS.get(kind)
    if fn is None:
        raise JobError(f"unknown job kind {kind!r} (known: {', '.join(JOBS)})")
    params = dict(params)
    job_config = params.pop("config", None)
    job_device = params.pop("device", None) or device
    shown = plain({**params, **({"config": job_config} if job_config else {}),
                   **({"device": job_device} if job_device else {})})
    reporter.emit("job_started", job=job_id, kind=kind, params=shown)
    t0 = time.perf_counter()
    threads_before: int | None = None
    try:
        if cfg is None and kind not in NEEDS_NO_CONFIG:
            cfg = load_job_config(job_config or config_path, store_path)
        dev = None
        if kind not in NEEDS_NO_CONFIG:
            from engine.runtime.device import resolve_device

            dev = resolve_device(job_device or cfg.project.device)
            if dev.type == "cpu" and cfg.project.threads > 0:
                import torch

                threads_before = torch.get_num_threads()
                torch.set_num_threads(cfg.project.threads)
        result = plain(fn(store, cfg, dev, reporter, job_id, **params))
    except JobStopped:
        reporter.emit("job_done", job=job_id, kind=kind, params=shown, status="stopped",
                      message="stopped", seconds=time.perf_counter() - t0)
        raise
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"
        reporter.emit("error", message=message, code="job_failed", job=job_id)
        reporter.emit("job_done", job=job_id, kind=kind, params=shown, status="failed", message=str(exc) or message,
                      error_types=[c.__name__ for c in type(exc).__mro__], seconds=time.perf_counter() - t0)
        raise
    finally:
        if threads_before is not None:  # an in-process job must not change the caller's torch settings
            import torch

            torch.set_num_threads(threads_before)
    reporter.emit("job_done", job=job_id, kind=kind, params=shown, status="ok", result=result,
                  seconds=time.perf_counter() - t0)
    return result


def load_job_config(config_path: str | Path | None, store_path: Path | None):
    """The config for one job, re-read each time so edits apply to the next job. The store is always the engine's
    own (clients find the engine through their config's store, so the two agree)."""
    from engine.config import load_config

    overrides = {"project.store": str(store_path)} if store_path is not None else {}
    return load_config(config_path, os.environ, overrides)


# --------------------------------------------------------------------------- helpers


def taskdef_from(task: dict[str, Any], cfg):
    """A TaskDef from a command's dict: {"name": N} alone names a task of the config; otherwise the fields."""
    from engine.data.tasks import TaskDef

    if set(task) == {"name"}:
        return cfg.task(task["name"])
    fields = dict(task)
    for key in ("positive", "classes"):
        if fields.get(key) is not None:
            fields[key] = tuple(str(c) for c in fields[key])
    try:
        return TaskDef(**fields)
    except TypeError as exc:
        raise JobError(f"task {task.get('name')!r}: {exc}") from None


def _target_name(cfg, target: str | None) -> str:
    if target:
        return target
    if cfg.target is None:
        raise JobError("no target task: name one, or set [target] in the config")
    return cfg.target.name


def _nearest_rows(rows: Any) -> list[dict[str, Any]]:
    """Normalises `Dictionary.nearest` output to [{"task_id", "name", "distance", "std"?}]."""
    out = []
    for row in rows:
        if isinstance(row, dict):
            out.append(plain(row))
        elif hasattr(row, "_asdict"):
            out.append(plain(row._asdict()))
        elif isinstance(row, (list, tuple)):
            keys = ("task_id", "name", "distance", "std")
            out.append(plain(dict(zip(keys, row))))
        else:
            out.append(plain(row))
    return out
