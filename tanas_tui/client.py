"""The engine client: find, start and stop the engine of a store; talk to it; follow events.

Following without gaps or duplicates: `subscribe()` returns the last seq the engine had sent, S; events after
it are queued for this connection. Read the store after that (the UI's `read_store`), then apply the events: the client drops
every event with seq <= the last one it has seen, so a reconnect after an engine restart never repeats one.
`EngineClient` is blocking (CLI, and the app's follow thread); `AsyncEngineClient` sends the app's typed commands.
"""
from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterator

from engine.service import protocol as P
from engine.service.protocol import SocketPath, run_paths


class EngineError(Exception):
    """Talking to the engine failed; the message says how."""


class EngineNotRunning(EngineError):
    pass


class EngineAlreadyRunning(EngineError):
    def __init__(self, pid: int, store: Path):
        super().__init__(f"an engine is already running for {store}, pid {pid}")
        self.pid = pid


class EngineStartFailed(EngineError):
    """The engine exited instead of serving; `returncode` is its exit code (4: store locked, 2: bad config)."""

    def __init__(self, message: str, returncode: int | None = None):
        super().__init__(message)
        self.returncode = returncode


class ConnectionLost(EngineError):
    pass


class EngineGone(EngineError):
    """The engine running the job a client follows died; a restarted engine does not know that job."""


class RequestFailed(EngineError):
    """The engine answered a command with an `error`."""

    def __init__(self, error: P.Error):
        super().__init__(f"engine refused the request: {error.message} ({error.code})")
        self.error = error
        self.code = error.code


_ids = itertools.count(1)


def _next_id() -> str:
    return f"c{os.getpid()}-{next(_ids)}"


# --------------------------------------------------------------------------- finding, starting, stopping


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours (started by start_engine, not reaped yet) is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _connect_socket(store_path: Path, timeout: float) -> socket.socket:
    sock_path = run_paths(Path(store_path))["sock"]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        with SocketPath(sock_path) as address:
            sock.connect(address)
    except BlockingIOError:
        sock.close()  # EAGAIN on a Unix socket: the listen queue is full, the engine is alive
        raise EngineError(f"the engine of {store_path} has too many pending connections (its listen queue is full); "
                          f"try again in a moment") from None
    except OSError as exc:
        sock.close()
        raise EngineNotRunning(f"no engine is listening for {store_path} ({exc.strerror or exc})") from None
    return sock


def engine_running(store_path: Path | str) -> int | None:
    """The engine's pid when one serves this store (pid file, live process and a socket that accepts), else None."""
    paths = run_paths(Path(store_path))
    try:
        pid = int(paths["pid"].read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError, NotADirectoryError):
        return None
    if not _pid_alive(pid):
        return None
    try:
        _connect_socket(Path(store_path), 2.0).close()
    except EngineNotRunning:
        return None
    return pid


def start_engine(store_path: Path | str, config: Path | str | None = None, device: str | None = None,
                 timeout: float = 60.0, client_queue: int | None = None) -> int:
    """Starts a detached engine for the store (new session; output to runs/engine.log) and waits until it accepts
    connections. Returns its pid. EngineAlreadyRunning when one runs; EngineStartFailed with the engine's own
    message when it exits instead (e.g. the store is locked by a `tanas-tui run`)."""
    store_path = Path(store_path).resolve()
    pid = engine_running(store_path)
    if pid is not None:
        raise EngineAlreadyRunning(pid, store_path)
    paths = run_paths(store_path)
    paths["run_dir"].mkdir(parents=True, exist_ok=True)  # the engine creates the store around it
    args = [sys.executable, "-m", "engine", "--store", str(store_path)]
    if config is not None:
        args += ["--config", str(Path(config).resolve())]
    if device:
        args += ["--device", device]
    if client_queue is not None:
        args += ["--client-queue", str(client_queue)]
    log_path = paths["log"]
    offset = log_path.stat().st_size if log_path.exists() else 0
    with open(log_path, "ab") as log, open(os.devnull, "rb") as devnull:
        proc = subprocess.Popen(args, stdin=devnull, stdout=log, stderr=log, start_new_session=True,
                                close_fds=True, cwd=str(store_path.parent))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            raise EngineStartFailed(_log_tail(log_path, offset) or f"the engine exited with code {code}", code)
        running = engine_running(store_path)
        if running == proc.pid:
            return proc.pid
        time.sleep(0.05)
    raise EngineStartFailed(f"the engine (pid {proc.pid}) did not answer within {timeout:.0f} s; see {log_path}")


