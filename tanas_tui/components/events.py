"""Events panel (lazygit's command log, k9s events): every logged engine event with its time and level, filterable
by text and by level; warnings and errors stay here after their toasts are gone."""
from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Input

from tanas_tui.components.line import Line
from tanas_tui.event_log import EVENTS, Entry, EventLog

LEVEL_STYLE = {"info": "", "warning": "bold yellow", "error": "bold red"}
LEVEL_FILTERS = (None, "warning", "error")   # all, warnings and errors, errors only


class EventsPanel(Vertical):
    BINDINGS = [
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("w", "cycle_level", "Level"),
    ]

    def __init__(self, log: EventLog, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.log_ = log
        self.text = ""
        self.level: str | None = None
        self._shown: list[int] = []      # entry numbers in the table, in order

    def compose(self) -> ComposeResult:
        yield Line("", id="events-header")
        yield Input(placeholder="filter events (/ to focus, enter or esc back to the list)", id="event-filter")
        yield DataTable(id="events-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one("#events-table", DataTable)
        for col in ("time", "level", "event", "message"):
            table.add_column(col, key=col)
        self._header()

    def visible(self) -> list[Entry]:
        return [e for e in self.log_.entries if e.matches(self.text, self.level)]

    def refresh_state(self, topics: set[str]) -> None:
        if EVENTS not in topics:
            return
        self._sync()

    def _row(self, e: Entry) -> tuple:
        style = LEVEL_STYLE.get(e.level, "")
        return (time.strftime("%H:%M:%S", time.localtime(e.time)), Text(e.level, style=style), e.kind,
                Text(e.message, style=style if e.level != "info" else ""))

    def _sync(self, rebuild: bool = False) -> None:
        table = self.query_one("#events-table", DataTable)
        entries = self.visible()
        numbers = [e.n for e in entries]
        if rebuild or numbers[:len(self._shown)] != self._shown:
            table.clear()
            self._shown = []
        at_end = table.cursor_row >= table.row_count - 1
        for e in entries[len(self._shown):]:
            table.add_row(*self._row(e), key=str(e.n))
            self._shown.append(e.n)
        if at_end and table.row_count:
            table.move_cursor(row=table.row_count - 1)   # follow new events unless the user scrolled up
        self._header()

    def _header(self) -> None:
        counts = self.log_.counts()
        t = Text()
        t.append(f"{sum(counts.values())} events", style="bold")
        t.append(f"  {counts['warning']} warnings", style="yellow" if counts["warning"] else "dim")
        t.append(f"  {counts['error']} errors", style="red" if counts["error"] else "dim")
        shown = {None: "all levels", "warning": "warnings and errors", "error": "errors"}[self.level]
        t.append(f"   showing {len(self._shown)}: {shown}", style="dim")
        if self.text:
            t.append(f" matching {self.text!r}", style="dim")
        t.append("   w: level  /: filter", style="dim")
        self.query_one("#events-header", Line).set(t)

    # -- actions --------------------------------------------------------------------------------------------------
    def action_filter(self) -> None:
        self.query_one("#event-filter", Input).focus()

    def action_cycle_level(self) -> None:
        self.level = LEVEL_FILTERS[(LEVEL_FILTERS.index(self.level) + 1) % len(LEVEL_FILTERS)]
        self._sync(rebuild=True)

    @on(Input.Changed, "#event-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.text = event.value
        self._sync(rebuild=True)

    @on(Input.Submitted, "#event-filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        self.query_one("#events-table", DataTable).focus()

    def on_key(self, event) -> None:
        if event.key == "escape" and isinstance(self.app.focused, Input) and self.app.focused.id == "event-filter":
            event.stop()
            self.query_one("#events-table", DataTable).focus()
