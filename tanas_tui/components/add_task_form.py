"""The add-task form (modal): validates inline, dismisses with the task definition to send as `add_task`."""
from __future__ import annotations

from typing import Any, Mapping

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from engine.data.tasks import definition_problems


def split_names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def validate_task(values: Mapping[str, Any], existing: set[str],
                  catalog: Mapping[str, tuple[str, ...] | None] | None) -> tuple[dict[str, Any], dict[str, str]]:
    """(task definition, errors by field). `catalog` maps source name -> its classes (None: classes unknown);
    a None catalog means the sources could not be listed, so source names are not checked."""
    errors: dict[str, str] = {}
    name = str(values.get("name", "")).strip()
    source = str(values.get("source", "")).strip()
    positive = split_names(str(values.get("positive", "")))
    classes = split_names(str(values.get("classes", "")))
    if not name:
        errors["name"] = "name is required"
    elif name in existing:
        errors["name"] = f"a task named {name!r} already exists"
    if not source:
        errors["source"] = "source is required"
    elif catalog is not None and source not in catalog:
        errors["source"] = f"unknown source {source!r} (known: {', '.join(sorted(catalog)) or 'none'})"
    definition = {"name": name, "positive": positive or None, "classes": classes or None,
                  "other": bool(values.get("other"))}
    for key, message in definition_problems(definition):
        errors.setdefault(key or "positive", message)
    known = catalog.get(source) if catalog is not None and source in catalog else None
    if known is not None:
        for field, names in (("positive", positive), ("classes", classes)):
            unknown = [c for c in names if c not in known]
            if unknown and field not in errors:
                errors[field] = (f"source {source!r} has no class {unknown[0]!r} "
                                 f"(classes: {', '.join(known[:20])}{'…' if len(known) > 20 else ''})")
    task: dict[str, Any] = {"name": name, "source": source}
    if positive:
        task["positive"] = positive
    if classes:
        task["classes"] = classes
        task["other"] = bool(values.get("other"))
    return task, errors


class AddTaskScreen(ModalScreen[dict | None]):
    """Dismisses with {"task": {...}, "role": "base" | "target"} or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, existing: set[str], catalog: Mapping[str, tuple[str, ...] | None] | None) -> None:
        super().__init__()
        self.existing = existing
        self.catalog = catalog

    def compose(self) -> ComposeResult:
        sources = sorted(self.catalog or [])
        with Vertical(classes="dialog form"):
            yield Static("Add a task to the dictionary", classes="dialog-title")
            fields = (
                ("name", "name", "e.g. is-7", None),
                ("source", "source", "e.g. mnist-5k" + (f" ({', '.join(sources)})" if sources else ""),
                 SuggestFromList(sources)),
                ("positive", "positive", "binary one-vs-rest: class(es), comma-separated", None),
                ("classes", "or classes", "multi-class: classes, comma-separated", None),
            )
            for key, label, placeholder, suggester in fields:
                with Horizontal(classes="field"):
                    yield Label(label)
                    yield Input(placeholder=placeholder, id=key, suggester=suggester)
                yield Static("", id=f"{key}-error", classes="field-error")
            with Horizontal(classes="form-row"):
                yield Checkbox("other class", id="other")
                yield Select([("base task", "base"), ("target task", "target")], value="base", allow_blank=False,
                             id="role")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Add", variant="primary", id="submit")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#name", Input).focus()

    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: self.query_one(f"#{k}", Input).value for k in ("name", "source", "positive",
                                                                                 "classes")}
        out["other"] = self.query_one("#other", Checkbox).value
        return out

    def show_errors(self, errors: Mapping[str, str]) -> None:
        for field in ("name", "source", "positive", "classes"):
            widget = self.query_one(f"#{field}-error", Static)
            widget.update(errors.get(field, ""))
            widget.display = field in errors
            self.query_one(f"#{field}", Input).set_class(field in errors, "-invalid")

    @on(Input.Submitted)
    @on(Button.Pressed, "#submit")
    def submit(self) -> None:
        task, errors = validate_task(self.values(), self.existing, self.catalog)
        self.show_errors(errors)
        if errors:
            first = next(iter(errors))
            self.query_one(f"#{first}", Input).focus()
            return
        self.dismiss({"task": task, "role": str(self.query_one("#role", Select).value)})

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
