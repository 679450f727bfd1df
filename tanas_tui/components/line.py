"""A one-line text widget that redraws without a layout pass (a Static's update re-lays out the whole screen,
too costly ten times a second while events stream in)."""
from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widget import Widget


class Line(Widget):
    DEFAULT_CSS = "Line { height: 1; width: 1fr; }"

    def __init__(self, text: str | Text = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._text = text if isinstance(text, Text) else Text(text)

    @property
    def text(self) -> Text:
        return self._text

    def set(self, text: str | Text) -> None:
        text = text if isinstance(text, Text) else Text(text)
        if text != self._text:
            self._text = text
            self.refresh()

    def render(self) -> Text:
        return self._text
