"""The export dialog: format, output path, overwrite; the path is checked as the CLI checks it (an existing file
only with overwrite ticked, never a missing directory). `export_run` asks and then writes."""
from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

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


def export_run(app: Any, run_id: str | None) -> None:
    """Asks where and how to export a finished run, then writes it in a thread worker: a genotype file through the
    engine's own writer (validated), a model file through the export job (it only reads the store)."""
    s = app.model.searches.get(run_id) if run_id else None
    genotype = (s.result or {}).get("genotype") if s is not None else None
    if not genotype or not isinstance(genotype, dict):
        app.notify("nothing to export: the search has no resulting genotype yet", severity="warning")
        return

    def chosen(choice: dict | None) -> None:
        if choice:
            work = _write_genotype if choice["format"] == "genotype" else _write_model
            app.run_worker(partial(work, app, s.id, genotype, choice), thread=True, group="export")

    app.push_screen(ExportScreen(s.id), chosen)


def _write_genotype(app: Any, run_id: str, genotype: dict, choice: dict) -> None:
    from engine.space.genotype import Genotype

    try:
        Path(choice["output"]).write_text(Genotype.from_dict(genotype).file_text(), encoding="utf-8")
    except (OSError, ValueError) as exc:   # GenotypeError is a ValueError: a stored genotype that does not validate
        app.call_from_thread(app.notify, f"export of {run_id} failed: {exc}", severity="error", timeout=10)
        return
    app.call_from_thread(app.notify, f"genotype of {run_id} written to {choice['output']}", timeout=10)


def _write_model(app: Any, run_id: str, genotype: dict, choice: dict) -> None:
    """A model file needs the trained weights and torch: the export job runs here."""
    from tanas_tui.common import load_cli_config
    from tanas_tui.runner import job_result, run_job

    try:
        cfg = load_cli_config(app.config_path, app.store_path, check_classes=False)
        out = job_result(run_job("export", cfg, on_event=lambda event: None, run=run_id, format=choice["format"],
                                 output=choice["output"]))
    except Exception as exc:  # noqa: BLE001 - shown, never raised into the UI
        app.call_from_thread(app.notify, f"export of {run_id} failed: {exc}", severity="error", timeout=10)
        return
    app.call_from_thread(app.notify, f"{choice['format']} of {run_id} written to {out['path']}", timeout=10)
