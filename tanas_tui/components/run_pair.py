"""Two runs side by side (the compare view's `v`): for each, its result (test error, params, cost), its α trajectory
(softmax(α) per candidate over the steps, the rounds' starts marked) and its genotype's cells drawn; a line on top
gives the difference in test error."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Group
from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from engine.results.table import duration_text, format_number
from tanas_tui.components.plots import axis_plot
from tanas_tui.genotype_art import genotype_picture

PLOT_HEIGHT = 10


def softmax_rows(alpha: np.ndarray) -> np.ndarray:
    if alpha.size == 0:
        return alpha
    z = alpha - np.nanmax(alpha, axis=1, keepdims=True)
    e = np.exp(z)
    return e / np.nansum(e, axis=1, keepdims=True)


def run_summary(record: Any) -> Text:
    a = record.attrs
    r = a.get("result") or {}
    t = Text()
    t.append(record.id, style="bold")
    t.append(f"\n{a.get('arm') or a.get('kind', '?')} · {a.get('space_kind') or 'no space'} · seed {a.get('seed', '?')}"
             f" · {a.get('status', '?')}\n", style="dim")
    t.append(f"test error {format_number(r.get('test_error'), 2)} %", style="bold")
    t.append(f" · params {format_number(r.get('params_m'), 3)} M · cost {duration_text(r.get('seconds'))}")
    return t


def alpha_plot(record: Any, width: int) -> Text:
    if record.steps == 0:
        return Text("no α steps (this arm trains its candidates alone or a fixed network)", style="dim")
    probs = softmax_rows(np.asarray(record.alpha, dtype=float))
    rounds = np.asarray(record.round)
    starts = [(int(i), f"R{int(rounds[i]) + 1}") for i in range(1, len(rounds)) if rounds[i] != rounds[i - 1]]
    series = [(f"c{c}", [float(v) for v in probs[:, c]]) for c in range(probs.shape[1])]
    return axis_plot(series, width, PLOT_HEIGHT, "softmax(α)", boundaries=starts, y_label="share")


def error_line(a: Any, b: Any) -> Text:
    ea = (a.attrs.get("result") or {}).get("test_error")
    eb = (b.attrs.get("result") or {}).get("test_error")
    t = Text.assemble(("test error ", "bold"), f"{a.id} {format_number(ea, 2)} %  vs  {b.id} {format_number(eb, 2)} %")
    if isinstance(ea, (int, float)) and isinstance(eb, (int, float)):
        t.append(f"   Δ (right − left) {format_number(eb - ea, 2, signed=True)} pp", style="bold")
    return t


class RunPairScreen(Screen[None]):
    BINDINGS = [Binding("escape,q,v", "close", "Close")]
    DEFAULT_CSS = """
    RunPairScreen #pair-diff { height: auto; padding: 0 1; background: $boost; }
    RunPairScreen #pair { height: 1fr; }
    RunPairScreen #pair VerticalScroll { width: 1fr; padding: 0 1; }
    RunPairScreen #pair #pair-right { border-left: vkey $primary 40%; }
    """

    def __init__(self, store_path: Path | str, left: str, right: str) -> None:
        super().__init__()
        self.store_path, self.ids = Path(store_path), (left, right)
        self.records: tuple[Any, Any] | None = None

    def compose(self) -> ComposeResult:
        yield Static(f"reading {self.ids[0]} and {self.ids[1]}…", id="pair-diff")
        with Horizontal(id="pair"):
            with VerticalScroll(id="pair-left"):
                yield Static("", id="pair-left-body")
            with VerticalScroll(id="pair-right"):
                yield Static("", id="pair-right-body")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._read()

    @work(thread=True, exclusive=True, group="pair")
    def _read(self) -> None:
        from tanas_tui.model.snapshot import read_search

        try:
            records = tuple(read_search(self.store_path, rid) for rid in self.ids)
        except Exception as exc:  # noqa: BLE001 - a run deleted meanwhile, a locked store: shown
            self.app.call_from_thread(self.query_one("#pair-diff", Static).update,
                                      Text(f"cannot read the runs: {exc}", style="bold red"))
            return
        self.app.call_from_thread(self._show, records)

    def _show(self, records: tuple[Any, Any]) -> None:
        self.records = records
        self.query_one("#pair-diff", Static).update(error_line(*records))
        self._draw()

    def on_resize(self, event: events.Resize) -> None:
        self._draw()

    def _draw(self) -> None:
        if self.records is None:
            return
        width = max(20, self.size.width // 2 - 4)
        for side, record in zip(("left", "right"), self.records):
            genotype = (record.attrs.get("result") or {}).get("genotype")
            picture = genotype_picture(genotype, side_by_side=False) if genotype else \
                Text("no genotype (a fixed network)", style="dim")
            self.query_one(f"#pair-{side}-body", Static).update(
                Group(run_summary(record), Text(""), alpha_plot(record, width), Text(""), picture))

    def action_close(self) -> None:
        self.dismiss(None)
