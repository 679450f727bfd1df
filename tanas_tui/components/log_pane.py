"""The log pane (`l`): the engine's log (`runs/engine.log`, every engine of the store) or one run's log (the engine
log's lines and this window's events that name the run or one of its jobs), full screen, read again every second.

Keys: `w` level (all, warnings and errors, errors), `&` filter (only the lines that contain the text), `/` search
(matches highlighted, `n` / `N` next / previous), `f` follow the end (on by default; scrolling up does not turn it
off, `f` does), `s` switches between the engine's log and the run's."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Input, RichLog

from tanas_tui.components.line import Line
from tanas_tui.event_log import EventLog, read_log_lines

REFRESH = 1.0
MAX_LINES = 20_000
LEVELS = (None, "warning", "error")
LEVEL_NAME = {None: "all levels", "warning": "warnings and errors", "error": "errors"}
LEVEL_STYLE = {"warning": "yellow", "error": "bold red"}


class LogScreen(Screen[None]):
    BINDINGS = [Binding("escape,q,l", "close", "Close"), Binding("w", "level", "Level"),
                Binding("ampersand", "filter", "Filter", key_display="&"),
                Binding("slash", "search", "Search", key_display="/"),
                Binding("n", "next_match(1)", "Next", show=False), Binding("N", "next_match(-1)", "Prev", show=False),
                Binding("f", "follow", "Follow"), Binding("s", "switch", "Engine/run", show=False)]
    DEFAULT_CSS = """
    LogScreen #log-header { height: 1; padding: 0 1; background: $panel; }
    LogScreen #log-body { height: 1fr; }
    LogScreen #log-input { height: 1; border: none; padding: 0 1; background: $boost; display: none; }
    LogScreen #log-input.-shown { display: block; }
    """

    def __init__(self, log_path: Path, events: EventLog | None = None, run_id: str | None = None,
                 jobs: Any = None) -> None:
        super().__init__()
        self.log_path, self.events, self.run_id, self.jobs = Path(log_path), events, run_id, jobs
        self.source = "run" if run_id else "engine"
        self.lines: list[tuple[str, str]] = []     # (level, text) of the engine's log, as read so far
        self._offset = 0
        self.level: str | None = None
        self.filter = ""
        self.search = ""
        self.follow = True
        self.shown: list[tuple[str, str]] = []     # what the body shows, in order
        self.matches: list[int] = []               # indices into shown
        self._match = -1
        self._input_mode = ""

    def compose(self) -> ComposeResult:
        yield Line("", id="log-header")
        yield RichLog(id="log-body", wrap=False, markup=False, highlight=False, auto_scroll=False,
                      max_lines=MAX_LINES)
        yield Input(id="log-input")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._read()
        self.set_interval(REFRESH, self._read)
        self.query_one("#log-body", RichLog).focus()

    # -- reading --------------------------------------------------------------------------------------------------
    def _read(self) -> None:
        before = self._offset
        new, self._offset = read_log_lines(self.log_path, self._offset)
        if self._offset < before:
            self.lines, self.shown = [], []   # the log was rotated: it is read again from its start
        if new or not self.shown:
            self.lines += new
            del self.lines[:-MAX_LINES]
            self._redraw(rebuild=not self.shown or self.source == "run", added=new)

    def _run_names(self) -> set[str]:
        """The run id and the ids of its jobs (the engine's log names jobs, its queued line the job's params)."""
        names = {self.run_id} if self.run_id else set()
        if self.jobs is not None and self.run_id:
            names |= {j.job for j in self.jobs.by_id.values() if j.params.get("run_id") == self.run_id}
        for _, text in self.lines:
            if self.run_id and self.run_id in text and " queued " in f" {text} ":
                names.add(text.split(" queued ", 1)[1].split(" ", 1)[0])
        return names

    def source_lines(self) -> list[tuple[str, str]]:
        if self.source == "engine":
            return self.lines
        names = self._run_names()
        out = [(level, text) for level, text in self.lines if any(n in text for n in names)]
        for e in self.events.entries if self.events is not None else ():
            if any(n in e.message for n in names):
                stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.time))
                out.append((e.level, f"{stamp} {e.level.upper()} [{e.kind}] {e.message}"))
        return out

    def _keep(self, level: str, text: str) -> bool:
        if self.level == "warning" and level == "info" or self.level == "error" and level != "error":
            return False
        return not self.filter or self.filter.lower() in text.lower()

    def _line(self, level: str, text: str) -> Text:
        t = Text(text, style=LEVEL_STYLE.get(level, ""))
        if self.search:
            t.highlight_words([self.search], style="reverse", case_sensitive=False)
        return t

    def _redraw(self, rebuild: bool = True, added: list[tuple[str, str]] | None = None) -> None:
        body = self.query_one("#log-body", RichLog)
        if rebuild:
            self.shown = [(lv, t) for lv, t in self.source_lines() if self._keep(lv, t)]
            body.clear()
            fresh = self.shown
        else:
            fresh = [(lv, t) for lv, t in added or () if self._keep(lv, t)]
            self.shown += fresh
        for level, text in fresh:
            body.write(self._line(level, text))
        needle = self.search.lower()
        self.matches = [i for i, (_, t) in enumerate(self.shown) if needle and needle in t.lower()]
        if self.follow:
            body.scroll_end(animate=False)
        self._header()

    def _header(self) -> None:
        t = Text()
        what = f"run {self.run_id}" if self.source == "run" else f"engine log {self.log_path.name}"
        t.append(what, style="bold")
        t.append(f"  {len(self.shown)} lines · {LEVEL_NAME[self.level]}", style="dim")
        if self.filter:
            t.append(f" · containing {self.filter!r}", style="dim")
        if self.search:
            at = f"{self._match + 1}/" if self._match >= 0 else ""
            t.append(f" · {at}{len(self.matches)} matches for {self.search!r}", style="bold" if self.matches else "dim")
        t.append(" · following" if self.follow else " · paused (f: follow)", style="green" if self.follow else "yellow")
        if not self.lines and self.source == "engine":
            t.append("  (no engine log yet: no engine has run on this store)", style="dim")
        self.query_one("#log-header", Line).set(t)

    # -- keys -----------------------------------------------------------------------------------------------------
    def action_level(self) -> None:
        self.level = LEVELS[(LEVELS.index(self.level) + 1) % len(LEVELS)]
        self._redraw()

    def _ask(self, mode: str, placeholder: str, value: str) -> None:
        self._input_mode = mode
        box = self.query_one("#log-input", Input)
        box.placeholder, box.value = placeholder, value
        box.add_class("-shown")
        box.focus()

    def action_filter(self) -> None:
        self._ask("filter", "show only lines containing… (enter: apply, empty: all lines)", self.filter)

    def action_search(self) -> None:
        self._ask("search", "search… (enter: first match, then n / N)", self.search)

    @on(Input.Submitted, "#log-input")
    def _submitted(self, event: Input.Submitted) -> None:
        box = self.query_one("#log-input", Input)
        box.remove_class("-shown")
        self.query_one("#log-body", RichLog).focus()
        if self._input_mode == "filter":
            self.filter = event.value.strip()
            self._redraw()
        else:
            self.search = event.value.strip()
            self._match = -1
            self._redraw()
            self.action_next_match(1)

    def on_key(self, event) -> None:
        box = self.query_one("#log-input", Input)
        if event.key == "escape" and self.focused is box:
            event.stop()
            box.remove_class("-shown")
            self.query_one("#log-body", RichLog).focus()

    def action_next_match(self, step: int) -> None:
        if not self.matches:
            self._header()
            return
        self._match = (self._match + step) % len(self.matches)
        self.follow = False   # looking at a match: the end would take it away
        body = self.query_one("#log-body", RichLog)
        body.scroll_to(y=max(0, self.matches[self._match] - body.size.height // 2), animate=False)
        self._header()

    def action_follow(self) -> None:
        self.follow = not self.follow
        if self.follow:
            self.query_one("#log-body", RichLog).scroll_end(animate=False)
        self._header()

    def action_switch(self) -> None:
        if not self.run_id:
            self.app.notify("open the log pane on a run (Runs or FUSE tab) to see its log", severity="warning",
                            timeout=3)
            return
        self.source = "engine" if self.source == "run" else "run"
        self._redraw()

    def action_close(self) -> None:
        self.dismiss(None)
