"""`tanas-tui run [CONFIG]`: the whole pipeline, headless; `tanas-tui attach`: follow the engine's running job.

`run` goes through the store's engine when one is running (following its events), and otherwise runs the job in
this process while holding the store's writer lock; either way with the config resolved here (file, `TANAS_*`,
flags). Ctrl-C stops the job at its next safe point (exit 130), SIGTERM too (exit 143); a second one quits at once.
`--detach` hands the job to the engine (started if needed) and returns; `--dry-run` checks everything and runs nothing.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from engine.service import protocol as P
from engine.service.jobs import PIPELINE_STAGES as P_STAGES
from tanas_tui import units
from tanas_tui.common import ConfigOption, StoreOption
from tanas_tui.errors import CliError, handle_errors
from tanas_tui.exitcodes import ExitCode
from tanas_tui.runner import config_file, follow, job_result, renderer, run_job, submit


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("attach")(attach)


@handle_errors
def run(
    config: Path = typer.Argument(None, help="Config file (default: ./tanas.toml, or $TANAS_CONFIG)."),
    detach: bool = typer.Option(False, "--detach", "-d", help="Run it in the engine (started if needed) and return."),
    device: str = typer.Option(None, "--device", help="auto | cpu | cuda (overrides \\[project] device)."),
    executor: str = typer.Option(None, "--executor", help="local | ray: where units of work run (overrides "
                                 "\\[executor] kind)."),
    address: str = typer.Option(None, "--address", help="Ray cluster: auto, host:6379 or ray://host:10001 "
                                "(overrides \\[executor] address)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check the config (file, TANAS_* and flags) and the job, "
                                 "say what would run, and stop: no store, no engine, no training."),
    seed: int = typer.Option(None, "--seed", help="The target search's seed and the comparison's first (default: "
                             "\\[project] seed, which still seeds the dictionary's probes); part of the run ids, so "
                             "changed \\[search] settings can run beside the stored runs."),
    run_id: str = typer.Option(None, "--run-id", help="The target search's run id (default: TARGET-SPACE-SEED); "
                               "an existing one resumes that run."),
    store: Path = StoreOption,
) -> None:
    """Build or update the dictionary, search the target's task-aware space with FUSE, print the result table."""
    from tanas_tui.common import config_path, console, load_cli_config

    if config_path(config) is None:
        raise CliError(f"no tanas.toml in {Path.cwd()}: `tanas-tui init` writes a commented one to start from "
                       f"(or pass a config file, or set TANAS_CONFIG)", ExitCode.USAGE)
    overrides = {"project.device": device} if device else {}
    if executor:
        overrides["executor.kind"] = executor
    if address is not None:
        overrides["executor.address"] = address
    cfg = load_cli_config(config, store, overrides or None)
    from engine.service.jobs import submission

    params = {k: v for k, v in (("seed", seed), ("run_id", run_id)) if v is not None}
    submission("run_pipeline", params, cfg)   # nothing to build, or a job that cannot run: exit 2 before any work
    if dry_run:
        _describe_plan(cfg, console, seed, run_id)
        return
    if detach:
        detach_job(cfg, "run_pipeline", params, device, what="run")
        return
    t0 = time.perf_counter()
    done = run_job("run_pipeline", cfg, device=device, **params)
    _finish(done, time.perf_counter() - t0)


def _describe_plan(cfg, console, seed: int | None = None, run_id: str | None = None) -> None:
    """`run --dry-run`: what the checked config would run."""
    target = cfg.target.name if cfg.target else None
    stages = list(P_STAGES[:3]) + (list(P_STAGES[3:6]) + (["comparison"] if cfg.search.compare else [])
                                   if target else [])
    console.print(f"config {cfg.file or '(built-in defaults)'}: ok", highlight=False)
    console.print(f"  store {cfg.store_path}; device {cfg.project.device}; executor {cfg.executor.kind}", highlight=False)
    console.print(f"  dictionary: {len(cfg.tasks)} base task(s); target: {target or 'none'}", highlight=False)
    if target:
        console.print(f"  search: {cfg.space.kind} space, {cfg.search.rounds} round(s) of {cfg.search.candidates} "
                      f"candidates, seed {cfg.project.seed if seed is None else seed}"
                      + (f", run id {run_id}" if run_id else "") + (f", comparison of {', '.join(cfg.search.arms)} x "
                                                                 f"{cfg.search.repeats}" if cfg.search.compare else ""),
                      highlight=False)
    console.print(f"  stages: {', '.join(stages)} (nothing was run: --dry-run)", highlight=False)


def detach_job(cfg, kind: str, params: dict[str, Any], device: str | None, what: str) -> None:
    """`--detach`: hands the job to the store's engine (started if needed) with this command's resolved config and
    returns; the same job already running or queued there is named instead of queued twice."""
    from engine.config import config_summary
    from tanas_tui.client import EngineClient, EngineStartFailed, engine_running, start_engine
    from tanas_tui.commands.engine import start_failure
    from tanas_tui.common import console

    pid = engine_running(cfg.store_path)
    if pid is None:
        try:
            pid = start_engine(cfg.store_path, config_file(cfg), device)
        except EngineStartFailed as exc:
            raise start_failure(exc) from None
    params = {**params, "config": cfg.snapshot()}
    with EngineClient(cfg.store_path) as client:
        same = same_job(client.status(), kind, {**params, "config": config_summary(params["config"])})
        if same is not None:
            console.print(f"the same {what} is already {same['state']} in the engine (pid {pid}) as job "
                          f"{same['id']}; follow it with `tanas-tui attach`, cancel it with "
                          f"`tanas-tui engine cancel {same['id']}`", soft_wrap=True)
            return
        job = submit(client, kind, **params)
    console.print(f"job {job} queued in the engine (pid {pid}) for {cfg.store_path}; "
                  "follow it with `tanas-tui attach`, stop it with `tanas-tui engine stop`", soft_wrap=True)


