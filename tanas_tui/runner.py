"""`run_job(kind, cfg, **params)`: the one way the front end runs a job.

The job is checked here first (`engine.service.jobs.submission`: the same checks the engine makes). With an engine
serving the config's store, the job is submitted there carrying this command's resolved config (file, `TANAS_*`
and flags, as plain data: `Config.snapshot()`), so the engine runs exactly the settings typed here, and followed
through its events; otherwise it runs in this process, in a thread, holding the store's writer lock, and its events
go through the same path. Either way the caller gets the job's `job_done` event and every event goes to `on_event`
(default: the headless renderer). Ctrl-C stops the job at its next safe point (exit 130), and so does SIGTERM
(exit 143: batch schedulers and `timeout` send it first); a second one quits at once.
"""
from __future__ import annotations

import queue
import signal
import threading
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable

from engine.service import protocol as P
from tanas_tui.errors import CliError, Terminated, exit_code_for
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

    `cfg` is the config as this command resolved it (file, environment, its --store / --device overrides): the job
    runs with exactly that, here or in the engine; `device` is the --device flag (already in `cfg`). `announce`:
    what to say when the engine runs the job ("adding the task there")."""
    from engine.service.jobs import submission
    from tanas_tui.client import engine_running
    from tanas_tui.common import console

    job = submission(kind, params, cfg)      # refused here, before any work, if it cannot run
    pid = None if kind in READ_ONLY_JOBS else engine_running(cfg.store_path)
    with renderer(on_event, cfg) as sink, sigterm_as_interrupt():
        if pid is not None:
            return _in_engine(cfg.store_path, kind, sink, pid=pid, announce=announce or "running the job there",
                              config=cfg.snapshot(), **job.params)
        return _in_process(job, cfg, sink)


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

    def __init__(self, on_event: EventSink | None, config: Any = None):
        self.on_event, self.renderer, self.config = on_event, None, config

    def __enter__(self) -> EventSink:
        if self.on_event is not None:
            return self.on_event
        from tanas_tui.common import console
        from tanas_tui.headless import make_renderer

        self.renderer = make_renderer(console, self.config)
        return self.renderer.handle

    def __exit__(self, *exc: Any) -> None:
        if self.renderer is not None:
            self.renderer.close()


def _in_engine(store_path: Path, kind: str, sink: EventSink, pid: int, announce: str,
               **params: Any) -> P.JobDone | None:
    from tanas_tui.client import EngineClient
    from tanas_tui.common import console

    with EngineClient(store_path) as client:
        client.subscribe()
        job = submit(client, kind, **params)
        ahead = jobs_ahead(client.status(), job)
        if ahead:       # not "running it there": until it starts, the engine's events are another job's
            announce = (f"job {job} is queued behind {describe_job(ahead[0])}"
                        + (f" and {len(ahead) - 1} more" if len(ahead) > 1 else "")
                        + "; only this job's own progress is shown")
        console.print(f"an engine (pid {pid}) serves {store_path}: {announce}", highlight=False, soft_wrap=True)
        try:
            return follow(own_events(client.follow_job(job), job), sink)
        except KeyboardInterrupt as exc:
            console.print("stopping the job at its next safe point…")
            try:
                client.request("stop", job=job)
            except Exception:  # noqa: BLE001 - already finished or engine gone: nothing left to stop
                pass
            raise _interrupted(exc, "the engine stops the job at its next safe point") from None


def jobs_ahead(status: dict, job: str) -> list[dict]:
    """The engine's running job and the queued ones before `job`, from its `status` reply ([] if `job` runs)."""
    ahead = [status["job"]] if status.get("job") else []
    for queued in status.get("queue") or []:
        if queued.get("id") == job:
            break
        ahead.append(queued)
    return [j for j in ahead if j.get("id") != job]


def describe_job(job: dict) -> str:
    """'job start_search-1a2b (start_search, search 3/7)' from a job of the engine's `status` reply."""
    progress = job.get("progress") or {}
    where = f", {progress['stage']} {progress.get('done', 0)}/{progress.get('total', '?')}" if progress.get("stage") else ""
    return f"job {job.get('id')} ({job.get('kind')}{where}{', paused' if job.get('paused') else ''})"


