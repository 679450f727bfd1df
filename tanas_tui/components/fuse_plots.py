"""The FUSE tab's two plots: softmax(α) per candidate and the train / val loss, over all rounds (with the rounds'
starts marked) or over one chosen round; long runs are thinned to at most PLOT_POINTS points."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from rich.text import Text
from textual.widget import Widget

from tanas_tui.components.plots import axis_plot
from tanas_tui.model import SearchRun

PLOT_POINTS = 400   # a plot never draws more points than this: long runs are thinned evenly


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

    def __init__(self, title: str, y_label: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.title, self.y_label = title, y_label
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
                                          steps=self.steps or None, boundaries=self.boundaries,
                                          y_label=self.y_label))
        return self._cache[1]


@dataclass
class Plots:
    where: str                                  # "all 2 rounds", "round 1"
    steps: list[int]
    boundaries: list[tuple[int, str]]
    alpha: list[tuple[str, list[float]]]
    loss_steps: list[int]
    loss: list[tuple[str, list[float]]]


def plots(s: SearchRun, round_choice: int | None) -> Plots:
    """What the plots show of `s`: every step (round_choice None) or one round's."""
    if round_choice is None:
        span = range(len(s.probs))
        boundaries = [(start, f"R{r + 1}") for r, start in sorted(s.round_start.items()) if start > 0]
        where = f"all {len(s.round_start)} rounds" if len(s.round_start) > 1 else "all rounds"
        labels = [f"c{i}" for i in range(max((len(p) for p in s.probs), default=0))]
    else:
        span = s.round_steps(round_choice)
        boundaries = []
        where = f"round {round_choice + 1}"
        labels = [h[:6] for h in s.hashes(round_choice)]
    steps = thin(span, PLOT_POINTS)
    history = [s.probs[i] for i in steps]
    alpha = [(label, [row[i] if i < len(row) else float("nan") for row in history]) for i, label in enumerate(labels)]
    every = [i for i in steps if i < len(s.loss_train)]
    loss = [("train", [s.loss_train[i] for i in every]), ("val", [s.loss_val[i] for i in every])]
    return Plots(where, list(steps), boundaries, alpha, every, loss)
