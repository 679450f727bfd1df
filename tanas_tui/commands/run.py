"""`tanas-tui run [CONFIG]`: the whole pipeline, headless; `tanas-tui attach`: follow the engine's running job.

`run` goes through the store's engine when one is running (following its events), and otherwise runs the job in
this process while holding the store's writer lock. Ctrl-C stops the job at its next safe point (exit 130); a
second Ctrl-C quits at once. `--detach` hands the job to the engine (started if needed) and returns.
"""
from __future__ import annotations

import queue
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterable

import typer
from rich.table import Table

from engine.service import protocol as P
from tanas_tui.errors import CliError, exit_code_for, handle_errors
from tanas_tui.exitcodes import ExitCode


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("attach")(attach)


@handle_errors
def run(
    config: Path = typer.Argument(None, help="Config file (default: ./tanas.toml, or $TANAS_CONFIG)."),
    detach: bool = typer.Option(False, "--detach", "-d", help="Run it in the engine (started if needed) and return."),
    device: str = typer.Option(None, "--device", help="auto | cpu | cuda (overrides \\[project] device)."),
    store: Path = typer.Option(None, "--store", help="Store directory (overrides \\[project] store)."),
) -> None:
    """Build or update the dictionary, search the target's task-aware space with FUSE, print the result table."""
    from tanas_tui.client import EngineClient, engine_running, start_engine
    from tanas_tui.common import console, load_cli_config

    overrides = {"project.device": device} if device else None
    cfg = load_cli_config(config, store, overrides)
    config_file = str(Path(cfg.file).resolve()) if cfg.file else None
    pid = engine_running(cfg.store_path)
    if detach:
        if pid is None:
            from tanas_tui.client import EngineStartFailed
            from tanas_tui.commands.engine import start_failure

            try:
                pid = start_engine(cfg.store_path, config_file, device)
            except EngineStartFailed as exc:
                raise start_failure(exc) from None
        with EngineClient(cfg.store_path) as client:
            job = client.submit("run_pipeline", config=config_file, device=device)
        console.print(f"job {job} queued in the engine (pid {pid}) for {cfg.store_path}; "
                      "follow it with `tanas-tui attach`, stop it with `tanas-tui engine stop`")
        return
    t0 = time.perf_counter()
    if pid is not None:
        console.print(f"an engine (pid {pid}) serves {cfg.store_path}: running the job there", highlight=False)
        done = run_job_in_engine(cfg.store_path, "run_pipeline", config=config_file, device=device)
    else:
        done = _run_in_process(cfg)
    _finish(done, time.perf_counter() - t0)


@handle_errors
def attach(
    config: Path = typer.Option(None, "--config", "-c", help="Config file (default: ./tanas.toml, or $TANAS_CONFIG)."),
    store: Path = typer.Option(None, "--store", help="Store directory (overrides \\[project] store)."),
) -> None:
    """Follow the engine's running (or next queued) job until it ends; Ctrl-C detaches, the job goes on."""
    from tanas_tui.client import EngineClient, engine_running
    from tanas_tui.common import console, load_cli_config

    cfg = load_cli_config(config, store, check_classes=False)
    if engine_running(cfg.store_path) is None:
        raise CliError(f"no engine is running for {cfg.store_path} (start one with `tanas-tui run --detach`)",
                       ExitCode.NOT_FOUND)
    t0 = time.perf_counter()
    with EngineClient(cfg.store_path) as client:
        client.subscribe()
        status = client.status()
        job = status["job"] or (status["queue"][0] if status["queue"] else None)
        if job is None:
            console.print(f"the engine (pid {status['pid']}) is idle: no job to follow")
            return
        console.print(f"attached to job {job['id']} ({job['kind']}) in engine pid {status['pid']}")
        try:
            done = _render(client.follow_job(job["id"]))
        except KeyboardInterrupt:
            console.print("detached; the job keeps running in the engine")
            raise CliError("detached", ExitCode.INTERRUPTED) from None
    _finish(done, time.perf_counter() - t0)


# --------------------------------------------------------------------------- the two ways to run


def _render(events: Iterable[P.Event]) -> P.JobDone | None:
    from tanas_tui.common import console
    from tanas_tui.headless import make_renderer

    renderer = make_renderer(console)
    try:
        for ev in events:
            renderer.handle(ev)
            if isinstance(ev, P.JobDone):
                return ev
            if isinstance(ev, P.Dropped):
                raise CliError("the engine dropped this client (it fell behind); run `tanas-tui attach` again",
                               ExitCode.JOB_FAILED)
        return None
    finally:
        renderer.close()