def _log_tail(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return "\n".join(lines[-5:])


def stop_engine(store_path: Path | str, timeout: float = 30.0) -> int | None:
    """Asks the engine to shut down (the running job stops at its next safe point) and waits for it to exit;
    SIGTERM, then SIGKILL, if it does not. Returns the stopped pid, or None when no engine was running."""
    pid = engine_running(store_path)
    if pid is None:
        return None
    try:
        with EngineClient(store_path) as client:
            client.request("shutdown")
    except EngineError:
        os.kill(pid, signal.SIGTERM)
    if _wait_exit(pid, timeout):
        return pid
    os.kill(pid, signal.SIGTERM)
    if not _wait_exit(pid, 5):
        os.kill(pid, signal.SIGKILL)
        _wait_exit(pid, 5)
    return pid


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.05)
    return not _pid_alive(pid)


# --------------------------------------------------------------------------- blocking client


class EngineClient:
    """A blocking connection to the engine of `store_path`."""

    def __init__(self, store_path: Path | str, timeout: float = 10.0):
        self.store_path = Path(store_path).resolve()
        self.timeout = timeout
        self.last_seq = 0
        self.subscribed = False
        self.instance: str | None = None   # the engine's id from the last subscribe
        self.engine_pid: int | None = None
        self._sock: socket.socket | None = None
        self._buf = bytearray()
        self._pending: deque[P.Event] = deque()

    def __enter__(self) -> "EngineClient":
        return self.connect()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def connect(self) -> "EngineClient":
        self.close()
        self._sock = _connect_socket(self.store_path, self.timeout)
        self._buf.clear()
        return self

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
        self.subscribed = False

    def send(self, cmd: P.Command) -> str | None:
        if self._sock is None:
            raise ConnectionLost("not connected to the engine")
        try:
            self._sock.sendall(P.encode(cmd))
        except OSError as exc:
            raise ConnectionLost(f"lost the connection to the engine: {exc}") from None
        return cmd.id

    def send_raw(self, data: bytes) -> None:
        """Writes bytes as they are (tests of the engine's input handling)."""
        assert self._sock is not None
        self._sock.sendall(data)

    def _read_line(self, timeout: float | None) -> bytes | None:
        assert self._sock is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line = bytes(self._buf[:nl + 1])
                del self._buf[:nl + 1]
                return line
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(1 << 16)
            except socket.timeout:
                return None
            except OSError as exc:
                raise ConnectionLost(f"lost the connection to the engine: {exc}") from None
            if not chunk:
                raise ConnectionLost("the engine closed the connection")
            self._buf += chunk

    def recv(self, timeout: float | None = None) -> P.Event | None:
        """The next message from the engine (events, replies, errors), or None after `timeout` seconds."""
        if self._pending:
            return self._pending.popleft()
        line = self._read_line(timeout)
        if line is None:
            return None
        msg = P.decode(line)
        if not isinstance(msg, P.Event):
            raise EngineError(f"the engine sent a command ({msg.TYPE})")
        return msg

    def request(self, name: str, timeout: float | None = None, **fields: Any) -> dict[str, Any]:
        """Sends a command and waits for its reply's data; events that arrive meanwhile are kept for `recv`."""
        return self.ask(P.make_command(name, **fields), timeout).data

    def ask(self, command: P.Command, timeout: float | None = None) -> P.Reply:
        """Sends `command` (under a fresh request id) and waits for the engine's reply; RequestFailed when it
        refuses. Events that arrive meanwhile are kept for `recv`."""
        cmd = dataclasses.replace(command, id=_next_id())
        name = cmd.TYPE
        self.send(cmd)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        held: list[P.Event] = []
        try:
            while True:
                line = self._read_line(max(0.0, deadline - time.monotonic()))
                if line is None:
                    raise EngineError(f"the engine did not answer {name!r} in time")
                msg = P.decode(line)
                if isinstance(msg, (P.Reply, P.Error)) and msg.id == cmd.id:
                    if isinstance(msg, P.Error):
                        raise RequestFailed(msg)
                    return msg
                held.append(msg)  # type: ignore[arg-type]
        finally:
            self._pending.extend(held)

    def status(self) -> dict[str, Any]:
        return self.request("status")

    def subscribe(self) -> int:
        data = self.request("subscribe")
        seq = int(data["seq"])
        self.subscribed = True
        self.last_seq = max(self.last_seq, seq)
        self.instance, self.engine_pid = data.get("instance"), data.get("pid")
        return seq

    def submit(self, kind: str, **params: Any) -> str:
        """Queues a job; returns its id."""
        return self.request(kind, **params)["job"]

    def events(self, timeout: float | None = None, reconnect: bool = False, reconnect_timeout: float = 60.0,
               on_reconnect: Callable[[int], None] | None = None,
               give_up: Callable[[], bool] | None = None) -> Iterator[P.Event]:
        """Broadcast events not seen yet (seq > last_seq) plus `dropped` / direct errors. Stops after `timeout`
        seconds without a message. With `reconnect`, waits for a restarted engine, re-subscribes and calls
        `on_reconnect(seq)` (re-read the store there) before going on; `give_up()` true after the connection
        was lost ends the iteration with _EngineDied instead."""
        if not self.subscribed:
            self.subscribe()
        while True:
            try:
                msg = self.recv(timeout)
            except ConnectionLost:
                if give_up is not None and give_up():
                    raise _EngineDied() from None
                if not reconnect:
                    raise
                self._reconnect(reconnect_timeout, give_up)
                if on_reconnect is not None:
                    on_reconnect(self.last_seq)
                continue
            if msg is None:
                return
            if msg.seq:
                if msg.seq <= self.last_seq:
                    continue
                self.last_seq = msg.seq
            elif isinstance(msg, P.Reply):
                continue
            yield msg

    def _reconnect(self, timeout: float, give_up: Callable[[], bool] | None = None) -> None:
        self.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if give_up is not None and give_up():
                raise _EngineDied()
            if engine_running(self.store_path) is not None:
                try:
                    self.connect()
                    self.subscribe()
                    return
                except EngineError:
                    self.close()
            time.sleep(0.2)
        raise ConnectionLost(f"the engine for {self.store_path} did not come back within {timeout:.0f} s")

    def follow_job(self, job_id: str, timeout: float | None = None, reconnect: bool = True) -> Iterator[P.Event]:
        """Events until (and including) the `job_done` of `job_id`. EngineGone when the engine running it died
        (whether or not another engine serves the store now): no engine will ever finish that job."""
        if not self.subscribed:
            self.subscribe()
        instance, pid = self.instance, self.engine_pid

        def gone(now: str) -> EngineGone:
            return EngineGone(
                f"the engine (pid {pid}) that ran job {job_id} is gone{now}; what the job finished is in the store "
                f"{self.store_path}: run the same command again to resume it")

        def check(_seq: int) -> None:
            if self.instance != instance:
                raise gone(f" (another engine, pid {self.engine_pid}, serves the store now)")

        try:
            for msg in self.events(timeout=timeout, reconnect=reconnect and pid is not None, on_reconnect=check,
                                   give_up=lambda: pid is not None and not _pid_alive(pid)):
                yield msg
                if isinstance(msg, P.JobDone) and msg.job == job_id:
                    return
        except _EngineDied:
            raise gone("") from None


