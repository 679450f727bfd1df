"""The `?` help screen."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# tanas-tui

Browse the task dictionary, watch distances fill in and follow FUSE searches live. The store is the source of
truth; the engine (a separate process) does the work and keeps running when you quit.

| key | where | does |
| --- | --- | --- |
| `1`…`6` | anywhere | Dictionary, Distances, Space, FUSE, Runs, Events |
| `ctrl+p` | anywhere | command palette (start engine, compute distances, start search, …) |
| `?` | anywhere | this help |
| `j` | anywhere | engine jobs: running and queued; `x` cancels one |
| `q`, `ctrl+q` | anywhere | quit (the engine keeps running) |
| `/` | Dictionary | filter tasks |
| `o`, click a header | Dictionary | sort by the cursor's column (again: reverse) |
| `a` / `d` | Dictionary | add a task (form) / remove the selected task (asks first) |
| `m` | Distances | switch method (fisher / transfer) |
| `enter`, `n` | Distances | mark the k nearest tasks of the cursor's target column |
| `f` / `o` | Distances | target column first / rows sorted by distance to it |
| `p` / `r` / `s` | FUSE | pause / resume / stop the search (stop asks first) |
| `[` / `]` | FUSE | plots: all rounds or one round |
| `enter`, `g` | FUSE | draw a candidate's / the result's genotype |
| `e` | FUSE | export the result's genotype (JSON) |
| `g`, `enter` | Space | draw the genotype under the cursor |
| `w`, `/` | Events | level filter, text filter |
| `enter` | Runs | open the run in the FUSE tab |

Distances: rows are **sources**, columns are **targets**; `d(source → target)` is asymmetric. Darker (and a lower bar) is nearer; the colour scale spans the off-diagonal values.
Without an engine the app browses the store read-only; actions that need one offer to start it.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss_help", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog help"):
            yield Markdown(HELP)

    def action_dismiss_help(self) -> None:
        self.dismiss(None)
