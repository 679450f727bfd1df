"""What a panel asks of the app: it posts one of these messages and the app (the only one that talks to the engine,
opens screens and switches tabs) handles it."""
from __future__ import annotations

from typing import Any

from textual.message import Message


class SendCommand(Message):
    """Send an engine command (`pause`, `resume`, `stop`, a job...) with its fields."""

    def __init__(self, name: str, **fields: Any) -> None:
        super().__init__()
        self.name, self.fields = name, fields


class OpenRun(Message):
    """Show a stored or running search in the FUSE tab."""

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id


class ExportRun(Message):
    """Write a finished search's genotype to a file."""

    def __init__(self, run_id: str | None) -> None:
        super().__init__()
        self.run_id = run_id


class AddTaskRequested(Message):
    """Open the add-task form."""


class RemoveTaskRequested(Message):
    """Ask to remove a task (the app confirms first)."""

    def __init__(self, task_id: str, name: str) -> None:
        super().__init__()
        self.task_id, self.name = task_id, name
