"""Headless progress: Rich progress bars on a terminal, plain timestamped lines otherwise (a log file stays readable).

Both renderers take protocol events (`engine.service.protocol.Event`), whether they come from the engine's socket or from
a job running in this process.
"""
from __future__ import annotations

import sys
import threading
import time
from typing import Any, Callable, TextIO

from rich.console import Console
from rich.text import Text
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from engine.service import protocol as P
from engine.service.jobs import PIPELINE_STAGES
from tanas_tui import units
from tanas_tui.model.trajectory import softmax
from tanas_tui.pipeline_eta import GROUPS, PipelineEta
from tanas_tui.safe_text import markup_safe, printable

TIMESTAMP = "%Y-%m-%d %H:%M:%S"


class EventText:
    """One human line per event (None: not worth a line); remembers task names so ids read as names. `lookup`
    names the tasks no event named yet (the UI's: from the store)."""

    def __init__(self, lookup: Callable[[str], str] | None = None) -> None:
        self.names: dict[str, str] = {}
        self.quarters: dict[tuple, int] = {}
        self.lookup = lookup
        self.jobs: set[str] = set()      # the jobs seen starting: any other `job_progress` is a search's own counter

    def name(self, task_id: str) -> str:
        if task_id in self.names:
            return self.names[task_id]
        return self.lookup(task_id) if self.lookup is not None else task_id

    def __call__(self, ev: P.Event) -> str | None:
        line = self._line(ev)
        return None if line is None else printable(line)

    def _line(self, ev: P.Event) -> str | None:
        if isinstance(ev, (P.TaskAdded, P.TaskRemoved, P.ProbeProgress, P.ProbeDone, P.TaskStatus)):
            self.names[ev.task_id] = ev.name
        match ev:
            case P.JobStarted():
                self.jobs.add(ev.job)
                return f"job {ev.kind} started ({ev.job})"
            case P.JobProgress() if self.jobs and ev.job not in self.jobs:    # under a run id: name the run
                return f"search {ev.job} {ev.stage}: {ev.done}/{ev.total}"
            case P.JobProgress():
                if ev.stage == "done":
                    return f"all {ev.total} stages done"
                if ev.stage in PIPELINE_STAGES:
                    return f"stage {ev.done + 1}/{ev.total}: {ev.stage}"
                return f"{ev.stage}: {ev.done}/{ev.total}"
            case P.JobState():
                return "paused (resume to go on)" if ev.state == "paused" else "resumed"
            case P.ExecutorStatus():
                return f"executor {ev.executor}"
            case P.TaskStatus():
                what = {"training": "training its probe", "fisher": "computing its Fisher",
                        "ready": "ready"}.get(ev.status, ev.status)
                return f"task {ev.name}: {what}"
            case P.JobDone():
                tail = f": {ev.message}" if ev.status != "ok" and ev.message else ""
                return f"job {ev.kind} {ev.status} after {units.duration(ev.seconds)} ({ev.job}){tail}"
            case P.TaskAdded():
                return f"task {ev.name} added as {ev.role} ({ev.task_id})"
            case P.TaskRemoved():
                return f"task {ev.name} removed"
            case P.ProbeProgress():
                seed = f" seed {ev.seed_index}" if ev.seed_index else ""
                return (f"probe {ev.name}{seed} epoch {ev.epoch}/{ev.max_epochs}: val acc {units.pct(ev.val_acc)}, "
                        f"loss {units.loss(ev.loss)}")
            case P.ProbeDone():
                flag = "" if ev.representative else " (NOT epsilon-representative)"
                trained = (f"a head on the shared body (its shared_epochs = {ev.epochs})" if ev.shared_body
                           else f"in {ev.epochs} epochs")
                return (f"probe {ev.name} done: val acc {units.pct(ev.val_acc)} {trained}, "
                        f"{units.duration(ev.seconds)}{flag}")
            case P.Distance():
                std = f" ± {units.distance(ev.std)}" if ev.std else ""
                return (f"distance[{ev.method}] {self.name(ev.source)} -> {self.name(ev.target)} = "
                        f"{units.distance(ev.value)}{std}")
            case P.SpaceBuilt():
                ops = [op for op, w in (ev.space.get("op_weights") or {}).items() if op != "none" and w > 0]
                form = ev.space.get("form", "operations")
                size = f", 10^{ev.size_log10:.1f} genotypes" if ev.size_log10 is not None else ""
                return f"space {ev.kind} ({form} form) built for {self.name(ev.target)}: {len(ops)} operations{size}"
            case P.AlphaStep():
                weights = softmax(ev.alpha)
                best = max(range(len(weights)), key=weights.__getitem__) if weights else -1
                acc = max(ev.val_acc) if ev.val_acc else None
                return (f"search {ev.run_id} round {ev.round + 1} step {ev.step + 1}: loss train "
                        f"{units.loss(ev.loss_train)} val {units.loss(ev.loss_val)}, best val acc {units.pct(acc)}, "
                        f"alpha max {units.share(max(weights or [0]))} (candidate {best})")
            case P.SearchCandidates():
                carried = f", incumbent {ev.incumbent[:12]} carried over" if ev.incumbent else ""
                return f"search {ev.run_id} round {ev.round + 1}: {len(ev.candidates)} candidates{carried}"
            case P.WeightProgress():
                # a line per quarter of the phase: a log file sees progress without a line per event
                quarter = 4 * ev.done // max(1, ev.total)
                key = (ev.run_id, ev.round, ev.alternation)
                if self.quarters.get(key) == quarter:
                    return None
                self.quarters[key] = quarter
                return f"search {ev.run_id} round {ev.round + 1} weights: batch {ev.done}/{ev.total}"
            case P.SearchRound():
                return f"search {ev.run_id} round {ev.round + 1}: incumbent {ev.incumbent[:12]}"
            case P.SearchDone():
                r = ev.result
                return (f"search {ev.run_id} done: test error {units.test_error(r.get('test_error'))}, "
                        f"{units.params(r.get('params'))} params, cost {units.cost(r)}")
            case P.Warning():
                return f"warning: {ev.message}"
            case P.Log():
                return ev.message if ev.level in ("info", "debug") else f"{ev.level}: {ev.message}"
            case P.Error():
                return f"error: {ev.message}"
            case P.Dropped():
                return f"disconnected by the engine: {ev.message}"
        return None


