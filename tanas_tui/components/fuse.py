"""FUSE panel: round / alternation progress with ETA, the candidates table, α and loss plots, pause / resume / stop,
and the result with export once the search is done. A run of the comparison that is not FUSE (random search, a
fixed network) shows as what it is: its own candidates, no rounds, no α.

Pause / resume / stop are intents (`ControlRequested`): the app checks and sends them, and the model holds what is
in flight; this panel only shows `model.search_status`."""
from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, ProgressBar, Static

from tanas_tui.components import fuse_view as view
from tanas_tui.components.fuse_plots import PlotView, plots
from tanas_tui.components.genotype_view import GenotypeScreen
from tanas_tui.components.line import Line
from tanas_tui.components.messages import ControlRequested, ExportRun
from tanas_tui.components.table_sync import sync_rows
from tanas_tui.model import JOBS, SEARCHES, SearchRun, UiModel, search_topic
from tanas_tui.units import duration

PLOT_INTERVAL = 0.5   # seconds between plot redraws while a search streams


class FusePanel(Vertical):
    BINDINGS = [
        Binding("p", "control('pause')", "Pause"),
        Binding("r", "control('resume')", "Resume"),
        Binding("s", "control('stop')", "Stop"),
        Binding("e", "export", "Export"),
        Binding("g", "genotype", "Genotype"),
        # in the help screen, not the footer: 80 columns hold the footer's keys and the app's c and j
        Binding("left_square_bracket", "round(-1)", "Round", key_display="[ ]", show=False),
        Binding("right_square_bracket", "round(1)", "Next round", show=False),
        Binding("f", "toggle_follow", "Follow", show=False),
    ]

    def __init__(self, state: UiModel, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state = state
        self.run_id: str | None = None
        self.pinned = False   # False: the panel moves to whichever search is running; True: it stays on run_id
        self.params: dict[str, int | None] = {}   # genotype hash -> parameter count (computed in a worker)
        self.round_choice: int | None = None   # None: all rounds in the plots, the current round in the table
        self._rendered: dict[str, tuple] = {}
        self._columns: tuple[str, ...] = ()
        self._result_shown: Text | None = None
        self._plotted = 0.0
        self._plotted_run: str | None = None
        self._plot_timer: Any = None

    def compose(self) -> ComposeResult:
        yield Line("", id="fuse-header")
        with Horizontal(id="fuse-progress"):
            yield Line("round", id="round-label", classes="plabel")
            yield ProgressBar(total=1, show_eta=False, id="round-bar")
            yield Line("alternation", id="alt-label", classes="plabel")
            yield ProgressBar(total=1, show_eta=False, id="alt-bar")
            yield Line("", id="fuse-eta")
        yield DataTable(id="candidates", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="fuse-plots"):
            yield PlotView("softmax(α)", "share", id="alpha-plot")
            yield PlotView("loss", "cross-entropy", id="loss-plot")
        yield Static("", id="fuse-note")
        yield Static("", id="fuse-result")

    def on_mount(self) -> None:
        self._set_columns(view.FUSE_COLUMNS)
        self.query_one("#fuse-note", Static).display = False
        self.set_interval(1.0, self._tick_eta)   # the ETA counts down between events

    def _set_columns(self, columns: tuple[str, ...]) -> None:
        if columns != self._columns:
            table = self.query_one("#candidates", DataTable)
            table.clear(columns=True)
            for col in columns:
                table.add_column(col, key=col)
            self._columns, self._rendered = columns, {}

    def _tick_eta(self) -> None:
        s = self.search
        if s is not None and s.status == "running" and s.is_fuse and self.display:
            self._progress(s)

    @property
    def search(self) -> SearchRun | None:
        return self.state.searches.get(self.run_id) if self.run_id else None

    def show_run(self, run_id: str, pin: bool = True) -> None:
        """Shows `run_id`; `pin`: stay on it when another search starts (what opening a run from Runs means)."""
        self.pinned = pin
        if run_id != self.run_id:
            self.run_id = run_id
            self.round_choice = None
        self.refresh_state({search_topic(run_id)})

    # -- refresh --------------------------------------------------------------------------------------------------
    def refresh_state(self, topics: set[str]) -> None:
        running = self.state.running_search()
        if running is not None and running.id != self.run_id and (self.run_id is None or not self.pinned):
            self.run_id, self.round_choice = running.id, None
            topics = topics | {search_topic(running.id)}
        s = self.search
        if s is None:
            self.run_id = None   # gone (deleted), or never chosen
            self.query_one("#fuse-header", Line).set(
                Text("No search selected: open one from the Runs tab, or start one (command palette).", style="dim"))
            return
        if search_topic(s.id) not in topics and SEARCHES not in topics and JOBS not in topics:
            return
        self.query_one("#fuse-header", Line).set(view.header(self.state, s, self.pinned))
        self._progress(s)
        self._candidates(s)
        self.query_one("#fuse-plots").display = s.is_fuse
        note = self.query_one("#fuse-note", Static)
        note.display = not s.is_fuse
        if not s.is_fuse:
            note.update(view.note(s))
        elif time.monotonic() - self._plotted >= PLOT_INTERVAL or s.status != "running" or self._plotted_run != s.id:
            # the plots are the costliest thing to draw: a few times a second is plenty for the eye
            self._plots(s)
        elif self._plot_timer is None:
            self._plot_timer = self.set_timer(PLOT_INTERVAL, self._deferred_plot)
        self._result(s)

    def _progress(self, s: SearchRun) -> None:
        round_bar, alt_bar = self.query_one("#round-bar", ProgressBar), self.query_one("#alt-bar", ProgressBar)
        label, alt_label, eta = (self.query_one(f"#{name}", Line) for name in ("round-label", "alt-label", "fuse-eta"))
        done = s.status == "done"
        if not s.is_fuse:
            n = len(s.evaluated) or 1
            label.set(f"candidates {len(s.evaluated)}/{len(s.evaluated)}" if s.method == "random" else "no search")
            round_bar.update(total=n, progress=n if done else 0)
            alt_bar.display = False
            alt_label.set("trained alone" if s.method == "random" else "")
            eta.set("done" if done else s.status)
            return
        alt_bar.display = True
        rounds, rnd = s.rounds_total, s.current_round
        alt, alts = s.current_alternation(), s.alternations_total
        round_bar.update(total=rounds, progress=rounds if done else min(rounds, rnd + (alt / alts if alts else 0)))
        alt_bar.update(total=alts, progress=alts if done else min(alt, alts))
        label.set(f"round {min(rnd + 1, rounds)}/{rounds}")
        phase = s.eta.phase if s.status in ("running", "paused") else None
        if phase is not None and phase.done < phase.total:
            alt_label.set(f"alt {phase.alternation + 1}/{alts} weights {phase.done}/{phase.total}")
        elif phase is not None:
            alt_label.set(f"alt {phase.alternation + 1}/{alts} α")
        else:
            alt_label.set(f"alt {alt}/{alts}")
        eta.set("done" if done else f"ETA {duration(s.eta_seconds(self.app.clock()))}")

    def _candidates(self, s: SearchRun) -> None:
        table = self.query_one("#candidates", DataTable)
        if s.is_fuse:
            self._set_columns(view.FUSE_COLUMNS)
            rnd = self.shown_round(s)
            rows = view.fuse_rows(s, rnd, self.params)
            table.border_title = (f"round {rnd + 1}/{s.rounds_total} candidates"
                                  + ("" if self.round_choice is None else "  ([ ]: rounds, selected)"))
        else:
            self._set_columns(view.RANDOM_COLUMNS)
            rnd, rows = 0, view.random_rows(s, self.params)
            table.border_title = "candidates, each trained alone" if rows else view.method_label(s)
        sync_rows(table, self._columns, rows, self._rendered)
        genotypes = view.candidate_genotypes(s, rnd)
        missing = [(key.split(":", 1)[1], genotypes[i]) for i, key in enumerate(rows)
                   if key.split(":", 1)[1] not in self.params and i < len(genotypes) and isinstance(genotypes[i], dict)]
        if missing:
            self.count_params(missing, self._num_classes(s))

    def _deferred_plot(self) -> None:
        self._plot_timer = None
        s = self.search
        if s is not None and s.is_fuse:
            self._plots(s)

    def _num_classes(self, s: SearchRun) -> int:
        info = self.state.tasks.get(s.target)
        n = info.attrs.get("num_classes") if info else None
        return int(n) if isinstance(n, int) else 2

    @work(thread=True, group="params")
    def count_params(self, items: list[tuple[str, dict]], num_classes: int) -> None:
        from engine.service.jobs import genotype_params

        self.app.call_from_thread(self._set_params, genotype_params(dict(items), num_classes))

    def _set_params(self, counted: dict[str, int | None]) -> None:
        self.params.update(counted)
        if self.run_id:
            self.refresh_state({search_topic(self.run_id)})

    def shown_round(self, s: SearchRun) -> int:
        """The round the table shows: the selected one, else the current one."""
        return s.current_round if self.round_choice is None else self.round_choice

    def action_round(self, delta: int) -> None:
        """Cycle all rounds → round 1 → … → round N → all rounds."""
        s = self.search
        if s is None or not s.is_fuse:
            return
        rounds = sorted(set(s.round_start) | set(s.candidates)) or [0]
        options: list[int | None] = [None, *rounds]
        at = options.index(self.round_choice) if self.round_choice in options else 0
        self.round_choice = options[(at + delta) % len(options)]
        self._plotted = 0.0
        self.refresh_state({search_topic(s.id)})

    def _plots(self, s: SearchRun) -> None:
        self._plotted, self._plotted_run = time.monotonic(), s.id
        shown = plots(s, self.round_choice)
        alpha = self.query_one("#alpha-plot", PlotView)
        alpha.title = f"softmax(α), {shown.where}"
        alpha.set_series(shown.alpha, shown.steps, shown.boundaries)
        loss = self.query_one("#loss-plot", PlotView)
        loss.title = f"loss, {shown.where}"
        loss.set_series(shown.loss, shown.loss_steps, shown.boundaries)

    def _result(self, s: SearchRun) -> None:
        widget = self.query_one("#fuse-result", Static)
        text = view.result(s)
        widget.display = text is not None
        if text is not None and text != self._result_shown:
            self._result_shown = text
            widget.update(text)

    # -- actions --------------------------------------------------------------------------------------------------
    def action_control(self, action: str) -> None:
        self.post_message(ControlRequested(action, run_id=self.run_id))   # type: ignore[arg-type]

    def action_toggle_follow(self) -> None:
        self.pinned = not self.pinned
        self.app.notify("FUSE stays on this search" if self.pinned else "FUSE follows the running search", timeout=3)
        self.refresh_state({SEARCHES})

    def action_export(self) -> None:
        self.post_message(ExportRun(self.run_id))

    def _candidate_genotype(self, row_key: str | None) -> tuple[dict, str] | None:
        s = self.search
        if s is None or not row_key or ":" not in row_key:
            return None
        index, h = row_key.split(":", 1)
        genotypes = view.candidate_genotypes(s, self.shown_round(s))
        i = int(index)
        if i < len(genotypes) and isinstance(genotypes[i], dict):
            return genotypes[i], f"candidate {i} · genotype {h}"
        return None

    @on(DataTable.RowSelected, "#candidates")
    def _candidate_selected(self, event: DataTable.RowSelected) -> None:
        found = self._candidate_genotype(str(event.row_key.value))
        if found is None:
            self.app.notify("this candidate's genotype is not in the store yet", severity="warning")
            return
        self.app.push_screen(GenotypeScreen(*found))

    def action_genotype(self) -> None:
        """The result's genotype when the search is done, else the highlighted candidate's."""
        s = self.search
        result = s.result if s is not None else None
        if result and isinstance(result.get("genotype"), dict) and result["genotype"]:
            self.app.push_screen(GenotypeScreen(result["genotype"], f"result of {s.id} · genotype {result.get('hash', '?')}"))
            return
        table = self.query_one("#candidates", DataTable)
        key = None
        if table.row_count:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        found = self._candidate_genotype(key)
        if found is None:
            self.app.notify("no genotype to draw yet", severity="warning")
            return
        self.app.push_screen(GenotypeScreen(*found))
