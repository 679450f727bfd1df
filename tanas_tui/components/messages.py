"""What a panel or screen asks of the app: it posts one of these typed intents and the app (the only one that talks
to the engine, through its link, opens screens and switches tabs) handles it. Engine commands travel as the
protocol's own command objects, validated when the panel builds them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from textual.message import Message

from engine.service import protocol as P

ControlAction = Literal["pause", "resume", "stop"]


@dataclass(eq=False)
class SubmitJob(Message):
    """Queue a job in the engine (the app offers to start an engine when none runs)."""
    command: P.JobCommand


@dataclass(eq=False)
class ControlRequested(Message):
    """Pause, resume or stop the job running search `run_id`, or job `job` itself. The app checks that there is
    something to control and where it runs, and asks before a stop unless `confirmed`."""
    action: ControlAction
    run_id: str | None = None
    job: str | None = None
    confirmed: bool = False


@dataclass(eq=False)
class OpenRun(Message):
    """Show a stored or running search in the FUSE tab."""
    run_id: str


@dataclass(eq=False)
class ExportRun(Message):
    """Write a finished search's genotype or trained network to a file."""
    run_id: str | None


@dataclass(eq=False)
class AddTaskRequested(Message):
    """Open the add-task form."""


@dataclass(eq=False)
class RemoveTaskRequested(Message):
    """Ask to remove a task (the app confirms first)."""
    task_id: str
    name: str
