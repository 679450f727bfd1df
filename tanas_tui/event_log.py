"""The UI's event log: every engine event worth reading later (logs, warnings, errors, jobs starting and ending,
tasks, spaces, rounds, results) with its arrival time, level and a one-line message. Per-step events (α steps, probe
epochs, single distances, job progress) are left out: the panels show those.

Pure Python (no Textual): the app feeds it the same batches it applies to `UiState`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from tanas_tui.ui_state import normalize_event

EVENTS = "events"          # the topic `EventLog.add_many` reports
LEVELS = ("info", "warning", "error")
MAX_ENTRIES = 2000


@dataclass(frozen=True)
class Entry:
    n: int               # arrival order, the row key
    time: float
    level: str           # info | warning | error
    kind: str            # the event name
    message: str

    def matches(self, text: str, level: str | None) -> bool:
        if level == "warning" and self.level == "info":
            return False
        if level == "error" and self.level != "error":
            return False
        needle = text.lower().strip()
        return not needle or needle in self.message.lower() or needle in self.kind.lower()


def _name(names: Callable[[str], str], d: Mapping[str, Any], key: str) -> str:
    value = d.get(key)
    return names(str(value)) if value is not None else "?"


def describe(name: str, d: Mapping[str, Any], names: Callable[[str], str]) -> tuple[str, str] | None:
    """(level, message) for an event worth logging, None for the per-step ones."""
    if name == "log":
        level = str(d.get("level", "info"))
        return ("info" if level == "debug" else level), str(d.get("message", ""))
    if name == "warning":
        code = d.get("code")
        return "warning", str(d.get("message", "")) + (f" [{code}]" if code else "")
    if name == "error":
        return "error", str(d.get("message", "")) + (f" (job {d['job']})" if d.get("job") else "")
    if name == "job_started":
        return "info", f"job {d.get('job', '?')} started: {str(d.get('kind', '')).replace('_', ' ')}"
    if name == "job_done":
        status = str(d.get("status", "ok"))
        level = {"ok": "info", "stopped": "warning"}.get(status, "error")
        extra = f": {d['message']}" if d.get("message") else ""
        return level, f"job {d.get('job', '?')} {'done' if status == 'ok' else status}{extra}"
    if name == "task_added":
        return "info", f"task {d.get('name', d.get('task_id'))} added ({d.get('role', 'base')})"
    if name == "task_removed":
        return "info", f"task {d.get('name', d.get('task_id'))} removed"
    if name == "probe_done":
        acc = d.get("val_acc")
        acc_text = f"{acc * 100:.1f}%" if isinstance(acc, (int, float)) else "?"
        if d.get("representative") is False:
            return "warning", f"probe of {d.get('name', '?')} done at {acc_text} val accuracy: not ε-representative"
        return "info", f"probe of {d.get('name', '?')} done at {acc_text} val accuracy"
    if name == "space_built":
        return "info", f"{d.get('kind', '?')} space built for {_name(names, d, 'target')}"
    if name == "search_round":
        return "info", f"search {d.get('run_id')}: round {int(d.get('round', 0)) + 1} with " \
                       f"{len(d.get('candidates') or [])} candidates"
    if name == "search_done":
        r = d.get("result") or {}
        err = r.get("test_error")
        err_text = f", test error {err:.2f}%" if isinstance(err, (int, float)) else ""
        return "info", f"search {d.get('run_id')} done: genotype {r.get('hash', '?')}{err_text}"
    return None


class EventLog:
    def __init__(self, names: Callable[[str], str] = str, limit: int = MAX_ENTRIES) -> None:
        self.names = names
        self.limit = limit
        self.entries: list[Entry] = []
        self._n = 0

    def add(self, name: str, data: Mapping[str, Any], now: float) -> bool:
        described = describe(name, data, self.names)
        if described is None:
            return False
        level, message = described
        self._n += 1
        self.entries.append(Entry(self._n, now, level if level in LEVELS else "info", name, message))
        del self.entries[:-self.limit]
        return True

    def add_many(self, events: Iterable[Any], now: float) -> set[str]:
        changed = False
        for event in events:
            try:
                name, data, _ = normalize_event(event)
            except Exception:  # noqa: BLE001 - UiState reports malformed events
                continue
            changed |= self.add(name, data, now)
        return {EVENTS} if changed else set()

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(LEVELS, 0)
        for e in self.entries:
            out[e.level] += 1
        return out
