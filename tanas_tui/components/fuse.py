"""FUSE panel: round / alternation progress with ETA, the candidates table, α and loss plots, pause / resume / stop,
and the result with export once the search is done."""
from __future__ import annotations

import math
import time
from typing import Any, Sequence

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import DataTable, ProgressBar, Static

from tanas_tui.components.messages import ExportRun, SendCommand
from tanas_tui.components.line import Line
from tanas_tui.components.plots import PALETTE, line_plot, sparkline
from tanas_tui.components.table_sync import sync_rows
from tanas_tui.ui_state import SEARCHES, SearchState, UiState, search_topic

COLUMNS = ("#", "hash", "params", "softmax(α)", "val acc", "α history")
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
        self._cache: tuple[Any, Text] | None = None

    def set_series(self, series: Sequence[tuple[str, list[float]]]) -> None:
        self.series = list(series)
        self.refresh()

    def render(self) -> Text:
        key = (self.title, self.size, [(label, len(ys), ys[-1:]) for label, ys in self.series])
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, line_plot(self.series, self.size.width, self.size.height, self.title))
        return self._cache[1]


class FusePanel(Vertical):
    BINDINGS = [
        Binding("p", "pause", "Pause"),
        Binding("r", "resume", "Resume"),
        Binding("s", "stop", "Stop"),
        Binding("e", "export", "Export"),
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
        if search_topic(s.id) not in topics and SEARCHES not in topics:
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
        status_style = {"running": "green", "done": "cyan", "paused": "yellow", "failed": "red",
                        "stopped": "yellow"}.get(s.status, "")
        t.append("  ")
        t.append(s.status, style=f"bold {status_style}")
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
        rnd = s.current_round
        steps = s.round_steps(rnd)
        hashes = s.hashes(rnd)
        genotypes = s.genotypes(rnd)
        last_alpha = s.probs[steps[-1]] if steps else [1.0 / max(1, len(hashes))] * len(hashes)
        last_acc = s.val_acc[steps[-1]] if steps and steps[-1] < len(s.val_acc) else []
        history = s.probs[max(steps.start, steps.stop - SPARK_WIDTH):steps.stop] if steps else []
        best = max(range(len(last_alpha)), key=lambda i: last_alpha[i]) if last_alpha else -1
        carried = s.carried(rnd)
        rows = {}
        missing = []
        for i, h in enumerate(hashes):
            if h not in self.params and i < len(genotypes):
                missing.append((h, genotypes[i]))
            share = last_alpha[i] if i < len(last_alpha) else float("nan")
            acc = last_acc[i] if i < len(last_acc) else float("nan")
            spark = sparkline([row[i] for row in history if i < len(row)], width=SPARK_WIDTH, lo=0.0, hi=1.0)
            mark = Text("★", style="bold yellow") if i == best and steps else Text(str(i))
            if carried and h == carried:
                mark.append(" ↻", style="cyan")   # the incumbent carried over from the round before
            rows[f"{i}:{h}"] = (
                mark, h, fmt_params(self.params.get(h)),
                Text(f"{share:.3f}", style="bold" if i == best else ""),
                f"{acc:.4f}" if not math.isnan(acc) else "—",
                Text(spark, style=PALETTE[i % len(PALETTE)]),
            )
        if self._round_shown != rnd:
            # a new round brings a new candidate set: its rows replace the old ones (diff still, keys differ)
            self._round_shown = rnd
        sync_rows(table, COLUMNS, rows, self._rendered)
        table.border_title = f"round {rnd + 1} candidates"
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

    def _plots(self, s: SearchState) -> None:
        steps = thin(s.round_steps(), PLOT_POINTS)
        hashes = s.hashes()
        history = [s.probs[i] for i in steps]
        series = [(h[:6], [row[i] if i < len(row) else float("nan") for row in history]) for i, h in enumerate(hashes)]
        self.query_one("#alpha-plot", PlotView).set_series(series)
        self.query_one("#alpha-plot", PlotView).title = f"softmax(α), round {s.current_round + 1}"
        every = thin(range(len(s.loss_train)), PLOT_POINTS)
        self.query_one("#loss-plot", PlotView).set_series([("train", [s.loss_train[i] for i in every]),
                                                           ("val", [s.loss_val[i] for i in every])])

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
        t.append("result  ", style="bold green")
        t.append(f"genotype {r.get('hash', '?')}")
        err = r.get("test_error")
        if isinstance(err, (int, float)):
            t.append(f"   test error {err:.2f}%")
        t.append(f"   params {fmt_params(r.get('params'))}")
        cost = r.get("cost_device_hours")
        if isinstance(cost, (int, float)):
            t.append(f"   cost {cost:.4f} device-h")
        t.append("   (e: export genotype)", style="dim")
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
        self.post_message(SendCommand(command, job=self.state.job_for_run(s.id)))

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
