"""The `?` help screen: one dense key table (the key column never wraps), so 80×24 shows most keys at once."""
from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS: tuple[tuple[str, str, str], ...] = (
    ("1…6", "anywhere", "Dictionary, Distances, Space, FUSE, Runs, Events"),
    ("ctrl+p", "anywhere", "command palette: start engine, distances, search, …"),
    ("c", "anywhere", "compare view: every arm of the comparison, full screen"),
    ("j", "anywhere", "engine jobs: running, queued, ended (x cancels one)"),
    ("l", "anywhere", "log pane: the engine's log or one run's log"),
    ("?", "anywhere", "this help"),
    ("q, ctrl+q", "anywhere", "quit (the engine keeps running)"),
    ("/", "Dictionary", "filter tasks (enter or esc: back to the table)"),
    ("o, header", "Dictionary", "sort by the cursor's column (again: reverse)"),
    ("a / d", "Dictionary", "add a task (form) / remove the selected one"),
    ("m", "Distances", "switch method (fisher / transfer)"),
    ("enter, n", "Distances", "mark the k nearest tasks of the target column"),
    ("f / o", "Distances", "target column first / rows sorted by it"),
    ("g, enter", "Space", "draw the genotype under the cursor"),
    ("p / r / s", "FUSE", "pause / resume / stop (stop asks first)"),
    ("[ / ]", "FUSE", "plots: all rounds or one round"),
    ("f", "FUSE", "follow the running search / stay on this one"),
    ("enter / g", "FUSE", "draw a candidate's / the result's genotype"),
    ("e", "FUSE", "export: format, path, overwrite"),
    ("enter", "Runs", "open the run in the FUSE tab"),
    ("r / n / d", "Runs", "resume a stopped run / re-run, next seed / delete"),
    ("w, /", "Events", "level filter, text filter"),
    ("o / O, header", "Compare", "sort by the next column / reverse (a header: by it)"),
    ("w / r", "Compare", "every column (scrolls, the arm column stays) / reload"),
    ("space, v", "Compare", "mark two runs, then show them side by side"),
    ("w / &", "Log", "level filter / text filter (only matching lines)"),
    ("/, n / N", "Log", "search / next, previous match"),
    ("f / s", "Log", "follow the end / the engine's log or the run's"),
)

NOTES = ("Distances: rows are sources, columns targets. The default Fisher form (fisher_form = \"domain\", like "
         "\"embedding\") is symmetric: d(a → b) = d(b → a); METHOD's \"pair\" form and the transfer distance are "
         "asymmetric. Darker (and a lower bar) is nearer; the scale spans the off-diagonal values. Without an engine "
         "the app browses the store read-only; actions that need one offer to start it.")
SYMMETRIC_FORMS = ("domain", "embedding")


def form_note(config: Any) -> str:
    """What this config's distance is: symmetric or not."""
    if config is None:
        return ""
    d = config.dictionary
    if d.method != "fisher":
        return f"This config ranks by the {d.method} distance: asymmetric, d(a → b) ≠ d(b → a)."
    kind = "symmetric" if d.fisher_form in SYMMETRIC_FORMS else "asymmetric"
    return f"This config: fisher_form = \"{d.fisher_form}\" ({kind})."


def help_table() -> Table:
    table = Table(box=None, padding=(0, 1), show_edge=False, expand=False, header_style="bold")
    table.add_column("key", style="bold cyan", no_wrap=True)
    table.add_column("where", style="dim", no_wrap=True)
    table.add_column("does")
    for key, where, does in KEYS:
        table.add_row(key, where, does)
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss_help", "Close")]

    def __init__(self, config: Any = None) -> None:
        super().__init__()
        self.config = config

    def compose(self) -> ComposeResult:
        note = " ".join(p for p in (NOTES, form_note(self.config)) if p)
        with VerticalScroll(classes="dialog help"):
            yield Static(Group(Text("tanas-tui keys", style="bold"), help_table(), Text(""),
                               Text(note, style="dim")), id="help-body")

    def action_dismiss_help(self) -> None:
        self.dismiss(None)
