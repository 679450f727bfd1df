"""A modal screen with a genotype's cells drawn as DAGs (normal and reduction, side by side when they fit)."""
from __future__ import annotations

from typing import Any, Mapping

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tanas_tui.genotype_art import cell_widths, genotype_picture


class GenotypeScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,g,enter", "close", "Close")]
    DEFAULT_CSS = """
    GenotypeScreen { align: center middle; }
    GenotypeScreen > VerticalScroll { width: auto; max-width: 100%; height: auto; max-height: 100%;
                                      border: round $primary; padding: 0 1; background: $surface; }
    GenotypeScreen Static { width: auto; }
    """

    def __init__(self, genotype: Mapping[str, Any], title: str = "") -> None:
        super().__init__()
        self.genotype, self.title_text = dict(genotype), title

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="genotype-scroll"):
            yield Static(id="genotype-picture")

    def on_mount(self) -> None:
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        widths = cell_widths(self.genotype)
        wide = self.app.size.width >= sum(widths) + 3 + 6
        picture = self.query_one("#genotype-picture", Static)
        picture.styles.width = max(sum(widths) + 3 if wide else max(widths), len(self.title_text) + 20)
        picture.update(genotype_picture(self.genotype, side_by_side=wide, title=self.title_text))
        self.query_one("#genotype-scroll").border_subtitle = "esc: close"

    def action_close(self) -> None:
        self.dismiss(None)
