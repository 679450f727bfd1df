"""The app's link to its store's engine: follow it (or a headless run through the store), reconnect when it comes
back, send it commands, start one. It runs in workers and tells the app everything by posting the messages below;
it holds no UI state and changes no model.

Following without gaps or duplicates: the link reads the engine's log since it last followed (the history the app
did not see live), subscribes, then asks the app to re-read the store (`StoreChanged`): the replay plus the events
queued since subscribing cover everything, and the model drops events it already holds by their seq. Reading and
decoding run in the follow thread, not on the event loop: a stream at full speed would otherwise keep the loop busy
(buffered reads never suspend) and starve the timers and the screen."""
from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable

from textual.message import Message
from textual.worker import get_current_worker

from engine.service import protocol as P
from tanas_tui.event_log import LogLine, log_size, read_engine_log

ENGINE_POLL = 5.0          # seconds between checks for an engine when none runs
STORE_POLL = 2.0           # seconds between store re-reads while a headless run (no engine) writes the store
RETRY = 1.0                # seconds before connecting again after a lost connection
BATCH = 64                 # events per EngineEvents message at most
BATCH_WAIT = 0.05          # seconds a partial batch waits for more events
BACKLOG_LIMIT = 500        # events queued in the app beyond which the reader pauses: it need not outrun the screen
CONNECTED = ("connected", "connecting")


@dataclass(eq=False)
class LinkChanged(Message):
    """The connection's state (`not running`, `starting`, `connecting`, `connected`, `disconnected`);
    `writer_pid`: a process other than an engine (a headless `tanas-tui run`) holds the store's writer lock."""
    state: str
    writer_pid: int | None = None


@dataclass(eq=False)
class EngineEvents(Message):
    """Broadcast events from the engine, in order."""
    events: list[P.Event]


@dataclass(eq=False)
class EngineStatus(Message):
    """The engine's reply to `status` on connecting: device, executor, the running job."""
    reply: P.Reply


@dataclass(eq=False)
class EngineHistory(Message):
    """Records of the engine's log written while this window was not following (earlier engines, a restart)."""
    lines: list[LogLine]


@dataclass(eq=False)
class StoreChanged(Message):
    """Re-read the store: just subscribed (the replay), or a headless run wrote more (`following`: also the
    search it writes)."""
    following: bool = False


@dataclass(eq=False)
class CommandAnswered(Message):
    """The engine's reply to a command the app sent, or why there is none (`reply` None, `error` says why)."""
    command: P.Command
    reply: P.Reply | None
    error: str = ""


@dataclass(eq=False)
class LinkNotice(Message):
    text: str
    severity: str = "information"


