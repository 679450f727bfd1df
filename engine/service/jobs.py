"""The jobs (pipeline stages) that both the engine server and the in-process CLI run, and their submission.

Each job is `fn(ctx, **params) -> JSON-able result`, with `ctx` a `JobContext` (store, config, device, reporter,
job id, dictionary), registered in the one table `JOBS`. `submission(kind, params, config)` checks a job before it
is queued or run (every field, and its config, resolved once: a queued job is one that can run);
`execute(kind, params, ctx)` runs one, wrapped in `job_started` / `job_done` events; stages inside a job report
`job_progress`. Every stage reuses what the store already holds (probes, distances, genotypes, finished or
checkpointed searches), so re-running is cheap and a crashed run resumes.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from engine.service import protocol as P
from engine.service.protocol import plain
from engine.runtime.reporting import JobStopped, Reporter
from engine.service.context import JobContext

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


def run_pipeline(ctx: JobContext, *, seed: int | None = None, run_id: str | None = None) -> dict[str, Any]:
    """Dictionary (base tasks + target), distances, base genotypes, nearest tasks, task-aware space, FUSE and final
    training, and the comparison when `search.compare`. Returns nearest tasks, the search result, comparison rows
    and per-stage timings. `seed` (default project.seed) seeds the target's search and the comparison's first
    repeat; `run_id` names the target's search (and stands for that arm's run in the comparison)."""
    from engine.search import searching

    cfg = ctx.config
    target = cfg.target
    names = list(PIPELINE_STAGES[:3])
    if target is not None:
        names += list(PIPELINE_STAGES[3:6]) + (["comparison"] if cfg.search.compare else [])
    stages = Stages(ctx.reporter, ctx.job_id, names)
    method = cfg.dictionary.method
    result: dict[str, Any] = {"target": target.name if target else None, "method": method, "space": cfg.space.kind}

    stages.start("dictionary")
    dictionary = ctx.dictionary
    dictionary.ensure(list(cfg.tasks), "base")
    if target is not None:
        dictionary.ensure([target], "target")
    stages.start("distances")
    dictionary.compute_distances(method)
    stages.start("genotypes")
    if target is None:
        searching.assign_base_genotypes(ctx)
    else:       # only the tasks this target's spaces are built from
        from engine.choices import ARM_SPACE

        kinds = [cfg.space.kind] + ([ARM_SPACE[a] for a in cfg.search.arms if a in ARM_SPACE] if cfg.search.compare
                                    else [])
        searching.assign_base_genotypes(ctx, only=searching.space_tasks(ctx, target.name, kinds))
    if target is not None:
        stages.start("nearest")
        result["nearest"] = _nearest_rows(dictionary.nearest(target.name, cfg.dictionary.k, method))
        stages.start("space")
        space = searching.build_space(ctx, target.name, cfg.space.kind)
        result["space_description"] = space.describe()
        stages.start("search")
        seed = cfg.project.seed if seed is None else int(seed)
        result["search"] = searching.run_search(ctx, target.name, cfg.space.kind, seed=seed, run_id=run_id,
                                                space=space)
        if cfg.search.compare:
            stages.start("comparison")
            budgets = [{"rounds": r} for r in cfg.search.sweep_rounds] or None
            seeds = [seed + i for i in range(max(1, cfg.search.repeats))]
            planned = searching.plan_search(cfg, target.name, cfg.space.kind, seed).run_id
            result["comparison"] = searching.run_comparison(ctx, target.name, seeds=seeds, budgets=budgets,
                                                            run_ids={planned: run_id} if run_id else None)
            result["table"] = _result_table(ctx, target.name)
    result["timings"] = stages.finish()
    return result


def _result_table(ctx: JobContext, target_name: str) -> dict[str, Any] | None:
    """The arms' table (engine.results) over every finished run on the target, as plain data for the protocol."""
    from engine.results.collect import TableError, result_table

    try:
        return result_table(ctx.store, target_name).to_dict()
    except (TableError, ValueError) as exc:
        ctx.reporter.emit("warning", message=f"no result table: {exc}", code="no-table")
        return None