def own_events(events: Iterable[P.Event], job: str) -> Iterable[P.Event]:
    """The events of `job` alone: the engine runs one job at a time and broadcasts every job's events, so what
    comes before this job's `job_started` (another job's progress, while this one waits in the queue) is left out;
    from there to its `job_done` every event is this job's (a search's own counters name its run id, not the job)."""
    started = False
    for ev in events:
        if isinstance(ev, P.JobStarted) and ev.job == job:
            started = True
        if started or isinstance(ev, P.Dropped) or getattr(ev, "job", None) == job:
            yield ev


def submit(client, kind: str, **params: Any) -> str:
    """Queues a job in the engine; a job the engine refuses is a CliError: exit 2 for a field or config it finds
    wrong (this side checks the same, so only an engine of another version gets here), else 5."""
    from tanas_tui.client import RequestFailed

    try:
        return client.submit(kind, **params)
    except RequestFailed as exc:
        usage = exc.code in ("bad_field", "missing_field", "extra_field", "unknown_type", "version")
        raise CliError(f"the engine refused the job: {exc.error.message}",
                       ExitCode.USAGE if usage else ExitCode.JOB_FAILED) from None


def _in_process(job, cfg, sink: EventSink) -> P.JobDone | None:
    """Runs the checked job (a `Submission`) in a thread here; the store is held for writing unless it only reads."""
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
    kind = job.kind
    read_only = kind in READ_ONLY_JOBS
    store = open_store(cfg, "r") if read_only else open_store(cfg, "w", create=True)
    for line in getattr(store, "repaired", ()):  # what a killed writer left half-done, finished on opening
        console.print(f"store repaired: {line}")
    ctx = JobContext(store, cfg, None, reporter, f"{kind}-{uuid.uuid4().hex[:8]}")

    def work() -> None:
        try:
            jobs.run(job, ctx)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            outcome["error"] = exc

    thread = threading.Thread(target=work, name=f"tanas-{kind}", daemon=True)
    stopping: KeyboardInterrupt | None = None     # the Ctrl-C or SIGTERM that asked the job to stop

    def stop(exc: KeyboardInterrupt) -> None:
        nonlocal stopping
        if stopping is not None:
            raise exc
        stopping = exc
        reporter.stop()
        again = "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C"
        console.print(f"stopping at the next safe point… ({again} again to quit now)")

    def drain() -> Iterable[P.Event]:
        while True:
            try:
                yield events.get(timeout=0.1)
            except queue.Empty:
                if not thread.is_alive() and events.empty():
                    return
            except KeyboardInterrupt as exc:
                stop(exc)

    try:
        thread.start()
        stream = drain()
        while True:
            try:
                done = follow(stream, sink)
                break
            except KeyboardInterrupt as exc:  # arrived while an event was being shown: the same as in drain()
                stop(exc)
        thread.join()
    finally:
        if not thread.is_alive():
            store.close()
    if "error" in outcome:
        if stopping is not None and type(outcome["error"]).__name__ == "JobStopped":
            raise _interrupted(stopping, STOPPED)
        raise outcome["error"]
    if stopping is not None and done is not None and done.status == "stopped":
        raise _interrupted(stopping, STOPPED)
    return done


STOPPED = "the job stopped at a safe point; what it finished is in the store, the same command goes on from there"


def _interrupted(exc: BaseException, what: str) -> CliError:
    if isinstance(exc, Terminated):
        return CliError(f"terminated (SIGTERM): {what}", ExitCode.TERMINATED)
    return CliError(f"interrupted (Ctrl-C): {what}", ExitCode.INTERRUPTED)


class sigterm_as_interrupt:
    """While a job runs in the main thread, SIGTERM raises `Terminated` (a KeyboardInterrupt) like Ctrl-C does, so
    the job stops at its next safe point and its Ray units are cancelled; the previous handler comes back after."""

    def __enter__(self) -> "sigterm_as_interrupt":
        self.installed = threading.current_thread() is threading.main_thread()
        if self.installed:
            self.previous = signal.signal(signal.SIGTERM, _raise_terminated)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.installed:
            signal.signal(signal.SIGTERM, self.previous if self.previous is not None else signal.SIG_DFL)


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


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
