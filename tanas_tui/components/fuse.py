"""FUSE panel: round / alternation progress with ETA, the candidates table, α and loss plots, pause / resume / stop,
and the result with export once the search is done."""
from __future__ import annotations

import math
import time
from typing import Any, Sequence

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import DataTable, ProgressBar, Static

from tanas_tui.components.dialogs import ConfirmScreen
from tanas_tui.components.genotype_view import GenotypeScreen
from tanas_tui.components.messages import ExportRun, SendCommand
from tanas_tui.components.line import Line
from tanas_tui.components.plots import PALETTE, axis_plot, sparkline
from tanas_tui.components.table_sync import sync_rows
from tanas_tui.ui_state import JOBS, SEARCHES, SearchState, UiState, search_topic

COLUMNS = ("#", "hash", "params", "softmax(α)", "val acc", "α history")
CONTROL_PENDING = {"pause": "pausing…", "resume": "resuming…", "stop": "stopping…"}
SPARK_WIDTH = 16
PLOT_INTERVAL = 0.5   # seconds between plot redraws while a search streams
PLOT_POINTS = 400   # a plot never draws more points than this: long runs are thinned evenly


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "—"
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def fmt_cost(result: Any) -> str:
    """Search cost as a duration and in device-hours: "3m16s · 0.0544 device-h"."""
    hours = result.get("cost_device_hours") if isinstance(result, dict) else None
    seconds = result.get("seconds") if isinstance(result, dict) else None
    if not isinstance(seconds, (int, float)) and isinstance(hours, (int, float)):
        seconds = hours * 3600
    if not isinstance(hours, (int, float)):
        return "—"
    return f"{fmt_duration(seconds)} · {hours:.4f} device-h"


def fmt_params(n: Any) -> str:
    if not isinstance(n, (int, float)):
        return "—"
    return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n / 1e3:.1f}k"