def add_task(ctx: JobContext, *, task: dict[str, Any], role: str = "base") -> dict[str, Any]:
    taskdef = taskdef_from(task, ctx.config)
    method = ctx.config.dictionary.method
    before = _computed_entries(ctx.store, method)
    stages = Stages(ctx.reporter, ctx.job_id, ["probe", "distances"])
    stages.start("probe")
    task_id = ctx.dictionary.add_task(taskdef, role)
    stages.start("distances")
    ctx.dictionary.compute_distances(method)
    return {"task_id": task_id, "name": taskdef.name, "role": role,
            "computed": _computed_entries(ctx.store, method) - before, "timings": stages.finish()}


def _computed_entries(store, method: str) -> int:
    import numpy as np

    return int(np.count_nonzero(~np.isnan(store.distances(method).value)))


def remove_task(ctx: JobContext, *, task: str) -> dict[str, Any]:
    task_id = ctx.store.find_task(task)
    name = ctx.store.task(task_id).get("name", task)
    ctx.dictionary.remove_task(task_id)
    return {"task_id": task_id, "name": name}


def remove_search(ctx: JobContext, *, run: str) -> dict[str, Any]:
    """Deletes a stored search (the engine runs one job at a time, so it is not running now)."""
    attrs = ctx.store.search(run)
    ctx.store.remove_search(run)
    return {"run": run, "status": attrs.get("status")}


def compute_distances(ctx: JobContext, *, method: str | None = None) -> dict[str, Any]:
    method = method or ctx.config.dictionary.method
    computed = ctx.dictionary.compute_distances(method)
    return {"method": method, "computed": computed}


def noise_floor(ctx: JobContext, *, method: str | None = None) -> dict[str, Any]:
    """Measures and stores the method's noise floor (Dictionary.noise_floor)."""
    method = method or ctx.config.dictionary.method
    record = ctx.dictionary.noise_floor(method)
    values = [v for vs in record["distances"].values() for v in vs]
    return {"method": method, "tasks": len(record["distances"]), "kind": record["kind"],
            "mean": sum(values) / len(values), "max": max(values), "seconds": record["seconds"]}


def build_space(ctx: JobContext, *, target: str | None = None, kind: str | None = None) -> dict[str, Any]:
    from engine.search import searching

    target_name = _target_name(ctx.config, target)
    kind = kind or ctx.config.space.kind
    space = searching.build_space(ctx, target_name, kind)
    return {"target": target_name, "kind": kind, "space": space.to_dict(), "description": space.describe()}


def start_search(ctx: JobContext, *, target: str | None = None, space: str | None = None, run_id: str | None = None,
                 seed: int | None = None) -> dict[str, Any]:
    from engine.search import searching

    cfg = ctx.config
    target_name = _target_name(cfg, target)
    return searching.run_search(ctx, target_name, space or cfg.space.kind, run_id=run_id,
                                seed=cfg.project.seed if seed is None else seed)


def check_premise(ctx: JobContext, *, target: str | None = None, tasks: int = 8, seeds: int = 3,
                  epochs: int = 3) -> dict[str, Any]:
    from engine.search.premise import check_premise as check

    return check(ctx, _target_name(ctx.config, target), tasks=tasks, seeds=seeds, epochs=epochs)


def check_genotypes(ctx: JobContext, *, random: int = 8, epochs: int = 3) -> dict[str, Any]:
    from engine.search.premise import check_genotypes as check

    return check(ctx, random_genotypes=random, epochs=epochs)


def export(ctx: JobContext, *, run: str, format: str, output: str) -> dict[str, Any]:
    """Writes a finished run's genotype (JSON) or trained network (TorchScript / ONNX) to `output`; reads only."""
    from engine.search.export import export_model, input_spec, write_input_spec
    from engine.search.checkpoint import load_final_weights

    genotype, state_dict, num_classes = load_final_weights(ctx.store, run)
    path = export_model(genotype, state_dict, num_classes, format, output)
    out = {"run": run, "format": format, "path": str(path), "hash": genotype.hash}
    if format != "genotype":       # a trained network: what it takes and what its outputs mean, beside it
        attrs = ctx.store.search(run)
        task = ctx.store.task(attrs["target"]) if attrs.get("target") in ctx.store.task_ids() else {}
        spec = input_spec(format, num_classes, task.get("class_names") or _class_names(ctx, attrs), task={
            "name": task.get("name", attrs.get("target_name")), "id": attrs.get("target"),
            "source": (task.get("definition") or {}).get("source"), "run": run, "genotype": genotype.hash})
        out["input_spec"] = spec
        out["input_spec_path"] = str(write_input_spec(path, spec))
    return out


