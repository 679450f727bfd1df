"""The engine's job queue in the UI (`j`): the running job and the queued ones, refreshed every second from the
engine's `status` reply, then the jobs that ended while this window followed (done, failed, stopped) with their
duration and, for a failed one, why; `x` cancels the selected job (a queued one leaves the queue, the running one
stops at its next safe point) after asking: the screen posts the request to the app, which sends it through its
link. Without an engine it shows the history alone."""
from __future__ import annotations

import time
from typing import Any, Callable

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from engine.service import protocol as P
from tanas_tui.components.dialogs import ConfirmScreen
from tanas_tui.components.messages import ControlRequested
from tanas_tui.units import duration

REFRESH = 1.0


COLUMNS = ("job", "kind", "state", "since", "took", "reason")
STATE_STYLE = {"done": "green", "failed": "bold red", "stopped": "yellow"}


def job_rows(status: dict[str, Any], now: float) -> list[tuple]:
    rows = []
    job = status.get("job")
    if job:
        state = "paused" if job.get("paused") else "running"
        rows.append((job["id"], job.get("kind", "?"), Text(state, style="bold green" if state == "running" else "yellow"),
                     f"started {duration(now - (job.get('started') or now))} ago", "", ""))
    for position, queued in enumerate(status.get("queue") or [], 1):
        rows.append((queued["id"], queued.get("kind", "?"), Text(f"queued #{position}", style="cyan"),
                     f"submitted {duration(now - (queued.get('submitted') or now))} ago", "", ""))
    return rows


def history_rows(jobs: list[Any], now: float, skip: set[str]) -> list[tuple]:
    """The ended jobs (model JobInfo), most recent first; `skip`: the ones the engine still lists."""
    rows = []
    for info in jobs:
        if info.job in skip:
            continue
        since = f"ended {duration(now - info.ended)} ago" if info.ended is not None else "ended"
        reason = info.message if info.state != "done" else ""
        rows.append((info.job, info.kind or "?", Text(info.state, style=STATE_STYLE.get(info.state, "dim")), since,
                     duration(info.seconds) if info.seconds else "—", Text(reason, style="red" if reason else "")))
    return rows


class JobsScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,j", "close", "Close"), Binding("x", "cancel_job", "Cancel job")]
    DEFAULT_CSS = """
    JobsScreen { align: center middle; }
    JobsScreen > Vertical { width: 95%; height: 80%; border: round $primary; background: $surface; }
    #jobs-table { height: 1fr; }
    #jobs-note { height: auto; color: $text-muted; padding: 0 1; }
    """

    def __init__(self, client_factory: Callable[[], Any] | None, clock: Callable[[], float] = time.time,
                 history: Callable[[], list[Any]] = list) -> None:
        """`client_factory` None: no engine, the history alone; `history`: the model's ended jobs."""
        super().__init__()
        self.client_factory, self.clock, self.history = client_factory, clock, history
        self.status: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield DataTable(id="jobs-table", cursor_type="row")
            yield Static("asking the engine…", id="jobs-note")

    def on_mount(self) -> None:
        table = self.query_one("#jobs-table", DataTable)
        for col in COLUMNS:
            table.add_column(col, key=col)
        table.border_title = "engine jobs"
        if self.client_factory is None:
            self.show({})
            return
        self.poll()
        self.set_interval(REFRESH, self.poll)

    @work(exclusive=True, group="jobs")
    async def poll(self) -> None:
        client = self.client_factory()
        try:
            await client.connect()
            status = (await client.request(P.Status())).data
        except Exception as exc:  # noqa: BLE001 - no engine: say so, keep the history
            self.show({})
            self.query_one("#jobs-note", Static).update(Text(f"no answer from the engine: {exc}"))
            return
        finally:
            await client.close()
        self.show(status)

    def show(self, status: dict[str, Any]) -> None:
        self.status = status
        table = self.query_one("#jobs-table", DataTable)
        now = self.clock()
        rows = job_rows(status, now)
        rows += history_rows(self.history(), now, {r[0] for r in rows})
        cursor = table.cursor_row
        table.clear()
        for row in rows:
            table.add_row(*row, key=row[0])
        if rows:
            table.move_cursor(row=min(cursor, len(rows) - 1))
        live = sum(1 for r in rows if r[4] == "")
        note = ("x: cancel the selected job · esc: close" if live else "no job running or queued · esc: close") + \
            ("" if self.client_factory is not None else " · no engine running: the jobs this window saw end")
        self.query_one("#jobs-note", Static).update(note)

    def action_cancel_job(self) -> None:
        table = self.query_one("#jobs-table", DataTable)
        if not table.row_count:
            return
        job = str(table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value)
        if table.get_row(job)[4] != "":
            self.app.notify(f"job {job} has ended already", severity="warning", timeout=3)
            return
        queued = "queued" in str(table.get_row(job)[2])

        def answer(yes: bool | None) -> None:
            if yes:
                self.post_message(ControlRequested("stop", job=job, confirmed=True))
                self.poll()

        what = "It leaves the queue." if queued else "It stops at its next safe point; its progress is kept."
        self.app.push_screen(ConfirmScreen(f"Cancel job {job}?\n{what}", yes="Cancel job", no="Keep it"), answer)

    def action_close(self) -> None:
        self.dismiss(None)
