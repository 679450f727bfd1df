"""The Textual app: six panels over one `UiModel`, fed by store reads (thread workers) and by its `EngineLink`.

Everything reaches the app as a typed message: the link's (`tanas_tui/link.py`: events, connection state, replies)
and the panels' intents (`components/messages.py`). Engine events are queued and a 10 Hz timer reduces them into
the model in batches, refreshing only the panels whose topics changed, so a search streaming α steps at full speed
never stalls the event loop.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterable

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, TabbedContent, TabPane

from engine.service import protocol as P
from tanas_tui.components.add_task_form import AddTaskScreen
from tanas_tui.components.dialogs import ConfirmScreen
from tanas_tui.components.dictionary import DictionaryPanel
from tanas_tui.components.distances import DistancesPanel
from tanas_tui.components.events import EventsPanel
from tanas_tui.components.fuse import FusePanel
from tanas_tui.components.help_screen import HelpScreen
from tanas_tui.components.messages import (AddTaskRequested, ControlRequested, ExportRun, OpenRun,
                                           RemoveTaskRequested, SubmitJob)
from tanas_tui.components.palette import TanasCommands
from tanas_tui.components.runs import RunsPanel
from tanas_tui.components.space_tree import SpacePanel
from tanas_tui.components.status_bar import StatusBar
from tanas_tui.event_log import EventLog
from tanas_tui.link import (CommandAnswered, EngineEvents, EngineHistory, EngineLink, EngineStatus, LinkChanged,
                            LinkNotice, StoreChanged)
from tanas_tui.model import DISTANCES, SEARCHES, SPACES, TASKS, UiModel
from tanas_tui.model.trajectory import LIVE
from tanas_tui.units import duration

TABS = ("dictionary", "distances", "space", "fuse", "runs", "events")
MAIN_WIDGET = {"dictionary": "#tasks", "distances": "#distance-table", "space": "#space-tree", "fuse": "#candidates",
               "runs": "#runs-table", "events": "#events-table"}
APPLY_INTERVAL = 0.1       # seconds between batches of engine events
APPLY_BUDGET = 0.02        # seconds of event application per tick
APPLY_CHUNK = 50
CONTROL_DONE = {"pause": "pause requested for", "resume": "resumed", "stop": "stop requested for"}


class TanasApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "tanas-tui"
    COMMANDS = App.COMMANDS | {TanasCommands}
    BINDINGS = [
        # q is in the help screen, not the footer: at 80 columns the footer holds each tab's keys and c, j, ?
        Binding("q", "quit", "Quit", show=False),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("1", "show_tab('dictionary')", "Dict", show=False),
        Binding("2", "show_tab('distances')", "Dist", show=False),
        Binding("3", "show_tab('space')", "Space", show=False),
        Binding("4", "show_tab('fuse')", "FUSE", show=False),
        Binding("5", "show_tab('runs')", "Runs", show=False),
        Binding("6", "show_tab('events')", "Events", show=False),
        Binding("c", "compare", "Compare"),
        Binding("j", "jobs", "Jobs"),
        Binding("l", "log", "Log", show=False),   # in the help screen: the footer is full at 80 columns
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
        self.model = UiModel(str(self.store_path))
        self.model.config = config
        self.event_log = EventLog(self.model.task_name)
        self._inbox: deque[P.Event] = deque()
        self.link = EngineLink(self, self.store_path, config_path, client_factory=client_factory,
                               backlog=lambda: len(self._inbox))
        self.catalog: dict[str, tuple[str, ...] | None] | None = None
        self._connect = connect
        self._read_store = read_store
        self._loading_runs: set[str] = set()
        self._stale: dict[str, set[str]] = {}
        self.painted = threading.Event()   # set after the first paint; heavy workers (torch) wait for it

    # -- layout ---------------------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with TabbedContent(initial="dictionary", id="tabs"):
            with TabPane("Dictionary", id="dictionary"):
                yield DictionaryPanel(self.model, self.config, id="dictionary-panel")
            with TabPane("Distances", id="distances"):
                k = self.config.dictionary.k if self.config is not None else 3
                yield DistancesPanel(self.model, k=k, id="distances-panel")
            with TabPane("Space", id="space"):
                yield SpacePanel(self.model, self.config, id="space-panel")
            with TabPane("FUSE", id="fuse"):
                yield FusePanel(self.model, id="fuse-panel")
            with TabPane("Runs", id="runs"):
                yield RunsPanel(self.model, self.clock, id="runs-panel")
            with TabPane("Events", id="events"):
                yield EventsPanel(self.event_log, id="events-panel")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        # kept so that refreshes work while a modal screen is on top (queries look at the active screen only)
        self._panels = [self.query_one(f"#{name}-panel") for name in TABS]
        self._status = self.query_one(StatusBar)
        self._tabs = self.query_one("#tabs", TabbedContent)
        self._fuse = self.query_one(FusePanel)
        self._status.store = _short_path(self.store_path)
        if self.config is not None:
            self.model.device = self.config.project.device
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
            self.link.follow()

    def panels(self) -> list[Any]:
        return list(getattr(self, "_panels", []))

    # -- engine events --------------------------------------------------------------------------------------------
    def ingest(self, events: Iterable[P.Event]) -> None:
        """Queue engine events (protocol event objects), reduced in the next batch. From the event loop only:
        threads post `EngineEvents`."""
        self._inbox.extend(events)

    def on_engine_events(self, message: EngineEvents) -> None:
        self.ingest(message.events)

    def _apply_inbox(self) -> None:
        if not self._inbox or not self.model.loaded:
            return
        # a time budget per tick: a burst larger than that is applied over the next ticks, never in one stall
        deadline = time.perf_counter() + APPLY_BUDGET
        topics: set[str] = set()
        now = self.clock()
        while self._inbox and time.perf_counter() < deadline:
            batch = [self._inbox.popleft() for _ in range(min(APPLY_CHUNK, len(self._inbox)))]
            topics |= self.event_log.add_many(batch, now)   # before the model: names of removed tasks still known
            topics |= self.model.apply_many(batch, now)
        self.refresh_panels(topics)

    def refresh_panels(self, topics: set[str]) -> None:
        for level, message in self.model.drain_notices():
            severity = level if level in ("error", "information") else "warning"
            self.notify(message, severity=severity, timeout=4 if severity == "information" else 8)
        if not topics:
            return
        active = self._tabs.active if hasattr(self, "_tabs") else ""
        with self.batch_update():
            for name, panel in zip(TABS, self.panels()):
                if name != active:
                    # hidden panels catch up when their tab is shown
                    self._stale.setdefault(name, set()).update(topics)
                    continue
                self._refresh_panel(panel, topics | self._stale.pop(name, set()))
        for tid in list(self.model.needs_task_read):
            self.model.needs_task_read.discard(tid)
            if self._read_store:
                self.load_task(tid)
        for s in self.model.searches.values():
            if s.gap and s.id not in self._loading_runs and self._read_store:
                self.load_run(s.id)
        self._update_status()

    def _refresh_panel(self, panel: Any, topics: set[str]) -> None:
        try:
            panel.refresh_state(topics)
        except Exception as exc:  # noqa: BLE001 - a panel bug must not take the app down
            self.log.error(f"refresh of {panel.id} failed: {exc!r}")
            self.notify(f"{panel.id}: {type(exc).__name__}: {exc}", severity="error")

    def _update_status(self) -> None:
        status = getattr(self, "_status", None)
        if status is None:
            return
        status.engine = self.link.state
        status.writer = f"headless run pid {self.link.writer_pid}" if self.link.writer_pid else ""
        status.device = self.model.device
        status.executor = self.model.executor
        job = self.model.current_job()
        if job is None:
            status.job = ""
            return
        left = self.model.job_eta(job.job, self.clock())    # the whole job's time left, not only its stage's
        status.job = job.line() + (f" · ETA ~{duration(left)}" if left is not None else "")

    # -- store reads (thread workers) -----------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="store")
    def load_store(self) -> None:
        from tanas_tui.model.snapshot import read_store

        try:
            snap = read_store(self.store_path)
        except Exception as exc:  # noqa: BLE001 - a missing or locked store is shown, not raised
            self.call_from_thread(self._store_failed, exc)
            return
        self.call_from_thread(self._store_loaded, snap)

    def _store_failed(self, exc: Exception) -> None:
        self.model.loaded = True   # live events can still be shown
        self.notify(f"cannot read the store: {exc}", severity="error", timeout=15)
        self.refresh_panels({TASKS, SEARCHES})

    def _store_loaded(self, snap: Any) -> None:
        self.refresh_panels(self.model.load_snapshot(snap) | {DISTANCES, SPACES})
        fuse = self._fuse
        running = self.model.running_search()
        target = fuse.run_id or (running.id if running else None)
        if target is not None and target in self.model.searches and not self.model.searches[target].loaded:
            fuse.show_run(target, pin=fuse.pinned)
            self.load_run(target)

    @work(thread=True, group="task")
    def load_task(self, task_id: str) -> None:
        from tanas_tui.model.snapshot import read_task

        try:
            attrs = read_task(self.store_path, task_id)
        except Exception:  # noqa: BLE001 - not in the store yet: the live row stays as it is
            return
        self.call_from_thread(lambda: self.refresh_panels(self.model.load_task(task_id, attrs)))

    @work(thread=True, group="run")
    def load_run(self, run_id: str) -> None:
        from tanas_tui.model.snapshot import read_search

        self._loading_runs.add(run_id)
        try:
            record = read_search(self.store_path, run_id)
        except Exception as exc:  # noqa: BLE001
            self.call_from_thread(self._run_failed, run_id, exc)
            return
        self.call_from_thread(self._run_loaded, record)

    def _run_failed(self, run_id: str, exc: Exception) -> None:
        self._loading_runs.discard(run_id)
        s = self.model.searches.get(run_id)
        if s is not None:
            s.gap = False
        self.notify(f"cannot read run {run_id}: {exc}", severity="error")

    def _run_loaded(self, record: Any) -> None:
        self._loading_runs.discard(record.id)
        self.refresh_panels(self.model.load_search(record))

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

    def reload_following(self) -> None:
        """Re-reads the store and the search FUSE follows (or the running one)."""
        self.load_store()
        s = self.model.running_search()
        run_id = self._fuse.run_id or (s.id if s else None)
        if run_id and run_id not in self._loading_runs:
            self.load_run(run_id)

    # -- what the link says ---------------------------------------------------------------------------------------
    def on_link_changed(self, message: LinkChanged) -> None:
        alive = True if message.state in ("connected", "connecting", "starting") or message.writer_pid else \
            False if message.state in ("not running", "disconnected") else None
        self.refresh_panels(self.model.set_engine(alive))
        self._update_status()

    def on_engine_status(self, message: EngineStatus) -> None:
        self.refresh_panels(self.model.engine_status(message.reply))

    def on_engine_history(self, message: EngineHistory) -> None:
        self.refresh_panels(self.event_log.add_history(message.lines))

    def on_store_changed(self, message: StoreChanged) -> None:
        if self._read_store:
            self.reload_following() if message.following else self.load_store()

    def on_link_notice(self, message: LinkNotice) -> None:
        self.notify(message.text, severity=message.severity, timeout=15 if message.severity == "error" else 5)

    def on_command_answered(self, message: CommandAnswered) -> None:
        command, reply = message.command, message.reply
        name = command.TYPE.replace("_", " ")
        if isinstance(command, (P.Pause, P.Resume, P.Stop)):
            self.refresh_panels(self.model.control_answered(command, reply))
        if reply is None:
            self.notify(f"{name}: {message.error}", severity="error", timeout=10)
            return
        job = reply.data.get("job")
        if isinstance(command, (P.Pause, P.Resume, P.Stop)):
            self.notify(f"{CONTROL_DONE[command.TYPE]} job {job}" if job else f"{name}: done", timeout=4)
        else:
            self.notify(f"{name}: " + (f"queued as job {job}" if job else "done"), timeout=4)

    # -- what the panels ask for (components/messages.py) ---------------------------------------------------------
    def submit(self, command: P.JobCommand) -> None:
        """Queues a job in the engine; offers to start one when none runs."""
        if self.link.connected:
            self.link.send(command)
            return

        def answer(start: bool | None) -> None:
            if start:
                self.link.start(then=command, follow=self._connect)

        self.push_screen(ConfirmScreen(f"No engine is running for {self.store_path}.\nStart one now to "
                                       f"run {command.TYPE.replace('_', ' ')}?", yes="Start engine", no="Cancel",
                                       default="yes"),   # Enter goes on with the form the user just filled
                         answer)

    @on(SubmitJob)
    def _submit_job(self, message: SubmitJob) -> None:
        self.submit(message.command)

    @on(ControlRequested)
    def _control_requested(self, message: ControlRequested) -> None:
        self.control(message)

    def control(self, request: ControlRequested) -> None:
        """Pause / resume / stop a search's job (or a job): only what an engine runs, and a stop only once asked."""
        action, run_id = request.action, request.run_id
        s = self.model.searches.get(run_id) if run_id else None
        if request.job is None:
            if s is None:
                self.notify("no search selected", severity="warning")
                return
            if s.status not in LIVE:
                self.notify(f"search {s.id} is {s.status}: nothing to {action}", severity="warning")
                return
            if action != "stop" and (action == "pause") == (s.status == "paused"):
                self.notify(f"search {s.id} is {s.status} already" if action == "pause" else
                            f"search {s.id} is not paused: nothing to resume", severity="warning")
                return
        if not self.link.connected:
            what = f"search {s.id}" if s is not None else f"job {request.job}"
            if self.link.writer_pid:
                pid = self.link.writer_pid
                self.notify(f"{what} runs in a headless process (pid {pid}), not in an engine: "
                            + ("stop it in its terminal (Ctrl-C) or with `kill -INT " + str(pid) + "`"
                               if action == "stop" else f"it cannot be {action}d from here (Ctrl-C in its "
                                                        f"terminal stops it)"), severity="warning", timeout=10)
            else:
                self.notify(f"no engine is running: nothing to {action} ({what} is not running anywhere)",
                            severity="warning")
            return
        job = request.job or self.model.job_for_run(s.id)
        if action == "stop" and not request.confirmed:
            text = (f"Stop search {s.id}?\nIt stops at its next safe point and keeps its last checkpoint: running "
                    f"the same search again resumes it." if s is not None else f"Stop job {job}?")
            self.push_screen(ConfirmScreen(text, yes="Stop", no="Keep running"), lambda yes: yes and self.control(
                ControlRequested(action, run_id=run_id, job=request.job, confirmed=True)))
            return
        self.refresh_panels(self.model.control_requested(job, action))
        self.link.send({"pause": P.Pause, "resume": P.Resume, "stop": P.Stop}[action](job=job))

    @on(OpenRun)
    def _open_run(self, message: OpenRun) -> None:
        self.open_run(message.run_id)

    @on(ExportRun)
    def _export_run(self, message: ExportRun) -> None:
        from tanas_tui.components.export_form import export_run

        export_run(self, message.run_id)

    @on(AddTaskRequested)
    def _add_task_requested(self, message: AddTaskRequested) -> None:
        self.action_add_task()

    @on(RemoveTaskRequested)
    def _remove_task_requested(self, message: RemoveTaskRequested) -> None:
        def answer(yes: bool | None) -> None:
            if yes:
                self.submit(P.RemoveTask(task=message.task_id))

        self.push_screen(ConfirmScreen(f"Remove task {message.name!r} from the dictionary?\nIts probe, Fisher "
                                       f"vector and its row and column of every distance matrix are deleted.",
                                       yes="Remove", no="Keep"), answer)

    def open_run(self, run_id: str) -> None:
        if run_id not in self.model.searches:
            self.notify(f"no run {run_id!r} in the store", severity="warning")
            return
        self._fuse.show_run(run_id)
        self.action_show_tab("fuse")
        self.load_run(run_id)

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

    def action_start_engine(self) -> None:
        self.link.start(follow=self._connect)

    def action_jobs(self) -> None:
        from tanas_tui.components.jobs_view import JobsScreen

        history = self.model.jobs.finished
        if not self.link.connected and not history():
            self.notify("no engine is running: no jobs (start one from the command palette)", severity="warning")
            return
        self.push_screen(JobsScreen(self.link.client if self.link.connected else None, self.clock, history))

    def action_log(self) -> None:
        """The log pane: the run of the Runs tab's cursor or the FUSE tab's run when one of those tabs is shown,
        else the engine's log."""
        from tanas_tui.client import engine_log_path
        from tanas_tui.components.log_pane import LogScreen

        run_id = None
        if self._tabs.active == "runs":
            s = self._panels[TABS.index("runs")]._cursor_run()
            run_id = s.id if s is not None else None
        elif self._tabs.active == "fuse":
            run_id = self._fuse.run_id
        self.push_screen(LogScreen(engine_log_path(self.store_path), self.event_log, run_id, self.model.jobs))

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.config))

    def action_compare(self) -> None:
        from tanas_tui.components.compare import CompareScreen

        target = self.config.target.name if self.config is not None and self.config.target is not None else None
        # opened once the compare screen is gone: the tabs do not switch underneath a modal screen
        self.push_screen(CompareScreen(self.store_path, target),
                         lambda run_id: run_id and self.call_after_refresh(self.open_run, run_id))

    def action_reload(self) -> None:
        self.load_store()
        if self._fuse.run_id:
            self.load_run(self._fuse.run_id)

    def action_add_task(self) -> None:
        existing = {info.name for info in self.model.tasks.values()}

        def done(result: dict | None) -> None:
            if result:
                self.submit(P.AddTask(task=result["task"], role=result["role"]))

        self.push_screen(AddTaskScreen(existing, self.catalog), done)

    @on(TabbedContent.TabActivated)
    def _tab_changed(self, event: TabbedContent.TabActivated) -> None:
        # hidden panels are not refreshed; a newly shown one catches up with what it missed
        pane = event.pane.id or ""
        if not hasattr(self, "_panels") or pane != self._tabs.active:
            return
        self._focus_main(pane)
        stale = self._stale.pop(pane, set())
        if stale and pane in TABS:
            self._refresh_panel(self._panels[TABS.index(pane)], stale)

    async def action_quit(self) -> None:
        message = None
        if self.link.state in ("connected", "connecting", "starting"):
            message = (f"tanas-tui: the engine keeps running for {self.store_path}; "
                       f"`tanas-tui engine stop` ends it.")
        self.exit(message=message)


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
