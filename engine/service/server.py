"""The engine process: one per store, the store's only writer, serving clients over a Unix socket.

Threads: the asyncio event loop (main thread) accepts connections, parses commands and writes events; one worker
thread runs the queued jobs one at a time. The worker's Reporter sink numbers each event and hands it to the loop
with `call_soon_threadsafe`, so training never waits on a client: every client has a bounded queue (events and
replies alike), and a client that falls `client_queue` messages behind is sent `dropped` and disconnected (one
that overran with replies to its own commands is cut off if it has not read that within `DROP_GRACE_S`). A connection's reader yields to the loop every
`LINES_PER_TURN` lines, so a client flooding commands cannot starve the others.

A job command is checked in full when it arrives (`engine.service.jobs.submission`: every field, and the config it
carries, resolved under the config's rules): a bad one gets an error reply and is never queued. A job that carries
no config runs with the engine's own, resolved once when the engine started; the engine never re-reads a config file
or its environment for a job.

Files in the store's run directory (engine/service/runfiles.py), all mode 0600: engine.pid, engine.sock, engine.log
(rotated at `LOG_MAX_BYTES`, `LOG_BACKUPS` old files kept), engine.seq. SIGTERM, SIGINT and SIGHUP stop the running
job at its next safe point (its Ray units cancelled), drop the queue and exit with 128 + the signal's number (143 for
SIGTERM).
"""
from __future__ import annotations

import asyncio
import collections
import logging
import os
import queue
import signal
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.service import protocol as P
from engine.service.runfiles import PrivateRotatingLog, SeqCounter, SocketPath, run_paths, write_private
from engine.runtime.reporting import JobStopped, Reporter

log = logging.getLogger("engine")

DEFAULT_CLIENT_QUEUE = 10_000
LINES_PER_TURN = 32        # commands read from one connection before the loop serves the others
LISTEN_BACKLOG = 4096      # pending connections (the kernel caps it at net.core.somaxconn); asyncio's default is 100
DROP_GRACE_S = 2.0         # a dropped client that does not read its `dropped` within this is cut off
EXIT_STORE = 4             # = tanas_tui.exitcodes.ExitCode.STORE (engine does not import tanas_tui)
EXIT_USAGE = 2
LOGGED_PARAMS = 300        # characters of a job's parameters in its log line


def _pipeline_stages() -> tuple[str, ...]:
    from engine.service.jobs import PIPELINE_STAGES

    return PIPELINE_STAGES + ("done",)


@dataclass
class Job:
    id: str
    submission: Any            # engine.service.jobs.Submission: the checked job, its config resolved
    reporter: Reporter
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    state: str = "queued"  # queued | running | done
    progress: dict[str, Any] = field(default_factory=dict)   # its latest job_progress: a client attaching later sees the stage

    @property
    def kind(self) -> str:
        return self.submission.kind

    @property
    def params(self) -> dict[str, Any]:
        """As listings show them: the config a job carries is named by its file and digest."""
        return self.submission.shown

    def info(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "params": self.params, "state": self.state,
                "paused": self.reporter.paused, "submitted": self.submitted, "started": self.started,
                "progress": dict(self.progress)}