def _class_names(ctx: JobContext, attrs: dict[str, Any]) -> tuple[str, ...] | None:
    """A run's target's class names from the config when the store holds no record of the task (a standard-space
    search builds no dictionary), if the config's task of that name is still the one the run searched."""
    from engine.data.tasks import class_names_of, task_id

    cfg = ctx.given_config
    taskdef = next((t for t in cfg.all_tasks() if t.name == attrs.get("target_name")), None) if cfg else None
    return class_names_of(taskdef) if taskdef is not None and task_id(taskdef) == attrs.get("target") else None


def sleep(ctx: JobContext, *, steps: int = 1, seconds: float = 0.0) -> dict[str, Any]:
    """Diagnostic job: exercises the queue, events and pause / stop without touching the store."""
    for i in range(steps):
        ctx.reporter.check()
        if seconds:
            time.sleep(seconds)
        ctx.reporter.emit("job_progress", job=ctx.job_id, stage="sleep", done=i + 1, total=steps)
    return {"steps": steps}


JOBS: dict[str, JobFn] = {
    "run_pipeline": run_pipeline, "add_task": add_task, "remove_task": remove_task,
    "compute_distances": compute_distances, "noise_floor": noise_floor, "build_space": build_space,
    "start_search": start_search, "check_premise": check_premise,
    "check_genotypes": check_genotypes, "export": export, "sleep": sleep,
    "remove_search": remove_search,
}
NEEDS_NO_CONFIG = {"sleep", "export", "remove_search"}   # no training: neither the device nor torch's thread count matters


# --------------------------------------------------------------------------- submitting and running a job


@dataclass(frozen=True)
class Submission:
    """A job whose every field was checked: what the engine queues and what `run` runs."""
    kind: str
    params: dict[str, Any]                 # the job function's own parameters
    config: Any = None                     # engine.config.Config: the job's, resolved once; None for NEEDS_NO_CONFIG
    device: str | None = None              # overrides config.project.device
    shown: dict[str, Any] = field(default_factory=dict)   # params as listings and events show them


def submission(kind: str, params: dict[str, Any], config: Any = None, *, store: Any = None) -> Submission:
    """Checks job `kind` with `params` before it is queued or run; JobError or ConfigError names what is wrong.

    `params` may hold `config` (a plain-data config, `Config.snapshot()`: the job's own, replacing `config`, with
    its store replaced by `store` when given) and `device`, as every job command of the protocol carries them."""
    from engine.config import config_from_plain, config_summary

    if kind not in JOBS:
        raise JobError(f"unknown job kind {kind!r} (known: {', '.join(JOBS)})")
    params = dict(params)
    carried, device = params.pop("config", None), params.pop("device", None)
    if kind in P.COMMANDS:   # the protocol's field rules, also for a job run in this process
        try:
            P.make_command(kind, device=device, **params)
        except P.ProtocolError as exc:
            raise JobError(exc.message) from None
    if carried is not None:
        config = config_from_plain(carried, store=store)
    if kind not in NEEDS_NO_CONFIG:
        if config is None:
            raise JobError(f"a {kind} job needs a config")
        _CHECKS.get(kind, lambda cfg, p: None)(config, params)
    shown = plain({**params, **({"config": config_summary(carried)} if carried is not None else {}),
                   **({"device": device} if device else {})})
    return Submission(kind, params, config, device, shown)


def _check_add_task(cfg, params: dict[str, Any]) -> None:
    params["task"] = _plain_task(taskdef_from(params.get("task") or {}, cfg))


def _check_target(cfg, params: dict[str, Any]) -> None:
    _target_name(cfg, params.get("target"))