def eta_text(eta: PipelineEta) -> str:
    left = eta.remaining(time.monotonic())
    return "" if left is None else f"ETA ~{units.duration(left)}"


class PlainRenderer:
    """`YYYY-mm-dd HH:MM:SS text` lines, flushed one by one; a stage's, a counter's and a round's line end with the
    job's time left when it is known (tanas_tui.pipeline_eta)."""

    def __init__(self, stream: TextIO | None = None, config: Any = None):
        self.stream = stream if stream is not None else sys.stdout
        self.text = EventText()
        self.eta = PipelineEta(config)
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        with self._lock:
            self.stream.write(f"{time.strftime(TIMESTAMP)} {text}\n")
            self.stream.flush()

    def handle(self, ev: P.Event) -> None:
        self.eta.feed(ev, time.monotonic())
        text = self.text(ev)
        if text is not None:
            eta = eta_text(self.eta) if isinstance(ev, (P.JobProgress, P.SearchRound)) and ev_stage(ev) != "done" \
                else ""
            self.line(f"{text} ({eta})" if eta else text)

    def close(self) -> None:
        pass


def ev_stage(ev: P.Event) -> str | None:
    return getattr(ev, "stage", None)


class _Spinner(SpinnerColumn):
    """A spinner that stands still (‖) while its job is paused and shows ✓ when its bar is complete."""

    def __init__(self) -> None:
        super().__init__(finished_text="✓")

    def render(self, task: Any) -> Any:
        if task.fields.get("paused") and not task.finished:
            return Text("‖", style="yellow")
        return super().render(task)


