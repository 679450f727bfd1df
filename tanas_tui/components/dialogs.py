"""Small modal screens: a yes/no confirmation."""
from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmScreen(ModalScreen[bool]):
    """Dismisses with True (yes) or False (no / escape). Focus starts on the `default` button: "no" for what throws
    something away (a stop, a removal), "yes" where Enter should go on with what the user just asked for."""

    BINDINGS = [Binding("escape", "no", "Cancel"), Binding("y", "yes", "Yes", show=False),
                Binding("n", "no", "No", show=False)]

    def __init__(self, question: str, yes: str = "Yes", no: str = "No", default: str = "no") -> None:
        super().__init__()
        self.question, self.yes_label, self.no_label = question, yes, no
        self.default = "yes" if default == "yes" else "no"

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(self.question), classes="dialog-question")   # names and paths are user text
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.yes_label, variant="error" if self.default == "no" else "primary", id="yes")
                yield Button(self.no_label, variant="primary" if self.default == "no" else "default", id="no")

    def on_mount(self) -> None:
        self.query_one(f"#{self.default}", Button).focus()

    @on(Button.Pressed, "#yes")
    def action_yes(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#no")
    def action_no(self) -> None:
        self.dismiss(False)