def _check_pipeline(cfg, params: dict[str, Any]) -> None:
    problem = cfg.pipeline_problem()
    if problem is not None:
        raise problem


_CHECKS: dict[str, Callable[[Any, dict[str, Any]], None]] = {
    "add_task": _check_add_task, "build_space": _check_target, "start_search": _check_target,
    "check_premise": _check_target,
    "run_pipeline": _check_pipeline,
}


def execute(kind: str, params: dict[str, Any], ctx: JobContext) -> Any:
    """Checks and runs one job (`submission`, then `run`) with the context's config."""
    return run(submission(kind, params, ctx.given_config), ctx)


def run(job: Submission, ctx: JobContext) -> Any:
    """Runs one checked job with `job_started` / `job_done` around it and returns its result; re-raises its exception
    (JobStopped when stopped) after reporting it. The job's config and device replace the context's."""
    kind, params, shown = job.kind, job.params, job.shown
    fn = JOBS[kind]
    if job.config is not ctx.given_config or job.device:
        ctx = ctx.with_config(job.config, job.device)
    reporter, job_id = ctx.reporter, ctx.job_id
    reporter.emit("job_started", job=job_id, kind=kind, params=shown)
    t0 = time.perf_counter()
    threads_before: int | None = None
    try:
        if kind not in NEEDS_NO_CONFIG:
            cfg = ctx.config
            if getattr(ctx.store, "writable", False):
                ctx.store.set_config_snapshot(cfg.snapshot())
            if ctx.device.type == "cpu":
                import torch
                from engine.runtime.threads import job_threads

                threads_before = torch.get_num_threads()
                torch.set_num_threads(job_threads(cfg.project.threads))
            ctx.executor  # connects a remote executor before the job writes anything: a bad one fails here
            ctx.executor.report_status(reporter, job_id, force=True)
        try:
            result = plain(fn(ctx, **params))
        finally:
            ctx.close_executor()  # cancels units still outstanding (stop, Ctrl-C, SIGTERM, a failed job)
            if ctx.has_executor:
                try:
                    ctx.executor.report_status(reporter, job_id)   # busy counts once this job's units are gone
                except Exception:  # noqa: BLE001 - a lost cluster has no status to give; the job's error says why
                    pass
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


# --------------------------------------------------------------------------- quick answers for the front end


def genotype_params(genotypes: dict[str, dict[str, Any]], num_classes: int) -> dict[str, int | None]:
    """{key: parameter count of the genotype's network} (None for a genotype that does not build)."""
    from engine.space.genotype import Genotype
    from engine.space.network import build_network, count_params

    out: dict[str, int | None] = {}
    for key, data in genotypes.items():
        try:
            out[key] = count_params(build_network(Genotype.from_dict(data), num_classes, seed=0))
        except Exception:  # noqa: BLE001 - unknown genotype format: the count stays unknown
            out[key] = None
    return out


def standard_space(space_section=None) -> dict[str, Any]:
    """The standard search space of a config's [space] section (defaults: None), as plain data."""
    from engine.space.spaces import standard_space as build

    space = build(space_section)
    return {**space.to_dict(), "size_log10": round(space.size_log10(), 3)}


# --------------------------------------------------------------------------- helpers


def taskdef_from(task: dict[str, Any], cfg):
    """A TaskDef from a command's dict: {"name": N} alone names a task of the config; otherwise the fields, under
    the same rules as a [[tasks]] table of the config, on a source the config knows."""
    from engine.config import ConfigError, task_definition
    from engine.data import UnknownSource, get_source

    if set(task) == {"name"}:
        return cfg.task(task["name"])
    try:
        taskdef = task_definition(task, default_seed=cfg.project.seed, where="task")
    except ConfigError as exc:
        raise JobError(f"task {task.get('name')!r}: {exc.key or 'task'}: {exc.message}") from None
    try:
        get_source(taskdef.source, cfg.sources, cfg.data_dir, base_dir=cfg.root)
    except UnknownSource as exc:
        raise JobError(f"task {taskdef.name!r}: {exc}") from None
    return taskdef


def _plain_task(taskdef) -> dict[str, Any]:
    import dataclasses

    return plain(dataclasses.asdict(taskdef))


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