class _EngineDied(ConnectionLost):
    pass


# --------------------------------------------------------------------------- asyncio client


class AsyncEngineClient:
    """The asyncio twin of EngineClient's requests, for the Textual app: one typed command, its typed reply, never
    blocking the event loop. (The app follows events in a thread with EngineClient: see tanas_tui/link.py.)"""

    def __init__(self, store_path: Path | str, timeout: float = 10.0):
        self.store_path = Path(store_path).resolve()
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> "AsyncEngineClient":
        return await self.connect()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def connect(self) -> "AsyncEngineClient":
        await self.close()
        sock_path = run_paths(self.store_path)["sock"]
        try:
            with SocketPath(sock_path) as address:
                self._reader, self._writer = await asyncio.wait_for(
                    asyncio.open_unix_connection(address, limit=P.MAX_MESSAGE_BYTES + 2), self.timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            raise EngineNotRunning(f"no engine is listening for {self.store_path} ({exc})") from None
        return self

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except (OSError, ConnectionError):
                pass

    async def _read(self, timeout: float | None) -> P.Event | None:
        if self._reader is None:
            raise ConnectionLost("not connected to the engine")
        try:
            line = await asyncio.wait_for(self._reader.readline(), timeout)
        except asyncio.TimeoutError:
            return None
        except (OSError, ConnectionError, ValueError) as exc:
            raise ConnectionLost(f"lost the connection to the engine: {exc}") from None
        if not line:
            raise ConnectionLost("the engine closed the connection")
        msg = P.decode(line)
        if not isinstance(msg, P.Event):
            raise EngineError(f"the engine sent a command ({msg.TYPE})")
        return msg

    async def request(self, command: P.Command, timeout: float | None = None) -> P.Reply:
        """Sends `command` (under a fresh request id) and returns the engine's reply; RequestFailed when it refuses."""
        if self._writer is None:
            raise ConnectionLost("not connected to the engine")
        cmd = dataclasses.replace(command, id=_next_id())
        try:
            self._writer.write(P.encode(cmd))
            await self._writer.drain()
        except (OSError, ConnectionError) as exc:
            raise ConnectionLost(f"lost the connection to the engine: {exc}") from None
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            msg = await self._read(max(0.0, deadline - time.monotonic()))
            if msg is None:
                raise EngineError(f"the engine did not answer {cmd.TYPE!r} in time")
            if isinstance(msg, (P.Reply, P.Error)) and msg.id == cmd.id:
                if isinstance(msg, P.Error):
                    raise RequestFailed(msg)
                return msg
            # this connection never subscribed: nothing else is addressed to it

    async def status(self) -> dict[str, Any]:
        return (await self.request(P.Status())).data


def engine_log_path(store_path: Path | str) -> Path:
    """The engine's log file (every engine of the store appends to it)."""
    return run_paths(Path(store_path))["log"]