def thin(indices: range, limit: int) -> range:
    """At most about `limit` evenly spaced indices, always ending with the last one."""
    n = len(indices)
    if n <= limit:
        return indices
    step = -(-n // limit)
    return range(indices.start + (n - 1) % step, indices.stop, step)


class PlotView(Widget):
    """A braille line plot that re-draws at its current size."""

    DEFAULT_CSS = "PlotView { height: 1fr; }"

    def __init__(self, title: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.title = title
        self.series: list[tuple[str, list[float]]] = []
        self.steps: list[int] = []
        self.boundaries: list[tuple[int, str]] = []
        self._cache: tuple[Any, Text] | None = None

    def set_series(self, series: Sequence[tuple[str, list[float]]], steps: Sequence[int] | None = None,
                   boundaries: Sequence[tuple[int, str]] = ()) -> None:
        self.series = list(series)
        self.steps = list(steps) if steps is not None else []
        self.boundaries = list(boundaries)
        self.refresh()

    def render(self) -> Text:
        key = (self.title, self.size, [(label, len(ys), ys[-1:]) for label, ys in self.series], self.steps[:1],
               self.steps[-1:], tuple(self.boundaries))
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, axis_plot(self.series, self.size.width, self.size.height, self.title,
                                          steps=self.steps or None, boundaries=self.boundaries))
        return self._cache[1]


class FusePanel(Vertical):
    BINDINGS = [
        Binding("p", "pause", "Pause"),
        Binding("r", "resume", "Resume"),
        Binding("s", "stop", "Stop"),
        Binding("e", "export", "Export"),
        Binding("g", "genotype", "Genotype"),
        Binding("left_square_bracket", "round(-1)", "Round", key_display="[ ]"),
        Binding("right_square_bracket", "round(1)", "Next round", show=False),
        Binding("f", "toggle_follow", "Follow/pin"),
    ]

    def __init__(self, state: UiState, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state = state
        self.run_id: str | None = None
        self.pinned = False   # False: the panel moves to whichever search is running; True: it stays on run_id
        self._rendered: dict[str, tuple] = {}
        self._round_shown: int | None = None
        self.params: dict[str, int | None] = {}
        self._result_shown: Text | None = None
        self._plotted = 0.0
        self._plotted_run: str | None = None
        self._plot_timer: Any = None    # genotype hash -> parameter count (computed in a worker)
        self.round_choice: int | None = None   # None: all rounds in the plots, the current round in the table
        self.pending: dict[str, tuple[str, str | None]] = {}   # run id -> ("pausing…" etc., job) until confirmed
        self.confirmed: dict[str, tuple[str, str]] = {}   # run id -> (state the engine confirmed, status then)

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
            yield PlotView("softmax(α)", id="alpha-plot")
            yield PlotView("loss", id="loss-plot")
        yield Static("", id="fuse-result")

    def on_mount(self) -> None:
        table = self.query_one("#candidates", DataTable)
        for col in COLUMNS:
            table.add_column(col, key=col)
        self.set_interval(1.0, self._tick_eta)   # the ETA counts down between events

    def _tick_eta(self) -> None:
        s = self.search
        if s is not None and s.status == "running" and self.display:
            self._progress(s)

    @property
    def search(self) -> SearchState | None:
        return self.state.searches.get(self.run_id) if self.run_id else None

    def show_run(self, run_id: str, pin: bool = True) -> None:
        """Shows `run_id`; `pin`: stay on it when another search starts (what opening a run from Runs means)."""
        self.pinned = pin
        if run_id != self.run_id:
            self.run_id = run_id
            self._round_shown = None
            self.round_choice = None
        self.refresh_state({search_topic(run_id)})

    # -- refresh --------------------------------------------------------------------------------------------------
    def refresh_state(self, topics: set[str]) -> None:
        running = self.state.running_search()
        if running is not None and running.id != self.run_id and (self.run_id is None or not self.pinned):
            self.run_id, self._round_shown = running.id, None
            topics = topics | {search_topic(running.id)}
        s = self.search
        if s is None:
            self.query_one("#fuse-header", Line).set(
                Text("No search selected: open one from the Runs tab, or start one (command palette).", style="dim"))
            return
        if search_topic(s.id) not in topics and SEARCHES not in topics and not (JOBS in topics and self.pending):
            return
        self._header(s)
        self._progress(s)
        self._candidates(s)
        now = time.monotonic()
        if now - self._plotted >= PLOT_INTERVAL or s.status != "running" or self._plotted_run != s.id:
            # the plots are the costliest thing to draw: a few times a second is plenty for the eye
            self._plotted, self._plotted_run = now, s.id
            self._plots(s)
        elif self._plot_timer is None:
            self._plot_timer = self.set_timer(PLOT_INTERVAL, self._deferred_plot)
        self._result(s)

    def _header(self, s: SearchState) -> None:
        t = Text()
        t.append(f"{s.id}", style="bold")
        t.append(f"  target {self.state.task_name(s.target) if s.target in self.state.tasks else s.target_name or '?'}")
        if s.space:
            t.append(f"  {s.space.get('kind', '?')} space")
        status = self.shown_status(s)
        status_style = {"running": "green", "done": "cyan", "paused": "yellow", "failed": "red",
                        "stopped": "yellow"}.get(status, "magenta blink" if status.endswith("…") else "")
        t.append("  ")
        t.append(status, style=f"bold {status_style}")
        if s.device:
            t.append(f"  on {s.device}", style="dim")
        t.append(f"  {s.steps} α steps", style="dim")
        if not s.loaded:
            t.append("  (loading history…)", style="dim")
        t.append("  pinned (f: follow the running search)" if self.pinned else "  following the running search",
                 style="dim")
        self.query_one("#fuse-header", Line).set(t)

    def _progress(self, s: SearchState) -> None:
        rounds = s.rounds_total
        rnd = s.current_round
        done = s.status == "done"
        alt = s.current_alternation()
        alts = s.alternations_total
        round_done = rounds if done else rnd + (alt / alts if alts else 0)
        self.query_one("#round-bar", ProgressBar).update(total=rounds, progress=min(rounds, round_done))
        self.query_one("#alt-bar", ProgressBar).update(total=alts, progress=alts if done else min(alt, alts))
        self.query_one("#round-label", Line).set(f"round {min(rnd + 1, rounds)}/{rounds}")
        weights = s.weights if s.status in ("running", "paused") else {}
        if weights and weights.get("done", 0) < weights.get("total", 0):
            alt_text = f"alt {int(weights['alternation']) + 1}/{alts} weights {weights['done']}/{weights['total']}"
        elif weights:
            alt_text = f"alt {int(weights['alternation']) + 1}/{alts} α"
        else:
            alt_text = f"alt {alt}/{alts}"
        self.query_one("#alt-label", Line).set(alt_text)
        eta = s.eta_seconds(self.app.clock() if hasattr(self.app, "clock") else None)
        self.query_one("#fuse-eta", Line).set("done" if done else f"ETA {fmt_duration(eta)}")

    def _candidates(self, s: SearchState) -> None:
        table = self.query_one("#candidates", DataTable)
        rnd = self.shown_round(s)
        steps = s.round_steps(rnd)
        hashes = s.hashes(rnd)
        genotypes = s.genotypes(rnd)
        last_alpha = s.probs[steps[-1]] if steps else [1.0 / max(1, len(hashes))] * len(hashes)
        last_acc = s.val_acc[steps[-1]] if steps and steps[-1] < len(s.val_acc) else []
        history = s.probs[max(steps.start, steps.stop - SPARK_WIDTH):steps.stop] if steps else []
        # one scale for the round's sparklines, fitted to what they show: shares move by hundredths, not 0..1
        shown = [v for row in history for v in row if not math.isnan(v)]
        spark_lo, spark_hi = (min(shown), max(shown)) if shown else (0.0, 1.0)
        best = max(range(len(last_alpha)), key=lambda i: last_alpha[i]) if last_alpha else -1
        carried = s.carried(rnd)
        rows = {}
        missing = []
        for i, h in enumerate(hashes):
            if h not in self.params and i < len(genotypes):
                missing.append((h, genotypes[i]))
            share = last_alpha[i] if i < len(last_alpha) else float("nan")
            acc = last_acc[i] if i < len(last_acc) else float("nan")
            spark = sparkline([row[i] for row in history if i < len(row)], width=SPARK_WIDTH, lo=spark_lo, hi=spark_hi)
            mark = Text("★", style="bold yellow") if i == best and steps else Text(str(i))
            if carried and h == carried:
                mark.append(" ↻", style="cyan")   # the incumbent carried over from the round before
            rows[f"{i}:{h}"] = (
                mark, h, fmt_params(self.params.get(h)),
                Text(f"{share:.3f}", style="bold" if i == best else ""),
                f"{acc * 100:.1f}%" if not math.isnan(acc) else "—",
                Text(spark, style=PALETTE[i % len(PALETTE)]),
            )
        if self._round_shown != rnd:
            # a new round brings a new candidate set: its rows replace the old ones (diff still, keys differ)
            self._round_shown = rnd
        sync_rows(table, COLUMNS, rows, self._rendered)
        table.border_title = (f"round {rnd + 1}/{s.rounds_total} candidates"
                              + ("" if self.round_choice is None else "  ([ ]: rounds, selected)"))
        if missing:
            self.count_params(missing, self._num_classes(s))

    def _deferred_plot(self) -> None:
        self._plot_timer = None
        s = self.search
        if s is not None:
            self._plotted = time.monotonic()
            self._plots(s)

    def _num_classes(self, s: SearchState) -> int:
        info = self.state.tasks.get(s.target)
        n = info.attrs.get("num_classes") if info else None
        return int(n) if isinstance(n, int) else 2

    @work(thread=True, group="params")
    def count_params(self, items: list[tuple[str, dict]], num_classes: int) -> None:
        from engine.service.jobs import genotype_params

        self.app.call_from_thread(self._set_params, genotype_params(dict(items), num_classes))

    def _set_params(self, params: dict[str, int | None]) -> None:
        self.params.update(params)
        if self.run_id:
            self.refresh_state({search_topic(self.run_id)})

    def shown_round(self, s: SearchState) -> int:
        """The round the table shows: the selected one, else the current one."""
        return s.current_round if self.round_choice is None else self.round_choice

    def action_round(self, delta: int) -> None:
        """Cycle all rounds → round 1 → … → round N → all rounds."""
        s = self.search
        if s is None:
            return
        rounds = sorted(set(s.round_start) | set(s.candidates)) or [0]
        options: list[int | None] = [None, *rounds]
        at = options.index(self.round_choice) if self.round_choice in options else 0
        self.round_choice = options[(at + delta) % len(options)]
        self._plotted = 0.0
        self.refresh_state({search_topic(s.id)})

    def _plots(self, s: SearchState) -> None:
        if self.round_choice is None:
            span = range(len(s.probs))
            boundaries = [(start, f"R{r + 1}") for r, start in sorted(s.round_start.items()) if start > 0]
            where = f"all {len(s.round_start)} rounds" if len(s.round_start) > 1 else "all rounds"
            labels = [f"c{i}" for i in range(max((len(p) for p in s.probs), default=0))]
        else:
            span = s.round_steps(self.round_choice)
            boundaries = []
            where = f"round {self.round_choice + 1}"
            labels = [h[:6] for h in s.hashes(self.round_choice)]
        steps = thin(span, PLOT_POINTS)
        history = [s.probs[i] for i in steps]
        series = [(label, [row[i] if i < len(row) else float("nan") for row in history])
                  for i, label in enumerate(labels)]
        alpha = self.query_one("#alpha-plot", PlotView)
        alpha.title = f"softmax(α), {where}"
        alpha.set_series(series, list(steps), boundaries)
        every = [i for i in steps if i < len(s.loss_train)]
        loss = self.query_one("#loss-plot", PlotView)
        loss.title = f"loss, {where}"
        loss.set_series([("train", [s.loss_train[i] for i in every]), ("val", [s.loss_val[i] for i in every])],
                        every, boundaries)

    def _result(self, s: SearchState) -> None:
        widget = self.query_one("#fuse-result", Static)
        r = s.result
        if not r:
            if widget.display:
                widget.display = False
            return
        if not widget.display:
            widget.display = True
        t = Text()
        t.append("result ", style="bold green")
        t.append(f"{r.get('hash', '?')}")
        err = r.get("test_error")
        if isinstance(err, (int, float)):
            t.append(f"  test error {err:.2f}%")
        t.append(f"  {fmt_params(r.get('params'))} params")
        t.append(f"  cost {fmt_cost(r)}")
        t.append("  g: picture  e: export", style="dim")
        if t != self._result_shown:
            self._result_shown = t
            widget.update(t)

    # -- actions --------------------------------------------------------------------------------------------------
    def _control(self, command: str) -> None:
        s = self.search
        if s is None:
            self.app.notify("no search selected", severity="warning")
            return
        if s.status not in ("running", "paused"):
            self.app.notify(f"search {s.id} is {s.status}: nothing to {command}", severity="warning")
            return
        job = self.state.job_for_run(s.id)
        if command != "stop":
            self._send_control(s.id, command, job)
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self._send_control(s.id, command, job)

        self.app.push_screen(ConfirmScreen(f"Stop search {s.id}?\nIt stops at its next safe point and keeps its "
                                           f"last checkpoint: running the same search again resumes it.",
                                           yes="Stop", no="Keep running"), answer)

    def _send_control(self, run_id: str, command: str, job: str | None) -> None:
        # shown until the engine confirms: its reply for pause / resume, the job's end for stop
        self.pending[run_id] = (CONTROL_PENDING[command], job)
        self.post_message(SendCommand(command, job=job))
        self.refresh_state({search_topic(run_id)})

    def control_answered(self, command: str, data: dict | None) -> None:
        """The engine's reply to pause / resume / stop (None: refused or unreachable)."""
        for run_id, (pending, job) in list(self.pending.items()):
            if pending != CONTROL_PENDING.get(command):
                continue
            if data is None or command != "stop":
                del self.pending[run_id]
                if data is not None and run_id in self.state.searches:
                    # the engine confirmed: the job is paused (it blocks at its next check) or running again
                    self.confirmed[run_id] = ("paused" if data.get("paused") else "running",
                                              self.state.searches[run_id].status)
            elif job is None:
                self.pending[run_id] = (pending, data.get("job"))
            self.refresh_state({search_topic(run_id)})

    def _pending_done(self, s: SearchState) -> None:
        pending = self.pending.get(s.id)
        if pending is None:
            return
        _, job = pending
        info = self.state.jobs.get(job) if job else None
        if s.status in ("stopped", "done", "failed") or (info is not None and info.finished):
            del self.pending[s.id]

    def shown_status(self, s: SearchState) -> str:
        self._pending_done(s)
        if s.id in self.pending:
            return self.pending[s.id][0]
        confirmed = self.confirmed.get(s.id)
        if confirmed and confirmed[1] == s.status:   # until the store or an event says otherwise
            return confirmed[0]
        return s.status

    def action_pause(self) -> None:
        self._control("pause")

    def action_resume(self) -> None:
        self._control("resume")

    def action_stop(self) -> None:
        self._control("stop")

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
        genotypes = s.genotypes(self.shown_round(s))
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
        if result and isinstance(result.get("genotype"), dict):
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
