"""The Textual app: five panels over one `UiState`, fed by store reads (thread workers) and engine events.

Engine events go into `ingest()` (a deque); a 10 Hz timer applies them in one batch and refreshes only the panels
whose topics changed, so a search streaming α steps at full speed never stalls the event loop.
"""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterable

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Footer, TabbedContent, TabPane
from textual.worker import get_current_worker

from tanas_tui.components.add_task_form import AddTaskScreen
from tanas_tui.components.dialogs import ConfirmScreen
from tanas_tui.components.dictionary import DictionaryPanel
from tanas_tui.components.events import EventsPanel
from tanas_tui.components.distances import DistancesPanel
from tanas_tui.components.fuse import FusePanel
from tanas_tui.components.help_screen import HelpScreen
from tanas_tui.components.messages import (AddTaskRequested, ExportRun, OpenRun, RemoveTaskRequested,
                                           SendCommand)
from tanas_tui.components.palette import TanasCommands
from tanas_tui.components.runs import RunsPanel
from tanas_tui.components.space_tree import SpacePanel
from tanas_tui.components.status_bar import StatusBar
from tanas_tui.event_log import EventLog
from tanas_tui.ui_state import SEARCHES, TASKS, UiState

TABS = ("dictionary", "distances", "space", "fuse", "runs", "events")
MAIN_WIDGET = {"dictionary": "#tasks", "distances": "#distance-table", "space": "#space-tree", "fuse": "#candidates",
               "runs": "#runs-table", "events": "#events-table"}
APPLY_INTERVAL = 0.1       # seconds between batches of engine events
ENGINE_POLL = 5.0          # seconds between checks for an engine when none runs
STORE_POLL = 2.0           # seconds between store re-reads while a headless run (no engine) writes the store
APPLY_BUDGET = 0.02        # seconds of event application per tick
APPLY_CHUNK = 50
INBOX_LIMIT = 500          # queued events beyond which the reader pauses: it need not outrun the screen


class EventsArrived(Message):
    """Engine events for the app (posted by the follow worker, tests or benchmarks)."""

    def __init__(self, events: list[Any]) -> None:
        super().__init__()
        self.events = events


class TanasApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "tanas-tui"
    COMMANDS = App.COMMANDS | {TanasCommands}
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("1", "show_tab('dictionary')", "Dict", show=False),
        Binding("2", "show_tab('distances')", "Dist", show=False),
        Binding("3", "show_tab('space')", "Space", show=False),
        Binding("4", "show_tab('fuse')", "FUSE", show=False),
        Binding("5", "show_tab('runs')", "Runs", show=False),
        Binding("6", "show_tab('events')", "Events", show=False),
        Binding("j", "jobs", "Jobs", show=False),
        # not in the footer for now: the snapshot tests pin the footer while other UI work is being merged
        Binding("c", "compare", "Compare", show=False),
    ]

    def notify(self, message: str, *, markup: bool = False, **kwargs: Any) -> None:
        """Notifications carry task names, paths and error messages: plain text unless a caller asks for markup."""
        from tanas_tui.safe_text import printable

        super().notify(printable(message), markup=markup, **kwargs)

    def __init__(
        self,
        store_path: Path | str,
        config: Any = None,
        config_path: Path | None = None,
        *,
        connect: bool = True,
        client_factory: Callable[[Path], Any] | None = None,
        clock: Callable[[], float] = time.time,
        read_store: bool = True,
    ) -> None:
        super().__init__()
        self.store_path = Path(store_path)
        self.config = config
        self.config_path = config_path
        self.clock = clock
        self.state = UiState(str(self.store_path))
        self.event_log = EventLog(self.state.task_name)
        self.engine_state = "not running"
        self.device = ""
        self.executor = ""
        self.catalog: dict[str, tuple[str, ...] | None] | None = None
        self._connect = connect
        self._read_store = read_store
        self._client_factory = client_factory
        self._inbox: deque[Any] = deque()
        self._loading_runs: set[str] = set()
        self._quit_message = ""
        self._stale: dict[str, set[str]] = {}
        self.writer_pid: int | None = None   # pid of a process other than an engine holding the store's lock
        self.painted = threading.Event()   # set after the first paint; heavy workers (torch) wait for it

    # -- layout ---------------------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with TabbedContent(initial="dictionary", id="tabs"):
            with TabPane("Dictionary", id="dictionary"):
                yield DictionaryPanel(self.state, self.config, id="dictionary-panel")
            with TabPane("Distances", id="distances"):
                k = self.config.dictionary.k if self.config is not None else 3
                yield DistancesPanel(self.state, k=k, id="distances-panel")
            with TabPane("Space", id="space"):
                yield SpacePanel(self.state, self.config, id="space-panel")
            with TabPane("FUSE", id="fuse"):
                yield FusePanel(self.state, id="fuse-panel")
            with TabPane("Runs", id="runs"):
                yield RunsPanel(self.state, self.clock, id="runs-panel")
            with TabPane("Events", id="events"):
                yield EventsPanel(self.event_log, id="events-panel")
        yield Footer()

    def on_mount(self) -> None:
        # kept so that refreshes work while a modal screen is on top (queries look at the active screen only)
        self._panels = [self.query_one(f"#{name}-panel") for name in TABS]
        self._status = self.query_one(StatusBar)
        self._tabs = self.query_one("#tabs", TabbedContent)
        self._fuse = self.query_one(FusePanel)
        status = self._status
        status.store = _short_path(self.store_path)
        if self.config is not None:
            self.device = self.config.project.device
        self._update_status()
        self.set_interval(APPLY_INTERVAL, self._apply_inbox)
        self.call_after_refresh(self._after_first_paint)

    def _after_first_paint(self) -> None:
        # the store read (zarr's import, the arrays) starts once the screen is up: a thread started earlier would
        # share the interpreter with the first paint and delay it
        self.painted.set()
        if self._read_store:
            self.load_store()
        self._focus_main(self._tabs.active)
        self.load_catalog()
        if self._connect:
            self.follow_engine()

    def panels(self) -> list[Any]:
        return list(getattr(self, "_panels", []))

    # -- the event intake -----------------------------------------------------------------------------------------
    def ingest(self, events: Iterable[Any]) -> None:
        """Queue engine events (protocol Event objects, their dict form or (name, payload) pairs); applied in the
        next batch. Safe to call from the event loop only; threads post `EventsArrived`."""
        self._inbox.extend(events)

    def on_events_arrived(self, message: EventsArrived) -> None:
        self.ingest(message.events)

    def _apply_inbox(self) -> None:
        if not self._inbox or not self.state.loaded:
            return
        # a time budget per tick: a burst larger than that is applied over the next ticks, never in one stall
        deadline = time.perf_counter() + APPLY_BUDGET
        topics: set[str] = set()
        now = self.clock()
        while self._inbox and time.perf_counter() < deadline:
            batch = [self._inbox.popleft() for _ in range(min(APPLY_CHUNK, len(self._inbox)))]
            topics |= self.event_log.add_many(batch, now)   # before apply: names of removed tasks still known
            topics |= self.state.apply_many(batch, now)
            topics |= self._drop_removed_runs(batch)
        self.refresh_panels(topics)

    def _drop_removed_runs(self, batch: list[Any]) -> set[str]:
        from tanas_tui.ui_state import normalize_event

        topics: set[str] = set()
        for event in batch:
            try:
                name, data, _ = normalize_event(event)
            except Exception:  # noqa: BLE001 - malformed: UiState reports it
                continue
            if name == "job_done" and data.get("kind") == "remove_search" and data.get("status", "ok") == "ok":
                run = (data.get("params") or {}).get("run")
                if self.state.searches.pop(str(run), None) is not None:
                    topics.add(SEARCHES)
                    if self._fuse.run_id == run:
                        self._fuse.run_id = None
        return topics

    def refresh_panels(self, topics: set[str]) -> None:
        for level, message in self.state.drain_notices():
            self.notify(message, severity="error" if level == "error" else "warning", timeout=8)
        if not topics:
            return
        active = self._tabs.active if hasattr(self, "_tabs") else ""
        with self.batch_update():
            for name, panel in zip(TABS, self.panels()):
                if name != active:
                    # hidden panels catch up when their tab is shown
                    self._stale.setdefault(name, set()).update(topics)
                    continue
                try:
                    panel.refresh_state(topics | self._stale.pop(name, set()))
                except Exception as exc:  # noqa: BLE001 - a panel bug must not take the app down
                    self.log.error(f"refresh of {panel.id} failed: {exc!r}")
                    self.notify(f"{panel.id}: {type(exc).__name__}: {exc}", severity="error")
        for tid in list(self.state.needs_task_read):
            self.state.needs_task_read.discard(tid)
            if self._read_store:
                self.load_task(tid)
        for s in self.state.searches.values():
            if s.gap and s.id not in self._loading_runs and self._read_store:
                self.load_run(s.id)
        self._update_status()

    def _update_status(self) -> None:
        status = getattr(self, "_status", None)
        if status is None:
            return
        status.engine = self.engine_state
        status.writer = f"headless run pid {self.writer_pid}" if self.writer_pid else ""
        status.device = self.device
        status.executor = self.state.executor or self.executor   # live readings from events beat the connect-time one
        job = self.state.current_job()
        if job is None:
            status.job = ""
        else:
            progress = f" {job.done}/{job.total}" if job.total else ""
            paused = " (paused)" if job.state == "paused" else ""
            sub = f" · {job.sub}" if job.sub else ""
            status.job = f"{job.kind or job.job} {job.stage}{progress}{sub}{paused}".strip()

    # -- store reads (thread workers) -----------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="store")
    def load_store(self) -> None:
        from tanas_tui.ui_state import read_store

        try:
            snap = read_store(self.store_path)
        except Exception as exc:  # noqa: BLE001 - a missing or locked store is shown, not raised
            self.call_from_thread(self._store_failed, exc)
            return
        self.call_from_thread(self._store_loaded, snap)

    def _store_failed(self, exc: Exception) -> None:
        self.state.loaded = True   # live events can still be shown
        self.notify(f"cannot read the store: {exc}", severity="error", timeout=15)
        self.refresh_panels({TASKS, SEARCHES})

    def _store_loaded(self, snap: Any) -> None:
        topics = self.state.load_snapshot(snap)
        self.refresh_panels(topics | {"distances", "spaces"})
        fuse = self._fuse
        running = self.state.running_search()
        target = fuse.run_id or (running.id if running else None)
        if target is not None and not self.state.searches[target].loaded:
            fuse.show_run(target, pin=fuse.pinned)
            self.load_run(target)

    @work(thread=True, group="task")
    def load_task(self, task_id: str) -> None:
        from tanas_tui.ui_state import read_task

        try:
            attrs = read_task(self.store_path, task_id)
        except Exception:  # noqa: BLE001 - not in the store yet: the live row stays as it is
            return
        self.call_from_thread(self._task_loaded, task_id, attrs)

    def _task_loaded(self, task_id: str, attrs: dict[str, Any]) -> None:
        self.refresh_panels(self.state.update_task(task_id, attrs))

    @work(thread=True, group="run")
    def load_run(self, run_id: str) -> None:
        from tanas_tui.ui_state import read_search

        self._loading_runs.add(run_id)
        try:
            attrs, record = read_search(self.store_path, run_id)
        except Exception as exc:  # noqa: BLE001
            self.call_from_thread(self._run_failed, run_id, exc)
            return
        self.call_from_thread(self._run_loaded, run_id, attrs, record)

    def _run_failed(self, run_id: str, exc: Exception) -> None:
        self._loading_runs.discard(run_id)
        s = self.state.searches.get(run_id)
        if s is not None:
            s.gap = False
        self.notify(f"cannot read run {run_id}: {exc}", severity="error")

    def _run_loaded(self, run_id: str, attrs: dict[str, Any], record: dict[str, Any]) -> None:
        self._loading_runs.discard(run_id)
        self.refresh_panels(self.state.load_search(run_id, attrs, record))

    @work(thread=True, exclusive=True, group="catalog")
    def load_catalog(self) -> None:
        try:
            from engine.data import list_sources

            sources = list_sources(self.config) if self.config is not None else list_sources()
        except Exception as exc:  # noqa: BLE001 - the form then skips source checks and says why
            self.call_from_thread(self.notify, f"cannot list data sources: {exc}", severity="warning")
            return
        catalog: dict[str, tuple[str, ...] | None] = {}
        for source in sources:
            try:
                catalog[source.name] = tuple(source.classes())
            except Exception:  # noqa: BLE001 - classes unknown until downloaded
                catalog[source.name] = None
        self.catalog = catalog

    # -- the engine -----------------------------------------------------------------------------------------------
    def _client(self) -> Any:
        if self._client_factory is not None:
            return self._client_factory(self.store_path)
        from tanas_tui.client import AsyncEngineClient

        return AsyncEngineClient(self.store_path)

    def set_engine_state(self, state: str, writer_pid: int | None = None) -> None:
        """The engine connection; `writer_pid`: a process without an engine (a headless `tanas-tui run`) holds the
        store's writer lock, so the UI follows the store instead of events."""
        self.engine_state = state
        self.writer_pid = writer_pid
        alive = True if state in ("connected", "connecting", "starting") or writer_pid else \
            False if state in ("not running", "disconnected") else None
        self.refresh_panels(self.state.set_engine(alive))

    @work(thread=True, exclusive=True, group="follow")
    def follow_engine(self) -> None:
        """Waits for an engine, subscribes, re-reads the store, then queues its events for the apply timer.

        Reading and decoding run in this thread, not on the event loop: a stream at full speed would otherwise
        keep the loop busy (buffered reads never suspend) and starve the timers and the screen."""
        from tanas_tui.client import EngineClient, EngineError, engine_running
        from tanas_tui.store_follow import store_writer

        worker = get_current_worker()

        def ui(callback: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
            if not worker.is_cancelled:
                try:
                    self.call_from_thread(callback, *args, **kwargs)
                except RuntimeError:   # the app is closing
                    pass

        def reread(_seq: int) -> None:
            ui(self.set_engine_state, "connected")
            if self._read_store:
                ui(self.load_store)

        while not worker.is_cancelled:
            if engine_running(self.store_path) is None:
                writer = store_writer(self.store_path)
                if writer is not None:
                    # a headless run holds the store: follow its records (the store is the source of truth)
                    ui(self.set_engine_state, "not running", writer)
                    if self._read_store:
                        ui(self.reload_following)
                    self._wait(worker, STORE_POLL)
                    continue
                if self.engine_state != "starting":
                    ui(self.set_engine_state, "disconnected" if self.engine_state == "connected" else "not running")
                if self.writer_pid is not None and self._read_store:
                    ui(self.reload_following)   # the headless run just ended: read its last records
                self._wait(worker, ENGINE_POLL)
                continue
            ui(self.set_engine_state, "connecting")
            try:
                with EngineClient(self.store_path) as client:
                    status = client.status()
                    if status.get("device"):
                        self.device = str(status["device"])
                    if status.get("executor"):
                        self.executor = str(status["executor"])
                    ui(self._engine_status, status)
                    client.subscribe()
                    reread(client.last_seq)   # after subscribing: the replay plus the queued events cover all
                    while not worker.is_cancelled:
                        for event in client.events(timeout=0.5, reconnect=True, reconnect_timeout=10.0,
                                                   on_reconnect=reread):
                            self._inbox.append(event)
                            if len(self._inbox) > INBOX_LIMIT:
                                # the screen is behind: stop reading so the engine's queue, not ours, grows
                                self._wait(worker, 0.02)
                            if worker.is_cancelled:
                                break
            except EngineError as exc:
                ui(self.set_engine_state, "disconnected")
                ui(self.notify, f"engine connection lost: {exc}", severity="warning")
            self._wait(worker, 1.0)

    def reload_following(self) -> None:
        """Re-reads the store and the search FUSE follows (or the running one)."""
        self.load_store()
        s = self.state.running_search()
        run_id = self._fuse.run_id or (s.id if s else None)
        if run_id and run_id not in self._loading_runs:
            self.load_run(run_id)

    def _engine_status(self, status: dict[str, Any]) -> None:
        self.state.executor = ""   # the status reply just read is the newest reading until events bring another
        self.refresh_panels(self.state.set_running_job(status.get("job")))

    @staticmethod
    def _wait(worker: Any, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not worker.is_cancelled and time.monotonic() < deadline:
            time.sleep(min(0.1, seconds))

    def send_command(self, name: str, **fields: Any) -> None:
        """Sends a command to the engine; offers to start one when none runs."""
        if self.engine_state not in ("connected", "connecting"):
            def answer(start: bool | None) -> None:
                if start:
                    self.start_engine_then(name, fields)

            self.push_screen(ConfirmScreen(f"No engine is running for {self.store_path}.\nStart one now to "
                                           f"run {name.replace('_', ' ')}?", yes="Start engine", no="Cancel"),
                             answer)
            return
        self._send(name, fields)

    @work(group="send")
    async def _send(self, name: str, fields: dict[str, Any]) -> dict[str, Any] | None:
        fields = {k: v for k, v in fields.items() if v is not None}
        client = self._client()
        try:
            await client.connect()
            data = await client.request(name, **fields)
        except Exception as exc:  # noqa: BLE001 - refused requests and lost connections become notifications
            self.notify(f"{name}: {exc}", severity="error", timeout=10)
            if name in ("pause", "resume", "stop"):
                self._fuse.control_answered(name, None)
            return None
        finally:
            await client.close()
        if name in ("pause", "resume", "stop"):
            self._fuse.control_answered(name, data or {})
        job = (data or {}).get("job")
        done = {"pause": "paused", "resume": "resumed", "stop": "stop requested for"}
        if name in done:
            self.notify(f"{done[name]} job {job}" if job else f"{name}: done", timeout=4)
        else:
            self.notify(f"{name.replace('_', ' ')}: " + (f"queued as job {job}" if job else "done"), timeout=4)
        return data

    def action_start_engine(self) -> None:
        self.start_engine_then(None, {})

    @work(thread=True, exclusive=True, group="start-engine")
    def start_engine_then(self, command: str | None, fields: dict[str, Any]) -> None:
        from tanas_tui.client import EngineAlreadyRunning, start_engine

        self.call_from_thread(self.set_engine_state, "starting")
        try:
            pid = start_engine(self.store_path, self.config_path)
            self.call_from_thread(self.notify, f"engine started (pid {pid})")
        except EngineAlreadyRunning as exc:
            self.call_from_thread(self.notify, str(exc))
        except Exception as exc:  # noqa: BLE001
            self.call_from_thread(self.set_engine_state, "not running")
            self.call_from_thread(self.notify, f"could not start the engine: {exc}", severity="error", timeout=15)
            return
        self.call_from_thread(self.set_engine_state, "connecting")
        if self._connect:
            self.call_from_thread(self.follow_engine)
        if command is not None:
            self.call_from_thread(self._send, command, fields)

    # -- actions --------------------------------------------------------------------------------------------------
    def _focus_main(self, pane: str) -> None:
        """Focus the pane's main widget, unless focus is already inside the pane (focusing a widget in another
        pane would switch the tab back)."""
        if pane not in MAIN_WIDGET:
            return
        container = self._tabs.get_pane(pane)
        focused = self.focused
        if focused is not None and container in focused.ancestors:
            return
        for widget in container.query(MAIN_WIDGET[pane]):
            widget.focus()

    def action_show_tab(self, tab: str) -> None:
        self._tabs.active = tab

    def action_jobs(self) -> None:
        from tanas_tui.components.jobs_view import JobsScreen

        if self.engine_state not in ("connected", "connecting"):
            self.notify("no engine is running: no jobs (start one from the command palette)", severity="warning")
            return
        self.push_screen(JobsScreen(self._client, lambda name, **fields: self._send(name, fields), self.clock))

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_compare(self) -> None:
        from tanas_tui.components.compare import CompareScreen

        target = self.config.target.name if self.config is not None and self.config.target is not None else None
        # opened once the compare screen is gone: the tabs do not switch underneath a modal screen
        self.push_screen(CompareScreen(self.store_path, target),
                         lambda run_id: run_id and self.call_after_refresh(self.open_run, run_id))

    def action_reload(self) -> None:
        self.load_store()
        fuse = self._fuse
        if fuse.run_id:
            self.load_run(fuse.run_id)

    def action_add_task(self) -> None:
        existing = {info.name for info in self.state.tasks.values()}

        def done(result: dict | None) -> None:
            if result:
                self.send_command("add_task", task=result["task"], role=result["role"])

        self.push_screen(AddTaskScreen(existing, self.catalog), done)

    # -- what the panels ask for (they post messages; see components/messages.py) ----------------------------------
    @on(SendCommand)
    def _panel_command(self, message: SendCommand) -> None:
        self.send_command(message.name, **message.fields)

    @on(OpenRun)
    def _panel_open_run(self, message: OpenRun) -> None:
        self.open_run(message.run_id)

    @on(ExportRun)
    def _panel_export(self, message: ExportRun) -> None:
        self.export_result(message.run_id)

    @on(AddTaskRequested)
    def _panel_add_task(self, message: AddTaskRequested) -> None:
        self.action_add_task()

    @on(RemoveTaskRequested)
    def _panel_remove_task(self, message: RemoveTaskRequested) -> None:
        self.remove_task(message.task_id, message.name)

    def remove_task(self, task_id: str, name: str) -> None:
        def answer(yes: bool | None) -> None:
            if yes:
                self.send_command("remove_task", task=task_id)

        self.push_screen(ConfirmScreen(f"Remove task {name!r} from the dictionary?\nIts probe, Fisher "
                                       f"vector and its row and column of every distance matrix are deleted.",
                                       yes="Remove", no="Keep"), answer)

    def open_run(self, run_id: str) -> None:
        if run_id not in self.state.searches:
            self.notify(f"no run {run_id!r} in the store", severity="warning")
            return
        self._fuse.show_run(run_id)
        self.action_show_tab("fuse")
        self.load_run(run_id)

    def export_result(self, run_id: str | None) -> None:
        s = self.state.searches.get(run_id) if run_id else None
        if s is None or not s.result or not isinstance(s.result.get("genotype"), dict):
            self.notify("nothing to export: the search has no result yet", severity="warning")
            return
        from tanas_tui.components.export_form import ExportScreen

        def chosen(choice: dict | None) -> None:
            if not choice:
                return
            if choice["format"] == "genotype":
                self._export(s.id, dict(s.result), Path(choice["output"]))
            else:
                self._export_model(s.id, choice["format"], choice["output"])

        self.push_screen(ExportScreen(s.id), chosen)

    @work(thread=True, group="export")
    def _export_model(self, run_id: str, fmt: str, output: str) -> None:
        """A model file needs the trained weights and torch: the export job (it only reads the store) runs here."""
        from tanas_tui.common import load_cli_config
        from tanas_tui.runner import job_result, run_job

        try:
            cfg = load_cli_config(self.config_path, self.store_path, check_classes=False)
            out = job_result(run_job("export", cfg, on_event=lambda event: None, run=run_id, format=fmt,
                                     output=output))
        except Exception as exc:  # noqa: BLE001 - shown, never raised into the UI
            self.call_from_thread(self.notify, f"export of {run_id} failed: {exc}", severity="error", timeout=10)
            return
        self.call_from_thread(self.notify, f"{fmt} of {run_id} written to {out['path']}", timeout=10)

    @work(thread=True, group="export")
    def _export(self, run_id: str, result: dict[str, Any], path: Path) -> None:
        try:
            path.write_text(json.dumps({**result["genotype"], "hash": result.get("hash")}, indent=2) + "\n")
        except OSError as exc:
            self.call_from_thread(self.notify, f"export failed: {exc}", severity="error")
            return
        self.call_from_thread(self.notify, f"genotype of {run_id} written to {path}", timeout=10)

    @on(TabbedContent.TabActivated)
    def _tab_changed(self, event: TabbedContent.TabActivated) -> None:
        # hidden panels are not refreshed; a newly shown one catches up with what it missed
        pane = event.pane.id or ""
        if not hasattr(self, "_panels") or pane != self._tabs.active:
            return
        self._focus_main(pane)
        stale = self._stale.pop(pane, set())
        if stale and pane in TABS:
            panel = self._panels[TABS.index(pane)]
            try:
                panel.refresh_state(stale)
            except Exception as exc:  # noqa: BLE001
                self.notify(f"{panel.id}: {type(exc).__name__}: {exc}", severity="error")

    async def action_quit(self) -> None:
        if self.engine_state in ("connected", "connecting", "starting"):
            self._quit_message = (f"tanas-tui: the engine keeps running for {self.store_path}; "
                                  f"`tanas-tui engine stop` ends it.")
        self.exit(message=self._quit_message or None)


def _short_path(path: Path) -> str:
    """The store path as the user would type it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        home = str(Path.home())
        text = str(path)
        return "~" + text[len(home):] if text.startswith(home + "/") else text


def run_app(store_path: Path, config: Any = None, config_path: Path | None = None) -> None:
    app = TanasApp(store_path, config, config_path)
    app.run()
    if app.return_code not in (None, 0):
        raise SystemExit(app.return_code)
