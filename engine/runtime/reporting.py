"""How long-running engine work reports progress and honours pause / stop requests.

Compute code calls `reporter.emit(event, **data)` with event names from `engine.service.protocol` and
`reporter.check()` between units of work (batches, epochs, pairs). A job runner supplies a reporter that
forwards events to clients; tests and library use get the silent default.
"""
from __future__ import annotations

import threading
from typing import Any, Callable


class JobStopped(Exception):
    """Raised by `Reporter.check()` when a stop was requested; the job ends at a consistent point."""


class Reporter:
    def __init__(self, sink: Callable[[str, dict[str, Any]], None] | None = None):
        self._sink = sink
        self._running = threading.Event()
        self._running.set()
        self._stop = threading.Event()

    def emit(self, event: str, **data: Any) -> None:
        if self._sink is not None:
            self._sink(event, data)

    def check(self) -> None:
        if self._stop.is_set():
            raise JobStopped()
        if not self._running.is_set():
            self.emit("job_state", state="paused")
            while not self._running.wait(0.2):
                if self._stop.is_set():
                    raise JobStopped()
            self.emit("job_state", state="running")
        if self._stop.is_set():
            raise JobStopped()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()


class RecordingReporter(Reporter):
    """Keeps every event in `self.events` as (name, data); for tests and the in-process CLI."""

    def __init__(self, sink: Callable[[str, dict[str, Any]], None] | None = None):
        super().__init__(sink)
        self.events: list[tuple[str, dict[str, Any]]] = []

    def emit(self, event: str, **data: Any) -> None:
        self.events.append((event, data))
        super().emit(event, **data)


SILENT = Reporter()
