"""The UI's event log (what the Events tab lists): every engine event worth reading later (logs, warnings, errors,
jobs starting and ending, tasks, spaces, rounds, results) with its time and level, and the engine's own log
(`runs/engine.log`: what earlier engines did, before this window connected or while it was away). Per-step events
(α steps, probe epochs, single distances, job progress) are left out: the panels show those.

Events are worded by the headless renderer's `EventText`, so the tab and `tanas-tui run > log` say the same thing.
Pure Python (no Textual): the app feeds it the batches it applies to the model."""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from engine.service import protocol as P
from tanas_tui.headless import EventText
from tanas_tui.model.topics import EVENTS

LEVELS = ("info", "warning", "error")
MAX_ENTRIES = 2000
ENGINE_LOG = "engine log"   # the kind of an entry read from the engine's log file
HISTORY_BYTES = 1 << 20     # at most the last MiB of the engine's log is read as history

# the engine's log format (engine/service/server.py): "%(asctime)s %(levelname)s %(message)s"
_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (DEBUG|INFO|WARNING|ERROR|CRITICAL) (.*)$")


@dataclass(frozen=True)
class Entry:
    n: int               # arrival order, the row key
    time: float
    level: str           # info | warning | error
    kind: str            # the event's type, or ENGINE_LOG
    message: str

    def matches(self, text: str, level: str | None) -> bool:
        if level == "warning" and self.level == "info":
            return False
        if level == "error" and self.level != "error":
            return False
        needle = text.lower().strip()
        return not needle or needle in self.message.lower() or needle in self.kind.lower()


def level_of(ev: P.Event) -> str | None:
    """The level an event is listed at; None for the events the log leaves to the panels."""
    match ev:
        case P.Log():
            return "info" if ev.level == "debug" else ev.level
        case P.Warning():
            return "warning"
        case P.Error():
            return "error"
        case P.JobDone():
            return {"ok": "info", "stopped": "warning"}.get(ev.status, "error")
        case P.ProbeDone():
            return "info" if ev.representative else "warning"
        case P.JobStarted() | P.TaskAdded() | P.TaskRemoved() | P.SpaceBuilt() | P.SearchRound() | P.SearchDone():
            return "info"
    return None


def message_of(ev: P.Event, text: EventText) -> str:
    match ev:
        case P.Log():
            return ev.message
        case P.Warning():
            return ev.message + (f" [{ev.code}]" if ev.code else "")
        case P.Error():
            return ev.message + (f" (job {ev.job})" if ev.job else "")
    return text(ev) or ev.TYPE


@dataclass(frozen=True)
class LogLine:
    """One record of the engine's log: its time, level and message (a traceback's last line appended)."""
    time: float
    level: str
    message: str


def read_engine_log(path: Path, offset: int | None = None) -> tuple[list[LogLine], int]:
    """The records of the engine's log after byte `offset` (None: its last HISTORY_BYTES), and the offset to go on
    from. A half-written last line is left for the next read; a log shorter than `offset` was replaced: read whole."""
    try:
        size = path.stat().st_size
    except OSError:
        return [], 0
    start = max(0, size - HISTORY_BYTES) if offset is None else (offset if offset <= size else 0)
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read(size - start)
    end = data.rfind(b"\n") + 1
    lines = data[:end].decode("utf-8", "replace").splitlines()
    if offset is None and start > 0 and lines:
        lines = lines[1:]   # began mid-line
    records: list[tuple[float, str, str, str]] = []
    for line in lines:
        m = _LINE.match(line)
        if m:
            stamp = time.mktime(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S"))
            level = {"DEBUG": "info", "INFO": "info", "WARNING": "warning"}.get(m.group(2), "error")
            records.append((stamp, level, m.group(3), ""))
        elif records and line.strip():
            # an error's traceback (or one the process printed as it died): keep its last line, the exception;
            # other output (the engine's own start line on stdout) repeats a record
            stamp, level, message, _ = records[-1]
            if level == "error":
                records[-1] = (stamp, level, message, line.strip())
            elif line.startswith("Traceback"):
                records.append((stamp, "error", "the engine printed a traceback", ""))
    out = [LogLine(stamp, level, f"{message.rstrip(':')}: {tail}" if tail else message)
           for stamp, level, message, tail in records]
    return out, start + end


def log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class EventLog:
    def __init__(self, names: Callable[[str], str] = str, limit: int = MAX_ENTRIES) -> None:
        self.text = EventText(lookup=names)
        self.limit = limit
        self.entries: list[Entry] = []
        self._n = 0

    def _add(self, when: float, level: str, kind: str, message: str) -> None:
        self._n += 1
        self.entries.append(Entry(self._n, when, level if level in LEVELS else "info", kind, message))

    def add_many(self, events: Iterable[P.Event], now: float) -> set[str]:
        before = self._n
        for ev in events:
            level = level_of(ev)
            if level is not None:
                self._add(now, level, ev.TYPE, message_of(ev, self.text))
            elif isinstance(ev, (P.ProbeProgress, P.TaskStatus)):
                self.text.names[ev.task_id] = ev.name   # the names later lines use
        del self.entries[:-self.limit]
        return {EVENTS} if self._n != before else set()

    def add_history(self, lines: Iterable[LogLine]) -> set[str]:
        """Records of the engine's log, in their own time order, before what arrives live after them."""
        before = self._n
        for line in lines:
            self._add(line.time, line.level, ENGINE_LOG, line.message)
        del self.entries[:-self.limit]
        return {EVENTS} if self._n != before else set()

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(LEVELS, 0)
        for e in self.entries:
            out[e.level] += 1
        return out


def read_log_lines(path: Path, offset: int = 0) -> tuple[list[tuple[str, str]], int]:
    """The engine log's raw lines after byte `offset` as (level, line), and the offset to go on from: a line without
    a record's header (a traceback's) takes the level of the record above it. A half-written last line waits for the
    next read; a log shorter than `offset` was rotated: read from its start."""
    size = log_size(path)
    start = offset if offset <= size else 0
    if size == start:
        return [], start
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read(size - start)
    end = data.rfind(b"\n") + 1
    out: list[tuple[str, str]] = []
    level = "info"
    for line in data[:end].decode("utf-8", "replace").splitlines():
        m = _LINE.match(line)
        if m:
            level = {"DEBUG": "info", "INFO": "info", "WARNING": "warning"}.get(m.group(2), "error")
        out.append((level, line))
    return out, start + end