def same_job(status: dict, kind: str, params: dict) -> dict | None:
    """The engine's running or queued job of `kind` with the same parameters, if any (from its `status` reply)."""
    wanted = {k: v for k, v in params.items() if v is not None}
    jobs = ([status["job"]] if status.get("job") else []) + list(status.get("queue") or [])
    for job in jobs:
        have = {k: v for k, v in (job.get("params") or {}).items() if v is not None}
        if job.get("kind") == kind and have == wanted:
            return job
    return None


@handle_errors
def attach(
    config: Path = ConfigOption,
    store: Path = StoreOption,
) -> None:
    """Print what the store holds so far, then follow the running job live until it ends: the engine's (its
    events), or a headless `tanas-tui run` holding the store (its records). Ctrl-C detaches; the job goes on."""
    from tanas_tui.client import EngineClient, engine_running
    from tanas_tui.common import console, load_cli_config
    from tanas_tui.store_follow import follow_store, history_lines, read_view, store_writer

    cfg = load_cli_config(config, store, check_classes=False)
    engine = engine_running(cfg.store_path)
    writer = store_writer(cfg.store_path) if engine is None else None
    if engine is None and writer is None:     # not an error: there is nothing to wait for (exit 0, as an idle engine)
        console.print(f"nothing is running on {cfg.store_path}: no engine and no headless run holds it (start a "
                      f"job with `tanas-tui run --detach` or `tanas-tui search TARGET --detach`)", highlight=False,
                      soft_wrap=True)
        return
    t0 = time.perf_counter()
    view = read_view(cfg.store_path) if cfg.store_path.exists() else None
    if view is not None:
        console.print(f"so far in {cfg.store_path}:", highlight=False)
        for line in history_lines(view):
            console.print("  " + line, markup=False, highlight=False)
    if writer is not None:
        console.print(f"following a headless run (pid {writer}, no engine) through the store; it ends when the run "
                      f"lets go of the store", highlight=False)
        try:
            follow_store(cfg.store_path, writer, lambda line: console.print(line, markup=False, highlight=False),
                         view=view)
        except KeyboardInterrupt:
            console.print("detached; the run goes on")
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
        console.print(f"the run (pid {writer}) let go of the store after {time.perf_counter() - t0:.1f} s")
        return
    with EngineClient(cfg.store_path) as client:
        client.subscribe()
        status = client.status()
        job = status["job"] or (status["queue"][0] if status["queue"] else None)
        if job is None:
            console.print(f"the engine (pid {status['pid']}) is idle: no job to follow")
            return
        progress = job.get("progress") or {}
        if progress.get("stage") in P_STAGES:
            stage = f", stage {progress.get('done', 0) + 1}/{progress.get('total')}: {progress['stage']}"
        else:
            stage = f", {progress['stage']} {progress.get('done')}/{progress.get('total')}" if progress.get("stage") else ""
        paused = ", paused" if job.get("paused") else ""
        console.print(f"attached to job {job['id']} ({job['kind']}{stage}{paused}) in engine pid {status['pid']}",
                      highlight=False)
        try:
            with renderer(None, cfg) as sink:
                done = follow(client.follow_job(job["id"]), sink)
        except KeyboardInterrupt:
            console.print("detached; the job keeps running in the engine")
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    _finish(done, time.perf_counter() - t0)


# --------------------------------------------------------------------------- the closing report


def _finish(done: P.JobDone | None, wall: float) -> None:
    from tanas_tui.common import console

    result = job_result(done)
    if done.kind == "run_pipeline" and isinstance(result, dict):
        print_pipeline_result(result, console)
    console.print(f"wall time {wall:.1f} s")


def print_pipeline_result(result: dict[str, Any], console) -> None:
    """The nearest tasks of the target, the result table and the split of the time by stage."""
    from store.records import table_row
    from tanas_tui.tables import comparison_table, result_table, wide_console

    nearest = result.get("nearest") or []
    if nearest:
        table = Table(title=f"Nearest tasks of {result.get('target')} ({result.get('method')} distance)")
        table.add_column("#", justify="right")
        table.add_column("Task", no_wrap=True)
        table.add_column("Distance", justify="right")
        for i, row in enumerate(nearest, 1):
            table.add_row(str(i), str(row.get("name", row.get("task_id"))), units.distance(row.get("distance")))
        console.print(table)
    rows = result.get("comparison")
    if isinstance(result.get("table"), dict):
        table = result["table"]
        wide_console(console).print(result_table(table, title=f"Result: {result.get('target')}"))
        prov = table.get("provenance") or {}
        console.print(f"config hash {prov.get('config_hash')}, seeds {prov.get('seeds')}; export with "
                      f"`tanas-tui searches compare --markdown`", soft_wrap=True)
    else:
        if not rows and isinstance(result.get("search"), dict):
            rows = [table_row(f"FUSE, {result.get('space')} space", result["search"])]
        if rows:
            console.print(comparison_table(rows, title=f"Result: {result.get('target')}"))
    timings = result.get("timings") or {}
    if timings:
        console.print("time by stage: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()), soft_wrap=True)
