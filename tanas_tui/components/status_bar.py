"""The status line: store path, engine connection, device, executor (when the engine reports one) and the job."""
from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

ENGINE_STYLE = {"connected": "bold green", "connecting": "yellow", "disconnected": "bold red",
                "not running": "dim", "starting": "yellow"}


class StatusBar(Static):
    store = reactive("")
    engine = reactive("not running")
    device = reactive("")
    executor = reactive("")
    job = reactive("")
    writer = reactive("")    # a headless run writing the store (no engine): the UI follows the store

    def render(self) -> Text:
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(" store ", style="dim")
        t.append(self.store or "—")
        t.append("  engine ", style="dim")
        if self.writer:
            t.append(self.writer + ", following the store", style="bold yellow")
        else:
            t.append(self.engine, style=ENGINE_STYLE.get(self.engine, ""))
        if self.device:
            t.append("  device ", style="dim")
            t.append(self.device)
        if self.executor:
            t.append("  executor ", style="dim")
            t.append(self.executor)
        t.append("  job ", style="dim")
        t.append(self.job or "idle", style="bold" if self.job else "dim")
        return t
