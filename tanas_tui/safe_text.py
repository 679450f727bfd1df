"""User text on a terminal: task names, paths and messages are never Rich markup and never terminal control codes.

A task named "[/x]" or a config at "[x]/[/y].toml" must print as itself, not crash Rich's markup parser or vanish;
an ESC in a name must not reach the terminal (it could move the cursor or retitle the window). Every user string
goes through `markup_safe` when it is part of a markup string, or `plain` when it is a table cell on its own.
"""
from __future__ import annotations

import re
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.text import Text

# C0 controls except tab and newline, DEL and the C1 controls (ESC, CSI, OSC ...)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(value: Any) -> str:
    """`value` as text with every control character shown as an escape (ESC -> \\x1b)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))


def markup_safe(value: Any) -> str:
    """`value` to embed in a Rich markup string: control characters escaped, brackets taken literally."""
    return escape(printable(value))


def plain(value: Any, style: str = "") -> Text:
    """`value` as a Rich Text (never parsed as markup), control characters escaped."""
    return Text(printable(value), style=style)


class SafeConsole(Console):
    """A Console whose strings (print arguments, table cells, titles) never reach the terminal with control
    characters. Created with markup=False for the CLI's output: a string is printed as it is; styled output is
    built from Text objects (or passes markup=True with every user part through `markup_safe`)."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(printable(text), **kwargs)
