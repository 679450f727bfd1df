"""The export dialog: format, output path, overwrite; the path is checked as the CLI checks it (an existing file
only with overwrite ticked, never a missing directory)."""
from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Select, Static

from engine.choices import EXPORT_FORMATS
from tanas_tui.export_target import ExportTargetError, check_output, default_output


class ExportScreen(ModalScreen[dict | None]):
    """Dismisses with {"format", "output"} (output checked and absolute) or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, run_id: str, directory: Path | None = None) -> None:
        super().__init__()
        self.run_id, self.directory = run_id, directory

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog form", id="export-dialog"):
            yield Static(f"Export {self.run_id}", classes="dialog-title")
            yield Select([(f, f) for f in EXPORT_FORMATS], value=EXPORT_FORMATS[0], allow_blank=False,
                         id="export-format")
            yield Input(str(default_output(self.run_id, EXPORT_FORMATS[0], self.directory)), id="export-path")
            yield Checkbox("overwrite an existing file", id="export-force")
            yield Static("", id="export-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Export", variant="primary", id="export-ok")
                yield Button("Cancel", id="export-cancel")

    @on(Select.Changed, "#export-format")
    def _format_changed(self, event: Select.Changed) -> None:
        path = self.query_one("#export-path", Input)
        default = {str(default_output(self.run_id, f, self.directory)) for f in EXPORT_FORMATS}
        if path.value in default:   # the user has not typed a path of their own: follow the format
            path.value = str(default_output(self.run_id, str(event.value), self.directory))

    @on(Input.Submitted, "#export-path")
    @on(Button.Pressed, "#export-ok")
    def submit(self) -> None:
        fmt = str(self.query_one("#export-format", Select).value)
        try:
            output = check_output(self.query_one("#export-path", Input).value,
                                  self.query_one("#export-force", Checkbox).value)
        except ExportTargetError as exc:
            # the path is user text: shown as text, never parsed as markup
            self.query_one("#export-error", Static).update(Text(str(exc).replace("--force", "overwrite"), style="red"))
            return
        self.dismiss({"format": fmt, "output": str(output)})

    @on(Button.Pressed, "#export-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
