"""`run_job(kind, cfg, **params)`: the one way the front end runs a job.

With an engine serving the config's store, the job is submitted there (carrying this command's config file and
device) and followed through its events; otherwise it runs in this process, in a thread, holding the store's
writer lock, and its events go through the same path. Either way the caller gets the job's `job_done` event and
every event goes to `on_event` (default: the headless renderer). Ctrl-C stops the job at its next safe point
(exit 130); a second Ctrl-C quits at once.
"""
from __future__ import annotations

import queue
import threading
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable

from engine.service import protocol as P
from tanas_tui.errors import CliError, exit_code_for
from tanas_tui.exitcodes import ExitCode

EventSink = Callable[[P.Event], None]
# Jobs that only read the store: they run here on a read-only store, whether or not an engine runs.
READ_ONLY_JOBS = ("export",)


def config_file(cfg) -> str | None:
    """The config's file as an absolute path (the engine runs in another directory), or None for the defaults."""
    return str(Path(cfg.file).resolve()) if cfg.file else None


def run_job(kind: str, cfg, *, device: str | None = None, on_event: EventSink | None = None,
            announce: str | None = None, **params: Any) -> P.JobDone | None:
    """Runs job `kind` with `params` on `cfg`'s store and returns its `job_done` (None if it never came).

    `cfg` is the config as this command loaded it (with its --store / --device overrides); `device` is the
    --device flag, passed on to an engine. `announce`: what to say when the engine runs the job ("adding the task there")."""
    from tanas_tui.client import engine_running
    from tanas_tui.common import console

    pid = None if kind in READ_ONLY_JOBS else engine_running(cfg.store_path)
    with renderer(on_event) as sink:
        if pid is not None:
            console.print(f"an engine (pid {pid}) serves {cfg.store_path}: {announce or 'running the job there'}",
                          highlight=False)
            return _in_engine(cfg.store_path, kind, sink, config=config_file(cfg), device=device, **params)
        return _in_process(kind, cfg, params, sink)


def job_result(done: P.JobDone | None) -> Any:
    """The result of a finished job, or the CliError (with its exit code) that its failure maps to."""
    if done is None:
        raise CliError("the job ended without reporting a result", ExitCode.JOB_FAILED)
    if done.status != "ok":
        raise _job_failure(done)
    return done.result


def follow(events: Iterable[P.Event], sink: EventSink) -> P.JobDone | None:
    """Hands events to `sink` until the job's `job_done`, which it returns."""
    for ev in events:
        sink(ev)
        if isinstance(ev, P.JobDone):
            return ev
        if isinstance(ev, P.Dropped):
            raise CliError("the engine dropped this client (it fell behind); run `tanas-tui attach` again",
                           ExitCode.JOB_FAILED)
    return None


class renderer:
    """The headless renderer as a context manager (closed when the job ends), or the caller's sink."""

    def __init__(self, on_event: EventSink | None):
        self.on_event, self.renderer = on_event, None

    def __enter__(self) -> EventSink:
        if self.on_event is not None:
            return self.on_event
        from tanas_tui.common import console
        from tanas_tui.headless import make_renderer

        self.renderer = make_renderer(console)
        return self.renderer.handle

    def __exit__(self, *exc: Any) -> None:
        if self.renderer is not None:
            self.renderer.close()


def _in_engine(store_path: Path, kind: str, sink: EventSink, **params: Any) -> P.JobDone | None:
    from tanas_tui.client import EngineClient
    from tanas_tui.common import console

    with EngineClient(store_path) as client:
        client.subscribe()
        job = client.submit(kind, **params)
        try:
            return follow(client.follow_job(job), sink)
        except KeyboardInterrupt:
            console.print("stopping the job at its next safe point…")
            try:
                client.request("stop", job=job)
            except Exception:  # noqa: BLE001 - already finished or engine gone: nothing left to stop
                pass
            raise CliError("interrupted", ExitCode.INTERRUPTED) from None


def _in_process(kind: str, cfg, params: dict[str, Any], sink: EventSink) -> P.JobDone | None:
    """Runs the job in a thread here; the store is held for writing unless the job only reads."""
    from engine.runtime.reporting import Reporter
    from engine.service import jobs
    from engine.service.context import JobContext
    from tanas_tui.common import console, open_store

    events: queue.Queue[P.Event] = queue.Queue()
    counter = iter(range(1, 1 << 62))
    lock = threading.Lock()

    def emit(name: str, data: dict[str, Any]) -> None:
        with lock:
            seq = next(counter)
        try:
            events.put(P.make_event(name, seq, data))
        except P.ProtocolError as exc:
            events.put(P.Log(seq=seq, level="error", message=f"invalid {name!r} event: {exc.message}"))

    reporter = Reporter(emit)
    outcome: dict[str, BaseException] = {}
    read_only = kind in READ_ONLY_JOBS
    store = open_store(cfg, "r") if read_only else open_store(cfg, "w", create=True)
    for line in getattr(store, "repaired", ()):  # what a killed writer left half-done, finished on opening
        console.print(f"store repaired: {line}")
    ctx = JobContext(store, cfg, None, reporter, f"{kind}-{uuid.uuid4().hex[:8]}")

    def work() -> None:
        try:
            if not read_only:
                store.set_config_snapshot(cfg.snapshot())
            jobs.execute(kind, params, ctx)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            outcome["error"] = exc

    thread = threading.Thread(target=work, name=f"tanas-{kind}", daemon=True)
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
        stream = drain()
        while True:
            try:
                done = follow(stream, sink)
                break
            except KeyboardInterrupt:  # arrived while an event was being shown: the same as in drain()
                if stopping:
                    raise
                stopping = True
                reporter.stop()
                console.print("stopping at the next safe point… (Ctrl-C again to quit now)")
        thread.join()
    finally:
        if not thread.is_alive():
            store.close()
    if "error" in outcome:
        if stopping and type(outcome["error"]).__name__ == "JobStopped":
            raise CliError(INTERRUPTED_MESSAGE, ExitCode.INTERRUPTED)
        raise outcome["error"]
    if stopping and done is not None and done.status == "stopped":
        raise CliError(INTERRUPTED_MESSAGE, ExitCode.INTERRUPTED)
    return done


INTERRUPTED_MESSAGE = ("interrupted (Ctrl-C): the job stopped at a safe point; what it finished is in the store, "
                       "the same command goes on from there")


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
