"""The engine's job queue in the UI (`j`): the running job and the queued ones, refreshed every second from the
engine's `status` reply; `x` cancels the selected job (a queued one leaves the queue, the running one stops at its
next safe point) after asking: the screen posts the request to the app, which sends it through its link."""
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


def job_rows(status: dict[str, Any], now: float) -> list[tuple[str, str, Text, str]]:
    rows = []
    job = status.get("job")
    if job:
        state = "paused" if job.get("paused") else "running"
        rows.append((job["id"], job.get("kind", "?"), Text(state, style="bold green" if state == "running" else "yellow"),
                     f"started {duration(now - (job.get('started') or now))} ago"))
    for position, queued in enumerate(status.get("queue") or [], 1):
        rows.append((queued["id"], queued.get("kind", "?"), Text(f"queued #{position}", style="cyan"),
                     f"submitted {duration(now - (queued.get('submitted') or now))} ago"))
    return rows


class JobsScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,j", "close", "Close"), Binding("x", "cancel_job", "Cancel job")]
    DEFAULT_CSS = """
    JobsScreen { align: center middle; }
    JobsScreen > Vertical { width: 90%; max-width: 110; height: 70%; border: round $primary; background: $surface; }
    #jobs-table { height: 1fr; }
    #jobs-note { height: auto; color: $text-muted; padding: 0 1; }
    """

    def __init__(self, client_factory: Callable[[], Any], clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.client_factory, self.clock = client_factory, clock
        self.status: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield DataTable(id="jobs-table", cursor_type="row")
            yield Static("asking the engine…", id="jobs-note")

    def on_mount(self) -> None:
        table = self.query_one("#jobs-table", DataTable)
        for col in ("job", "kind", "state", "since"):
            table.add_column(col, key=col)
        table.border_title = "engine jobs"
        self.poll()
        self.set_interval(REFRESH, self.poll)

    @work(exclusive=True, group="jobs")
    async def poll(self) -> None:
        client = self.client_factory()
        try:
            await client.connect()
            status = (await client.request(P.Status())).data
        except Exception as exc:  # noqa: BLE001 - no engine: say so
            self.query_one("#jobs-note", Static).update(Text(f"no answer from the engine: {exc}"))
            return
        finally:
            await client.close()
        self.show(status)

    def show(self, status: dict[str, Any]) -> None:
        self.status = status
        table = self.query_one("#jobs-table", DataTable)
        rows = job_rows(status, self.clock())
        cursor = table.cursor_row
        table.clear()
        for row in rows:
            table.add_row(*row, key=row[0])
        if rows:
            table.move_cursor(row=min(cursor, len(rows) - 1))
        note = "x: cancel the selected job · esc: close" if rows else "no job running or queued"
        self.query_one("#jobs-note", Static).update(note)

    def action_cancel_job(self) -> None:
        table = self.query_one("#jobs-table", DataTable)
        if not table.row_count:
            return
        job = str(table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value)
        queued = "queued" in str(table.get_row(job)[2])

        def answer(yes: bool | None) -> None:
            if yes:
                self.post_message(ControlRequested("stop", job=job, confirmed=True))
                self.poll()

        what = "It leaves the queue." if queued else "It stops at its next safe point; its progress is kept."
        self.app.push_screen(ConfirmScreen(f"Cancel job {job}?\n{what}", yes="Cancel job", no="Keep it"), answer)

    def action_close(self) -> None:
        self.dismiss(None)