class EngineLink:
    def __init__(self, app: Any, store_path: Path, config_path: Path | None = None, *,
                 client_factory: Callable[[Path], Any] | None = None,
                 backlog: Callable[[], int] = lambda: 0) -> None:
        self.app, self.store_path, self.config_path = app, Path(store_path), config_path
        self._client_factory = client_factory
        self.backlog = backlog
        self.state = "not running"
        self.writer_pid: int | None = None
        self._log_offset: int | None = None   # the engine's log is read up to here (None: not read yet)

    @property
    def connected(self) -> bool:
        return self.state in CONNECTED

    def client(self) -> Any:
        """A fresh asyncio client for one request (tests pass a factory of fakes)."""
        if self._client_factory is not None:
            return self._client_factory(self.store_path)
        from tanas_tui.client import AsyncEngineClient

        return AsyncEngineClient(self.store_path)

    def _post(self, message: Message) -> None:
        self.app.post_message(message)   # thread-safe

    def _set(self, state: str, writer_pid: int | None = None) -> None:
        if (state, writer_pid) != (self.state, self.writer_pid):
            self.state, self.writer_pid = state, writer_pid
            self._post(LinkChanged(state, writer_pid))

    # -- following ------------------------------------------------------------------------------------------------
    def follow(self) -> None:
        self.app.run_worker(self._follow, thread=True, exclusive=True, group="follow", name="follow engine")

    def _follow(self) -> None:
        from tanas_tui.client import EngineClient, EngineError, engine_log_path, engine_running
        from tanas_tui.store_follow import store_writer

        worker = get_current_worker()
        log_path = engine_log_path(self.store_path)
        self._history(log_path)
        while not worker.is_cancelled:
            if engine_running(self.store_path) is None:
                writer, was_writing = store_writer(self.store_path), self.writer_pid is not None
                if writer is not None:
                    # a headless run holds the store: follow its records (the store is the source of truth)
                    self._set("not running", writer)
                    self._post(StoreChanged(following=True))
                    self._wait(worker, STORE_POLL)
                    continue
                if self.state != "starting":
                    self._set("disconnected" if self.state == "connected" else "not running")
                if was_writing:
                    self._post(StoreChanged(following=True))   # the headless run just ended: its last records
                self._wait(worker, ENGINE_POLL)
                continue
            self._set("connecting")
            try:
                with EngineClient(self.store_path) as client:
                    self._post(EngineStatus(client.ask(P.Status())))
                    self._history(log_path)
                    client.subscribe()
                    self._set("connected")
                    self._post(StoreChanged())   # after subscribing: the replay plus the queued events cover all
                    self._stream(client, worker)
            except EngineError as exc:
                if not worker.is_cancelled:
                    self._log_offset = log_size(log_path)   # from here on the log holds what this window missed
                    lost = self.state == "connected"
                    self._set("disconnected")
                    if lost:
                        self._post(LinkNotice(f"engine connection lost: {exc}", "warning"))
            self._wait(worker, RETRY)

    def _history(self, log_path: Path) -> None:
        lines, self._log_offset = read_engine_log(log_path, self._log_offset)
        if lines:
            self._post(EngineHistory(lines))

    def _stream(self, client: Any, worker: Any) -> None:
        """Posts the engine's events in batches until the connection is lost (ConnectionLost) or the worker ends."""
        batch: list[P.Event] = []
        while not worker.is_cancelled:
            for event in client.events(timeout=BATCH_WAIT):
                batch.append(event)
                if len(batch) >= BATCH:
                    self._post(EngineEvents(batch))
                    batch = []
                while self.backlog() > BACKLOG_LIMIT and not worker.is_cancelled:
                    # the screen is behind: stop reading so the engine's queue, not ours, grows
                    time.sleep(0.02)
                if worker.is_cancelled:
                    return
            if batch:
                self._post(EngineEvents(batch))
                batch = []

    @staticmethod
    def _wait(worker: Any, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not worker.is_cancelled and time.monotonic() < deadline:
            time.sleep(min(0.1, seconds))

    # -- commands -------------------------------------------------------------------------------------------------
    def send(self, command: P.Command) -> None:
        self.app.run_worker(self._send(command), group="send")

    async def _send(self, command: P.Command) -> None:
        client = self.client()
        try:
            await client.connect()
            reply = await client.request(command)
        except Exception as exc:  # noqa: BLE001 - refused requests and lost connections are answers too
            self._post(CommandAnswered(command, None, str(exc)))
            return
        finally:
            await client.close()
        self._post(CommandAnswered(command, reply))

    def start(self, then: P.Command | None = None, follow: bool = True) -> None:
        """Starts an engine for the store, follows it, then sends `then`."""
        self.app.run_worker(partial(self._start, then, follow), thread=True, exclusive=True, group="start-engine")

    def _start(self, then: P.Command | None, follow: bool) -> None:
        from tanas_tui.client import EngineAlreadyRunning, start_engine

        self._set("starting")
        try:
            pid = start_engine(self.store_path, self.config_path)
            self._post(LinkNotice(f"engine started (pid {pid})"))
        except EngineAlreadyRunning as exc:
            self._post(LinkNotice(str(exc)))
        except Exception as exc:  # noqa: BLE001
            self._set("not running")
            self._post(LinkNotice(f"could not start the engine: {exc}", "error"))
            return
        self._set("connecting")
        if follow:
            self.app.call_from_thread(self.follow)
        if then is not None:
            self.app.call_from_thread(self.send, then)
