"""`tanas-tui engine start|stop|status`: the detached engine process of a store."""
from __future__ import annotations

import time
from pathlib import Path

import typer

from tanas_tui.common import ConfigOption, StoreOption
from tanas_tui.errors import CliError, handle_errors
from tanas_tui.exitcodes import ExitCode

engine_app = typer.Typer(help="The engine: the background process that runs jobs and owns the store.",
                         no_args_is_help=True)



def register(app: typer.Typer) -> None:
    app.add_typer(engine_app, name="engine")


def _cfg(config: Path | None, store: Path | None, device: str | None = None):
    from tanas_tui.common import load_cli_config

    return load_cli_config(config, store, {"project.device": device} if device else None, check_classes=False)


def start_failure(exc) -> CliError:
    """An EngineStartFailed as a CLI error with the engine's own exit code (store locked, bad config)."""
    code = {ExitCode.STORE.value: ExitCode.STORE, ExitCode.USAGE.value: ExitCode.USAGE}.get(
        exc.returncode or -1, ExitCode.JOB_FAILED)
    return CliError(f"the engine did not start: {exc}", code)


@engine_app.command("start")
@handle_errors
def start(config: Path = ConfigOption, store: Path = StoreOption,
          device: str = typer.Option(None, "--device", help="auto | cpu | cuda (overrides \\[project] device).")) -> None:
    """Start the store's engine in the background (it outlives this terminal)."""
    from tanas_tui.client import EngineAlreadyRunning, EngineStartFailed, start_engine
    from tanas_tui.common import console

    cfg = _cfg(config, store, device)
    try:
        pid = start_engine(cfg.store_path, Path(cfg.file).resolve() if cfg.file else None, device)
    except EngineAlreadyRunning as exc:
        console.print(f"engine already running, pid {exc.pid} ({cfg.store_path})")
        return
    except EngineStartFailed as exc:
        raise start_failure(exc) from None
    console.print(f"engine started, pid {pid} ({cfg.store_path}; log {cfg.store_path / 'runs' / 'engine.log'})")


@engine_app.command("stop")
@handle_errors
def stop(config: Path = ConfigOption, store: Path = StoreOption,
         timeout: float = typer.Option(60.0, "--timeout", help="Seconds to wait for the running job to stop.")) -> None:
    """Stop the engine: its running job stops at the next safe point and resumes on the next run."""
    from tanas_tui.client import stop_engine
    from tanas_tui.common import console

    cfg = _cfg(config, store)
    pid = stop_engine(cfg.store_path, timeout=timeout)
    if pid is None:
        console.print(f"no engine is running for {cfg.store_path}")
    else:
        console.print(f"engine stopped (pid {pid})")


@engine_app.command("status")
@handle_errors
def status(config: Path = ConfigOption, store: Path = StoreOption) -> None:
    """Is an engine running for the store, and what is it doing?"""
    from tanas_tui.client import EngineClient, EngineError, engine_running
    from tanas_tui.common import console

    cfg = _cfg(config, store)
    pid = engine_running(cfg.store_path)
    if pid is None:
        console.print(f"no engine is running for {cfg.store_path}")
        return
    try:
        with EngineClient(cfg.store_path) as client:
            st = client.status()
    except EngineError as exc:
        raise CliError(f"engine pid {pid} did not answer: {exc}", ExitCode.JOB_FAILED) from None
    up = time.time() - st["started"]
    console.print(f"engine pid {st['pid']}, up {up:.0f} s, store {st['store']}, protocol v{st['protocol']}, "
                  f"{st['clients'] - 1} other client(s), event seq {st['seq']}")
    if st.get("executor"):
        console.print(f"executor {st['executor']}")
    job = st.get("job")
    if job:
        state = "paused" if job.get("paused") else "running"
        console.print(f"job {job['id']} ({job['kind']}) {state} for {time.time() - job['started']:.0f} s")
    else:
        console.print("no job running")
    for queued in st.get("queue", []):
        console.print(f"queued: {queued['id']} ({queued['kind']})")
    idle_exit = st.get("idle_exit")
    if idle_exit is not None:
        console.print(f"idle exit: after {idle_exit:g} min without a job or a following client "
                      f"([engine] idle_exit)"
                      if idle_exit > 0 else "idle exit: never ([engine] idle_exit = 0)")