class RichRenderer:
    """Progress bars for the pipeline's stages, the current stage's own counter, the current probe and the search;
    notable events as lines above. A finished bar completes (the pipeline) or goes (a stage's counter, a probe, a
    search), so no dead spinner stays behind; a paused job's bars stand still and say so."""

    def __init__(self, console: Console, config: Any = None):
        self.console = console
        self.text = EventText()
        self.eta = PipelineEta(config)
        self.ended = False
        self.alternations = None if config is None else (int(config.search.alternations), int(config.search.rounds))
        self.progress = Progress(_Spinner(), TextColumn("[bold]{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.fields[info]}"),
                                 console=console, transient=False)
        self.bars: dict[str, Any] = {}
        self.paused = False
        self.progress.start()

    def _bar(self, key: str, description: str, total: float | None) -> Any:
        if key not in self.bars:
            self.bars[key] = self.progress.add_task(description, total=total, info="", paused=self.paused, stage="")
        return self.bars[key]

    def _drop(self, *prefixes: str) -> None:
        for key in [k for k in self.bars if k.startswith(prefixes)]:
            self.progress.remove_task(self.bars.pop(key))

    def _pause(self, paused: bool) -> None:
        self.paused = paused
        for bar in self.bars.values():
            self.progress.update(bar, paused=paused)
            (self.progress.stop_task if paused else self.progress.start_task)(bar)

    def line(self, text: str) -> None:
        self.progress.console.print(text, markup=False, highlight=False)

    def _pipeline_info(self) -> None:
        """The pipeline bar's stage and the whole job's time left, refreshed with every event."""
        for key, bar in self.bars.items():
            if key.startswith("job:") and bar in self.progress.task_ids:
                task = self.progress.tasks[bar]
                stage = task.fields.get("stage", "")
                eta = eta_text(self.eta) if stage != "done" and not self.ended else ""
                self.progress.update(bar, info=f"{stage}, {eta}" if eta else stage)

    def handle(self, ev: P.Event) -> None:
        self.eta.feed(ev, time.monotonic())
        self._handle(ev)
        self._pipeline_info()

    def _handle(self, ev: P.Event) -> None:
        text = self.text(ev)
        match ev:
            case P.JobProgress() if ev.job in self.eta.runs:   # a search's own counter: retraining its winner
                self._drop(f"search:{ev.job}", f"weights:{ev.job}")   # its rounds are over: no bar stuck at 100 %
                bar = self._bar(f"sub:{ev.job}:", ev.stage, ev.total)
                left = self.eta._search_left(self.eta.runs[ev.job], self.eta.clock(time.monotonic()))
                self.progress.update(bar, description=markup_safe(ev.stage), completed=ev.done, total=ev.total,
                                     info=f"epoch {ev.done}/{ev.total}" + (f", ETA ~{units.duration(left)}"
                                                                           if left is not None else ""))
                return
            case P.JobProgress():
                if ev.stage in PIPELINE_STAGES or ev.stage == "done":
                    self._drop(f"sub:{ev.job}:")   # the previous stage's own counter is over
                    bar = self._bar(f"job:{ev.job}", "pipeline", ev.total)
                    self.progress.update(bar, completed=ev.done, total=ev.total, stage=ev.stage)
                else:  # a stage's own progress (a probe's seeds, the distance pairs, base task i/n): one bar
                    key = f"sub:{ev.job}:"
                    bar = self._bar(key, ev.stage, ev.total)
                    self.progress.update(bar, description=ev.stage, completed=ev.done, total=ev.total)
                return
            case P.JobState():
                self._pause(ev.state == "paused")
            case P.JobDone():
                self.ended = True
                self._drop("sub:", "probe", "search:", "weights:")
                bar = self.bars.get(f"job:{ev.job}")
                if bar is not None and ev.status == "ok":
                    total = self.progress.tasks[bar].total if bar in self.progress.task_ids else None
                    self.progress.update(bar, completed=total or 0, stage="done")
            case P.ProbeProgress():
                bar = self._bar("probe", "probe", ev.max_epochs)
                self.progress.update(bar, description=f"probe {markup_safe(ev.name)}", completed=ev.epoch, total=ev.max_epochs,
                                     info=f"val acc {units.pct(ev.val_acc)}")
                return
            case P.ProbeDone():
                self._drop("probe")
            case P.WeightProgress():
                bar = self._bar(f"weights:{ev.run_id}", f"weights {ev.run_id}", ev.total)
                self.progress.update(bar, completed=ev.done, total=ev.total, info=f"round {ev.round + 1}")
                return
            case P.AlphaStep():
                run = self.eta.runs.get(ev.run_id)
                if self.alternations is None or run is None:    # no config: α steps, total unknown
                    bar = self._bar(f"search:{ev.run_id}", f"search {ev.run_id}", None)
                    self.progress.update(bar, completed=ev.step + 1,
                                         info=f"round {ev.round + 1}, val loss {units.loss(ev.loss_val)}")
                    return
                total = run.rounds * self.alternations[0]     # its alternations (weight phase + α phase)
                bar = self._bar(f"search:{ev.run_id}", f"search {ev.run_id}", total)
                self.progress.update(bar, completed=round(run.fraction * total, 2), total=total,
                                     info=f"round {ev.round + 1}/{run.rounds}, val loss {units.loss(ev.loss_val)}")
                return
            case P.SearchDone():
                self._drop(f"search:{ev.run_id}", f"weights:{ev.run_id}", f"sub:{ev.run_id}:")
            case P.Distance():
                return   # counted by the distances stage's own bar
        if text is not None:
            self.line(text)

    def close(self) -> None:
        self.progress.stop()


def make_renderer(console: Console, config: Any = None) -> PlainRenderer | RichRenderer:
    """`config`: the job's config, when known: the searches' bars get their totals and the job its time left."""
    return RichRenderer(console, config) if console.is_terminal else PlainRenderer(console.file, config)


class working:
    """`with working(console, "exporting ..."):` a spinner with the elapsed time on a terminal while a long step runs
    (an ONNX export takes a while); in a pipe one line before it, and its time in the caller's closing line."""

    def __init__(self, console: Console, what: str):
        self.console, self.what, self.progress = console, what, None
        self.t0 = time.perf_counter()

    def __enter__(self) -> "working":
        self.t0 = time.perf_counter()
        if self.console.is_terminal:
            self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                     console=self.console, transient=True)
            self.progress.add_task(markup_safe(self.what), total=None)
            self.progress.start()
        else:
            self.console.print(f"{self.what}…", highlight=False, soft_wrap=True)
        return self

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.t0

    def __exit__(self, *exc: Any) -> None:
        if self.progress is not None:
            self.progress.stop()