class _Conn:
    """One client connection: its bounded outgoing queue and its writer task."""

    def __init__(self, server: "EngineServer", reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.server, self.reader, self.writer = server, reader, writer
        self.queue: collections.deque[tuple[bytes, int]] = collections.deque()
        self.wake = asyncio.Event()
        self.subscribed = False
        self.closing = False
        self.last_seq = 0      # last broadcast seq queued for this client
        self.sent_seq = 0      # last broadcast seq handed to the transport
        self.name = f"client-{uuid.uuid4().hex[:6]}"

    def offer(self, data: bytes, seq: int = 0) -> None:
        if self.closing:
            return
        if len(self.queue) >= self.server.client_queue:
            self.queue.clear()
            self.queue.append((P.encode(P.Dropped(last_seq=self.sent_seq, limit=self.server.client_queue)), 0))
            self.closing = True
            log.warning("%s fell %d messages behind; dropped", self.name, self.server.client_queue)
            if not seq:  # overrun by replies: it sends commands and reads nothing back; cut it off after a grace
                asyncio.get_running_loop().call_later(DROP_GRACE_S, self.abort)
        else:
            self.queue.append((data, seq))
            if seq:
                self.last_seq = seq
        self.wake.set()

    def abort(self) -> None:
        if not self.writer.transport.is_closing():
            self.writer.transport.abort()

    async def write_loop(self) -> None:
        try:
            while True:
                await self.wake.wait()
                self.wake.clear()
                while self.queue:
                    data, seq = self.queue.popleft()
                    self.writer.write(data)
                    if seq:
                        self.sent_seq = seq
                    await self.writer.drain()
                if self.closing:
                    break
        except (ConnectionError, OSError):
            pass
        finally:
            self.closing = True
            try:
                self.writer.close()
                await asyncio.wait_for(self.writer.wait_closed(), 2)
            except (ConnectionError, OSError, asyncio.TimeoutError):
                self.writer.transport.abort()

    async def read_lines(self):
        """Yields complete lines; a line over MAX_MESSAGE_BYTES yields None once and is skipped up to its newline."""
        buf = bytearray()
        skipping = False
        lines = 0
        while not self.closing:
            chunk = await self.reader.read(65536)
            if not chunk:
                return
            while chunk and not self.closing:
                if lines >= LINES_PER_TURN:  # reading from a full buffer never suspends: let the others run
                    lines = 0
                    await asyncio.sleep(0)
                lines += 1
                nl = chunk.find(b"\n")
                part, chunk = (chunk, b"") if nl < 0 else (chunk[:nl], chunk[nl + 1:])
                if skipping:
                    skipping = nl < 0
                    continue
                buf += part
                if len(buf) > P.MAX_MESSAGE_BYTES:
                    buf.clear()
                    skipping = nl < 0
                    yield None
                elif nl >= 0:
                    line, buf = bytes(buf), bytearray()
                    if line.strip():
                        yield line


class EngineServer:
    def __init__(self, store_path: Path, config: Any = None, client_queue: int = DEFAULT_CLIENT_QUEUE,
                 idle_exit: float = 0.0):
        """`config`: the engine's own `engine.config.Config`, resolved once by the caller (its file, the environment
        the engine was started with, its --device), for jobs that carry none and for status lines."""
        self.store_path = Path(store_path).resolve()
        self.config = config
        self.client_queue = client_queue
        self._device_label: str | None = None
        self.idle_exit = idle_exit          # minutes without a job or a following client before exiting; 0 = never
        self.idle_since = time.monotonic()  # when the engine last became idle
        self.paths = run_paths(self.store_path)
        self.store: Any = None
        self.seq: SeqCounter | None = None
        self.broadcast_seq = 0
        self.conns: set[_Conn] = set()
        self.jobs: queue.Queue[Job | None] = queue.Queue()
        self.pending: list[Job] = []
        self.current: Job | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.started = time.time()
        # which engine this is: a client following a job notices a restarted engine (it never finishes that job)
        self.instance = uuid.uuid4().hex
        self._seq_lock = threading.Lock()
        self._jobs_lock = threading.Lock()
        self._shutdown: asyncio.Event | None = None
        self._worker: threading.Thread | None = None
        self.signal = 0    # the signal that stopped the engine, if one did

    # ------------------------------------------------------------------ lifecycle

    def open(self) -> None:
        """Takes the store's writer lock (StoreLocked when another process has it), then claims the run files."""
        from store import Store

        self.store = Store.open(self.store_path, "w", create=True)
        self.paths["run_dir"].mkdir(parents=True, exist_ok=True)
        _setup_logging(self.paths["log"])
        self.seq = SeqCounter(self.paths["seq"])
        self.broadcast_seq = self.seq.value
        write_private(self.paths["pid"], f"{os.getpid()}\n")
        log.info("engine pid %d serving %s (config %s)", os.getpid(), self.store_path, self._config_file())
        for line in self.store.repaired:  # what a writer killed earlier left half-done, finished on opening
            log.warning("store repaired: %s", line)

    def serve(self) -> int:
        """Serves until a shutdown command (exit 0) or a signal (128 + its number)."""
        try:
            asyncio.run(self._serve())
        finally:
            self.close()
        return 128 + self.signal if self.signal else 0

    def close(self) -> None:
        for key in ("sock", "pid"):
            try:
                if key != "pid" or _read_int(self.paths["pid"]) == os.getpid():
                    self.paths[key].unlink()
            except FileNotFoundError:
                pass
        if self.seq is not None:
            self.seq.close()
        if self.store is not None:
            self.store.close()
            self.store = None
        log.info("engine stopped")

    async def _serve(self) -> int:
        self.loop = asyncio.get_running_loop()
        self._shutdown = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            self.loop.add_signal_handler(sig, self._on_signal, sig)
        sock_path = self.paths["sock"]
        sock_path.unlink(missing_ok=True)
        old_umask = os.umask(0o177)
        try:
            with SocketPath(sock_path) as address:
                server = await asyncio.start_unix_server(self._on_connect, path=address, limit=P.MAX_MESSAGE_BYTES + 2,
                                                         backlog=LISTEN_BACKLOG)
        finally:
            os.umask(old_umask)
        os.chmod(sock_path, 0o600)
        self._worker = threading.Thread(target=self._work, name="engine-jobs", daemon=True)
        self._worker.start()
        log.info("listening on %s", sock_path)
        if self.idle_exit > 0:
            watch = asyncio.create_task(self._exit_when_idle())  # noqa: F841 - ends with the loop
        async with server:
            await self._shutdown.wait()
            log.info("shutting down")
            server.close()
            self._cancel_all("engine shutting down")
            self.jobs.put(None)
            await self.loop.run_in_executor(None, self._worker.join)
            for conn in list(self.conns):
                conn.closing = True
                conn.wake.set()
            await asyncio.sleep(0.05)
        return 0

    def _busy(self) -> bool:
        """A job to run, or a client following events (a window, an attach); a status or probe connection is not."""
        return any(c.subscribed for c in self.conns) or self.current is not None or bool(self.pending)

    async def _exit_when_idle(self) -> None:
        assert self._shutdown is not None
        limit = self.idle_exit * 60
        while not self._shutdown.is_set():
            await asyncio.sleep(min(5.0, max(0.05, limit / 10)))
            if self._busy():
                self.idle_since = time.monotonic()
            elif time.monotonic() - self.idle_since >= limit:
                log.info("idle for %.4g minutes (no job, no client): exiting ([engine] idle_exit)", self.idle_exit)
                self._shutdown.set()

    def _on_signal(self, sig: int) -> None:
        log.info("received %s: stopping the running job at its next safe point, then exiting",
                 signal.Signals(sig).name)
        assert self._shutdown is not None
        self.signal = self.signal or sig
        self._shutdown.set()

    # ------------------------------------------------------------------ events

    def sink(self, name: str, data: dict[str, Any]) -> None:
        """The Reporter sink (any thread): number the event and hand it to the loop; never blocks on clients."""
        assert self.seq is not None and self.loop is not None
        with self._seq_lock:
            seq = self.seq.next()
            job = self.current
            # the pipeline's stage (not its sub-stages' counters), or any other job's progress
            if name == "job_progress" and job is not None and data.get("job") == job.id and \
                    (job.kind != "run_pipeline" or data.get("stage") in _pipeline_stages()):
                job.progress = {k: data.get(k) for k in ("stage", "done", "total")}
            try:
                event = P.make_event(name, seq, data)
            except P.ProtocolError as exc:
                log.error("job emitted an invalid %r event: %s", name, exc)
                event = P.Log(seq=seq, level="error", message=f"invalid {name!r} event from the job: {exc.message}")
            try:
                self.loop.call_soon_threadsafe(self._broadcast, event)
            except RuntimeError:  # loop closed during shutdown
                pass

    def _broadcast(self, event: P.Event) -> None:
        try:
            data = P.encode(event)
        except P.ProtocolError as exc:
            data = P.encode(P.Log(seq=event.seq, level="error", message=f"{event.TYPE} event not sent: {exc.message}"))
        self.broadcast_seq = event.seq
        for conn in list(self.conns):
            if conn.subscribed:
                conn.offer(data, event.seq)

    def _direct(self, conn: _Conn, msg: P.Event) -> None:
        try:
            data = P.encode(msg)
        except P.ProtocolError as exc:  # a reply too large to send: say so, under the request's id
            data = P.encode(P.Error(message=exc.message[:500], code=exc.code, id=msg.rid))
        conn.offer(data)

    # ------------------------------------------------------------------ connections

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Conn(self, reader, writer)
        self.conns.add(conn)
        log.debug("%s connected (%d clients)", conn.name, len(self.conns))
        writer_task = asyncio.create_task(conn.write_loop())
        try:
            async for line in conn.read_lines():
                if conn.closing:
                    break
                if line is None:
                    self._direct(conn, P.Error(code="oversized", message=f"message exceeds {P.MAX_MESSAGE_BYTES} bytes"))
                    continue
                try:
                    cmd = P.decode_command(line)
                except P.ProtocolError as exc:
                    self._direct(conn, P.Error(code=exc.code, message=exc.message[:1000], id=exc.request_id))
                    continue
                except Exception as exc:  # noqa: BLE001 - a line the decoder did not foresee still gets an answer
                    log.error("undecodable line: %s: %.200s", type(exc).__name__, exc)
                    self._direct(conn, P.Error(code="malformed", message=f"cannot read the line ({type(exc).__name__})"))
                    continue
                try:
                    self._direct(conn, P.Reply(command=cmd.TYPE, id=cmd.id, data=self._handle(conn, cmd)))
                except CommandError as exc:
                    self._direct(conn, P.Error(code=exc.code, message=str(exc)[:2000], id=cmd.rid))
                except Exception as exc:  # noqa: BLE001 - a bug in one command must not kill the engine
                    log.exception("command %s failed", cmd.TYPE)
                    self._direct(conn, P.Error(code="internal", message=f"{type(exc).__name__}: {exc}"[:2000],
                                               id=cmd.rid))
        except (ConnectionError, OSError):
            pass
        finally:
            conn.closing = True
            conn.wake.set()
            self.conns.discard(conn)
            if conn.subscribed:
                self.idle_since = time.monotonic()
            await asyncio.gather(writer_task, return_exceptions=True)
            log.debug("%s disconnected (%d clients)", conn.name, len(self.conns))

    # ------------------------------------------------------------------ commands

    def _handle(self, conn: _Conn, cmd: P.Command) -> dict[str, Any]:
        if isinstance(cmd, P.Status):
            return self.status()
        if isinstance(cmd, P.Subscribe):
            conn.subscribed = True
            conn.last_seq = conn.sent_seq = self.broadcast_seq
            return {"seq": self.broadcast_seq, "instance": self.instance, "pid": os.getpid()}
        if isinstance(cmd, (P.Pause, P.Resume, P.Stop)):
            return self._control(cmd)
        if isinstance(cmd, P.Shutdown):
            assert self._shutdown is not None
            self._shutdown.set()
            return {"stopping": self.current.id if self.current else None}
        if cmd.TYPE in P.JOB_COMMANDS:
            if self._shutdown is not None and self._shutdown.is_set():
                raise CommandError("the engine is shutting down", "busy")
            job = Job(id=f"{cmd.TYPE}-{uuid.uuid4().hex[:8]}", submission=self._submission(cmd),
                      reporter=Reporter(self.sink))
            with self._jobs_lock:
                self.pending.append(job)
            self.jobs.put(job)
            log.info("queued %s %.*s", job.id, LOGGED_PARAMS, job.params)
            return {"job": job.id, "position": len(self.pending) + (1 if self.current else 0)}
        raise CommandError(f"command {cmd.TYPE!r} is not handled by this engine", "unknown_type")

    def _submission(self, cmd: P.Command):
        """The job a command asks for, checked in full; CommandError (an error reply, nothing queued) if it cannot
        run."""
        from engine.config import ConfigError
        from engine.service import jobs

        params = {k: v for k, v in cmd.payload().items() if k != "id"}
        try:
            return jobs.submission(cmd.TYPE, params, self.config, store=self.store_path)
        except (ConfigError, jobs.JobError) as exc:
            raise CommandError(f"{cmd.TYPE}: {exc}", "bad_field") from None

    def _config_file(self) -> str | None:
        return getattr(self.config, "file", None)

    def status(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(), "instance": self.instance, "protocol": P.PROTOCOL_VERSION, "seq": self.broadcast_seq,
            "store": str(self.store_path), "config": self._config_file(),
            "device": self._device(), "executor": self._executor(), "started": self.started, "clients": len(self.conns),
            "job": self.current.info() if self.current else None, "queue": [j.info() for j in self.pending],
            "idle_exit": self.idle_exit,
        }

    def _device(self) -> str:
        """The device config-less jobs run on, resolved once ("auto" becomes cuda:<name> or cpu), for status lines."""
        if self._device_label is None:
            from engine.runtime.device import device_label, resolve_device

            name = self.config.project.device if self.config is not None else "auto"
            try:
                self._device_label = device_label(resolve_device(name))
            except (RuntimeError, ValueError) as exc:
                self._device_label = f"{name} ({exc})"
        return self._device_label

    def _executor(self) -> str:
        """`local`, or the Ray cluster's state (`ray: 3 nodes, 12/16 CPUs, 2/2 GPUs busy`), for status lines."""
        section = getattr(self.config, "executor", None)
        if section is None or section.kind == "local":
            return "local"
        try:
            from engine.service.executor import RayExecutor

            return RayExecutor(section).status()
        except ImportError:
            return "ray (not installed: pip install 'tanas-tui[ray]')"

    def _control(self, cmd: P.Pause | P.Resume | P.Stop) -> dict[str, Any]:
        job = self.current
        if cmd.job is not None and (job is None or job.id != cmd.job):
            queued = next((j for j in self.pending if j.id == cmd.job), None)
            if queued is None:
                raise CommandError(f"no job {cmd.job!r} is running or queued", "no_job")
            if not isinstance(cmd, P.Stop):
                raise CommandError(f"job {cmd.job!r} is queued, not running: only stop applies", "no_job")
            self._remove(queued)
            return {"job": queued.id, "state": "removed"}
        if job is None:
            raise CommandError(f"no job is running to {cmd.TYPE}", "no_job")
        {"pause": job.reporter.pause, "resume": job.reporter.resume, "stop": job.reporter.stop}[cmd.TYPE]()
        log.info("%s %s", cmd.TYPE, job.id)
        return {"job": job.id, "paused": job.reporter.paused}

    def _remove(self, job: Job) -> None:
        """Takes a queued job out of the queue; the worker skips it and reports it stopped."""
        job.state = "removed"
        job.reporter.stop()
        with self._jobs_lock:
            if job in self.pending:
                self.pending.remove(job)

    def _cancel_all(self, why: str) -> None:
        for job in list(self.pending):
            self._remove(job)
        if self.current is not None:
            self.current.reporter.stop()

    # ------------------------------------------------------------------ jobs (worker thread)

    def _work(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            with self._jobs_lock:
                if job.state == "removed":
                    self.sink("job_done", {"job": job.id, "kind": job.kind, "params": job.params,
                                           "status": "stopped", "message": "removed from the queue"})
                    continue
                self.pending.remove(job)
                self.current = job
            job.state, job.started = "running", time.time()
            try:
                self._run(job)
            finally:
                job.state = "done"
                self.current = None
                self.idle_since = time.monotonic()

    def _run(self, job: Job) -> None:
        from engine.service import jobs
        from engine.service.context import JobContext

        log.info("job %s started", job.id)
        try:
            jobs.run(job.submission, JobContext(self.store, self.config, None, job.reporter, job.id))
            log.info("job %s done", job.id)
        except JobStopped:
            log.info("job %s stopped", job.id)
        except Exception:  # noqa: BLE001 - reported to clients by jobs.execute; the engine keeps serving
            log.error("job %s failed:\n%s", job.id, traceback.format_exc())


class CommandError(Exception):
    def __init__(self, message: str, code: str = "bad_field"):
        super().__init__(message)
        self.code = code


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def _setup_logging(path: Path) -> None:
    handler = PrivateRotatingLog(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