def run_job_in_engine(store_path: Path, kind: str, **params: Any) -> P.JobDone | None:
    """Submits a job to the engine serving `store_path` and follows it to its end with the headless renderer;
    Ctrl-C asks the engine to stop the job at its next safe point."""
    from tanas_tui.client import EngineClient
    from tanas_tui.common import console

    with EngineClient(store_path) as client:
        client.subscribe()
        job = client.submit(kind, **params)
        try:
            return _render(client.follow_job(job))
        except KeyboardInterrupt:
            console.print("stopping the job at its next safe point…")
            try:
                client.request("stop", job=job)
            except Exception:  # noqa: BLE001 - already finished or engine gone: nothing left to stop
                pass
            raise CliError("interrupted", ExitCode.INTERRUPTED) from None


def job_result(done: P.JobDone | None) -> Any:
    """The result of a finished job, or the CliError (with its exit code) that its failure maps to."""
    if done is None:
        raise CliError("the job ended without reporting a result", ExitCode.JOB_FAILED)
    if done.status != "ok":
        raise _job_failure(done)
    return done.result


def _run_in_process(cfg) -> P.JobDone | None:
    """Runs the pipeline here, holding the writer lock; events go through the same renderer as the engine's."""
    from engine.service import jobs
    from engine.runtime.reporting import Reporter
    from tanas_tui.common import console, open_store

    events: queue.Queue[P.Event] = queue.Queue()
    counter = iter(range(1, 1 << 62))
    lock = threading.Lock()

    def sink(name: str, data: dict[str, Any]) -> None:
        with lock:
            seq = next(counter)
        try:
            events.put(P.make_event(name, seq, data))
        except P.ProtocolError as exc:
            events.put(P.Log(seq=seq, level="error", message=f"invalid {name!r} event: {exc.message}"))

    reporter = Reporter(sink)
    outcome: dict[str, BaseException] = {}
    job_id = f"run_pipeline-{uuid.uuid4().hex[:8]}"
    store = open_store(cfg, "w", create=True)

    def work() -> None:
        try:
            store.set_config_snapshot(cfg.snapshot())
            jobs.execute("run_pipeline", {}, store=store, reporter=reporter, job_id=job_id, cfg=cfg)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            outcome["error"] = exc

    thread = threading.Thread(target=work, name="tanas-run", daemon=True)
    stopping = False

    def drain() -> Iterable[P.Event]:
        nonlocal stopping
        while True:
            try:
                yield events.get(timeout=0.1)
            except queue.Empty:
                if not thread.is_alive() and events.empty():
                    return
            except KeyboardInterrupt:
                if stopping:
                    raise
                stopping = True
                reporter.stop()
                console.print("stopping at the next safe point… (Ctrl-C again to quit now)")

    try:
        thread.start()
        done = _render(drain())
        thread.join()
    finally:
        if not thread.is_alive():
            store.close()
    if "error" in outcome:
        raise outcome["error"]
    return done


# --------------------------------------------------------------------------- the closing report


def _job_failure(done: P.JobDone) -> CliError:
    kinds = list(done.error_types) or ["Exception"]
    cls: type[BaseException] = Exception
    for name in reversed([k for k in kinds if k not in ("object", "BaseException", "Exception")]):
        cls = type(name, (cls,), {})
    code = exit_code_for(cls(done.message)) if done.status == "failed" else ExitCode.INTERRUPTED
    message = done.message or f"job {done.status}"
    if code == ExitCode.JOB_FAILED and done.error_types:
        message = f"{done.error_types[0]}: {message}"
    return CliError(message, code)


def _finish(done: P.JobDone | None, wall: float) -> None:
    from tanas_tui.common import console

    result = job_result(done)
    if done.kind == "run_pipeline" and isinstance(result, dict):
        print_pipeline_result(result, console)
    console.print(f"wall time {wall:.1f} s")


def print_pipeline_result(result: dict[str, Any], console) -> None:
    """The nearest tasks of the target, the result table and the split of the time by stage."""
    from engine.search.baselines import comparison_table, table_row

    nearest = result.get("nearest") or []
    if nearest:
        table = Table(title=f"Nearest tasks of {result.get('target')} ({result.get('method')} distance)")
        table.add_column("#", justify="right")
        table.add_column("Task")
        table.add_column("Distance", justify="right")
        for i, row in enumerate(nearest, 1):
            dist = row.get("distance")
            table.add_row(str(i), str(row.get("name", row.get("task_id"))),
                          f"{dist:.4f}" if isinstance(dist, (int, float)) else "–")
        console.print(table)
    rows = result.get("comparison")
    if not rows and isinstance(result.get("search"), dict):
        rows = [table_row(f"FUSE, {result.get('space')} space", result["search"])]
    if rows:
        console.print(comparison_table(rows, title=f"Result: {result.get('target')}"))
    timings = result.get("timings") or {}
    if timings:
        console.print("time by stage: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()), soft_wrap=True)
