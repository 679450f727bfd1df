"""The engine's message protocol: every command and event, typed and versioned; the ONE place that knows it.

Wire format: one JSON object per line (UTF-8, newline-terminated, at most `MAX_MESSAGE_BYTES`), with
`"v"` (the protocol version), `"type"` (the message name) and the message's fields at the top level.
Events also carry `"seq"`:

* broadcast events (everything compute code emits, job events) have `seq >= 1`, strictly increasing over the
  life of a store, across engine restarts; a client that replayed the store up to seq S drops events with seq <= S;
* direct messages to one connection (`reply`, `dropped`, and an `error` answering a bad request) have `seq == 0`
  and are never dropped by that filter.

Commands carry an optional `id` chosen by the client; the engine's `reply` / `error` to it repeats that `id`.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Union

from engine.choices import DISTANCE_METHODS, ROLES, SPACE_KINDS

PROTOCOL_VERSION = 1
MAX_MESSAGE_BYTES = 1 << 20
MAX_SLEEP_STEPS = 1_000_000
ENVELOPE = ("v", "type", "seq")


class ProtocolError(ValueError):
    """A line that is not a valid message. `code` is one of ERROR_CODES; `request_id` is the offending
    command's `id` when it could be read, so the engine can address its error reply."""

    def __init__(self, message: str, code: str = "malformed", request_id: str | None = None):
        super().__init__(message)
        self.message, self.code, self.request_id = message, code, request_id


ERROR_CODES = (
    "malformed",       # not JSON, not an object, not UTF-8
    "oversized",       # longer than MAX_MESSAGE_BYTES
    "version",         # missing or unsupported "v"
    "unknown_type",    # no such command / event
    "missing_field",
    "extra_field",
    "bad_field",       # wrong type or value
    "not_a_command",   # an event sent to the engine
    "no_job",          # pause / resume / stop with nothing to act on
    "busy",            # the engine is shutting down
    "job_failed",      # a job raised
    "internal",
)


# --------------------------------------------------------------------------- base classes


@dataclass(frozen=True, kw_only=True)
class Message:
    TYPE: ClassVar[str] = ""

    def __post_init__(self) -> None:
        _validate(self)

    def payload(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "seq"}


@dataclass(frozen=True, kw_only=True)
class Command(Message):
    id: str | None = None


@dataclass(frozen=True, kw_only=True)
class JobCommand(Command):
    """A command that queues a job. `config`: a config file to use for this job instead of the engine's own (it
    must name the engine's store); `device`: overrides project.device for this job."""
    config: str | None = None
    device: str | None = None


@dataclass(frozen=True, kw_only=True)
class Event(Message):
    seq: int = 0

    @property
    def direct(self) -> bool:
        return self.seq == 0


def _choices(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise ProtocolError(f"field {name!r}: {value!r} is not one of {', '.join(allowed)}", "bad_field")


LEVELS = ("debug", "info", "warning", "error")
JOB_STATUSES = ("ok", "failed", "stopped")
JOB_STATES = ("paused", "running")
TASK_STATUSES = ("training", "fisher", "ready")
METHODS = DISTANCE_METHODS


# --------------------------------------------------------------------------- commands


@dataclass(frozen=True, kw_only=True)
class Status(Command):
    """Reply data: pid, seq, store, config, device, executor ("local" or the Ray cluster's state), job (running job or
    None), queue, paused."""
    TYPE: ClassVar[str] = "status"


@dataclass(frozen=True, kw_only=True)
class Subscribe(Command):
    """Start receiving broadcast events on this connection. Reply data: {"seq": the last seq already sent,
    "instance": this engine's id (new at every start), "pid": its process id}."""
    TYPE: ClassVar[str] = "subscribe"


@dataclass(frozen=True, kw_only=True)
class AddTask(JobCommand):
    """`task`: a TaskDef as a dict (name, source, positive | classes, ...) or {"name": N} of a config task."""
    TYPE: ClassVar[str] = "add_task"
    task: dict[str, Any]
    role: str = "base"

    def __post_init__(self) -> None:
        super().__post_init__()
        _choices("role", self.role, ROLES)
        if not isinstance(self.task.get("name"), str) or not self.task["name"]:
            raise ProtocolError("field 'task': needs a non-empty string 'name'", "bad_field", self.id)


@dataclass(frozen=True, kw_only=True)
class RemoveTask(JobCommand):
    TYPE: ClassVar[str] = "remove_task"
    task: str                      # name or id


@dataclass(frozen=True, kw_only=True)
class RemoveSearch(JobCommand):
    TYPE: ClassVar[str] = "remove_search"
    run: str                       # run id


@dataclass(frozen=True, kw_only=True)
class ComputeDistances(JobCommand):
    TYPE: ClassVar[str] = "compute_distances"
    method: str | None = None      # None: the config's dictionary.method

    def __post_init__(self) -> None:
        super().__post_init__()
        _choices("method", self.method, METHODS)


@dataclass(frozen=True, kw_only=True)
class MeasureNoiseFloor(JobCommand):
    """Same-task distances of every task of a method's matrix, stored with the matrix (`distances --check`)."""
    TYPE: ClassVar[str] = "noise_floor"
    method: str | None = None      # None: the config's dictionary.method

    def __post_init__(self) -> None:
        super().__post_init__()
        _choices("method", self.method, METHODS)


@dataclass(frozen=True, kw_only=True)
class BuildSpace(JobCommand):
    TYPE: ClassVar[str] = "build_space"
    target: str | None = None      # task name; None: the config's target
    kind: str | None = None        # None: the config's space.kind

    def __post_init__(self) -> None:
        super().__post_init__()
        _choices("kind", self.kind, SPACE_KINDS)


@dataclass(frozen=True, kw_only=True)
class StartSearch(JobCommand):
    TYPE: ClassVar[str] = "start_search"
    target: str | None = None
    space: str | None = None       # space kind; None: the config's space.kind
    run_id: str | None = None      # an existing run id resumes that run
    seed: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _choices("space", self.space, SPACE_KINDS)


@dataclass(frozen=True, kw_only=True)
class RunPipeline(JobCommand):
    """The whole pipeline."""
    TYPE: ClassVar[str] = "run_pipeline"


@dataclass(frozen=True, kw_only=True)
class Sleep(JobCommand):
    """Diagnostic job: `steps` steps of `seconds` each, with job_progress events and pause/stop checks."""
    TYPE: ClassVar[str] = "sleep"
    steps: int = 1
    seconds: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.steps <= MAX_SLEEP_STEPS or not 0 <= self.seconds <= 3600:  # NaN fails both comparisons
            raise ProtocolError(f"fields 'steps' (0..{MAX_SLEEP_STEPS}) and 'seconds' (0..3600) are out of range",
                                "bad_field", self.id)


@dataclass(frozen=True, kw_only=True)
class Pause(Command):
    TYPE: ClassVar[str] = "pause"
    job: str | None = None         # None: the running job


@dataclass(frozen=True, kw_only=True)
class Resume(Command):
    TYPE: ClassVar[str] = "resume"
    job: str | None = None


@dataclass(frozen=True, kw_only=True)
class Stop(Command):
    """Stops the running job at its next safe point, or removes a queued one."""
    TYPE: ClassVar[str] = "stop"
    job: str | None = None


@dataclass(frozen=True, kw_only=True)
class Shutdown(Command):
    """Stops the running job at a safe point, drops the queue, releases the store and exits."""
    TYPE: ClassVar[str] = "shutdown"


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, kw_only=True)
class JobStarted(Event):
    TYPE: ClassVar[str] = "job_started"
    job: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class JobProgress(Event):
    TYPE: ClassVar[str] = "job_progress"
    job: str
    stage: str
    done: int
    total: int


@dataclass(frozen=True, kw_only=True)
class JobDone(Event):
    """`status`: ok | failed | stopped; `result`: the job's JSON result; `message`: why it failed;
    `error_types`: the failure's exception class names, most specific first (clients map them to exit codes)."""
    TYPE: ClassVar[str] = "job_done"
    job: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    status: str = "ok"
    result: Any = None
    message: str = ""
    error_types: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _choices("status", self.status, JOB_STATUSES)


@dataclass(frozen=True, kw_only=True)
class TaskAdded(Event):
    TYPE: ClassVar[str] = "task_added"
    task_id: str
    name: str
    role: str

    def __post_init__(self) -> None:
        super().__post_init__()
        _choices("role", self.role, ROLES)


@dataclass(frozen=True, kw_only=True)
class TaskStatus(Event):
    """A stored task changed state: `training` (its probe, also a retraining), `fisher` (its own Fisher), `ready`."""
    TYPE: ClassVar[str] = "task_status"
    task_id: str
    name: str
    status: str

    def __post_init__(self) -> None:
        super().__post_init__()
        _choices("status", self.status, TASK_STATUSES)


@dataclass(frozen=True, kw_only=True)
class JobState(Event):
    """The running job reached a safe point while a pause was requested (`paused`), or went on (`running`).
    `job` is None when the reporter does not know its job's id (the one running job)."""
    TYPE: ClassVar[str] = "job_state"
    state: str
    job: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _choices("state", self.state, JOB_STATES)


@dataclass(frozen=True, kw_only=True)
class ExecutorStatus(Event):
    """Where units of work run and how busy it is: `local`, or `ray: 3 nodes, 12/16 CPUs, 2/2 GPUs busy`. Sent when
    a job connects a remote executor, again whenever the reading changes while its units run (looked at every
    `STATUS_INTERVAL` seconds), and when the job ends; a status line shows the newest one."""
    TYPE: ClassVar[str] = "executor_status"
    executor: str
    job: str | None = None


STATUS_INTERVAL = 2.0


@dataclass(frozen=True, kw_only=True)
class TaskRemoved(Event):
    TYPE: ClassVar[str] = "task_removed"
    task_id: str
    name: str


@dataclass(frozen=True, kw_only=True)
class ProbeProgress(Event):
    TYPE: ClassVar[str] = "probe_progress"
    task_id: str
    name: str
    seed_index: int
    epoch: int
    max_epochs: int
    val_acc: float
    loss: float


@dataclass(frozen=True, kw_only=True)
class ProbeDone(Event):
    TYPE: ClassVar[str] = "probe_done"
    task_id: str
    name: str
    val_acc: float
    epochs: int
    seconds: float
    representative: bool


@dataclass(frozen=True, kw_only=True)
class Distance(Event):
    TYPE: ClassVar[str] = "distance"
    method: str
    source: str
    target: str
    value: float
    std: float = 0.0


@dataclass(frozen=True, kw_only=True)
class SpaceBuilt(Event):
    TYPE: ClassVar[str] = "space_built"
    target: str
    kind: str
    space: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class AlphaStep(Event):
    TYPE: ClassVar[str] = "alpha_step"
    run_id: str
    step: int
    round: int
    alternation: int
    alpha: list[float]
    loss_train: float
    loss_val: float
    val_acc: list[float]


@dataclass(frozen=True, kw_only=True)
class SearchRound(Event):
    TYPE: ClassVar[str] = "search_round"
    run_id: str
    round: int
    incumbent: str
    candidates: list[str]
    genotypes: list[Any]


@dataclass(frozen=True, kw_only=True)
class SearchCandidates(Event):
    """A FUSE round begins: its candidates (the carried-over incumbent first, when there is one)."""
    TYPE: ClassVar[str] = "search_candidates"
    run_id: str
    round: int
    candidates: list[str]
    genotypes: list[dict[str, Any]] = field(default_factory=list)
    incumbent: str | None = None


@dataclass(frozen=True, kw_only=True)
class WeightProgress(Event):
    """Batches done in the current weight phase of a FUSE search (over all its weight epochs)."""
    TYPE: ClassVar[str] = "weight_progress"
    run_id: str
    round: int
    alternation: int
    done: int
    total: int


@dataclass(frozen=True, kw_only=True)
class SearchDone(Event):
    TYPE: ClassVar[str] = "search_done"
    run_id: str
    result: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class Warning(Event):  # noqa: A001 - the event's name
    TYPE: ClassVar[str] = "warning"
    message: str
    code: str | None = None


@dataclass(frozen=True, kw_only=True)
class Log(Event):
    TYPE: ClassVar[str] = "log"
    message: str
    level: str = "info"

    def __post_init__(self) -> None:
        super().__post_init__()
        _choices("level", self.level, LEVELS)


@dataclass(frozen=True, kw_only=True)
class Error(Event):
    """A failed job (broadcast, with `job`) or a rejected request (direct, with the request's `id`)."""
    TYPE: ClassVar[str] = "error"
    message: str
    code: str = "internal"
    id: str | None = None
    job: str | None = None


@dataclass(frozen=True, kw_only=True)
class Reply(Event):
    """The answer to a command: `command` is its type, `data` its result (job id, status, seq...)."""
    TYPE: ClassVar[str] = "reply"
    command: str
    id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Dropped(Event):
    """Sent before the engine disconnects a client that fell `limit` events behind; replay the store."""
    TYPE: ClassVar[str] = "dropped"
    last_seq: int
    limit: int
    message: str = "client fell behind; replay the store and reconnect"


COMMANDS: dict[str, type[Command]] = {
    c.TYPE: c for c in (Status, Subscribe, AddTask, RemoveTask, RemoveSearch, ComputeDistances, MeasureNoiseFloor,
                        BuildSpace, StartSearch,
                        RunPipeline, Sleep, Pause, Resume, Stop, Shutdown)
}
EVENTS: dict[str, type[Event]] = {
    c.TYPE: c for c in (JobStarted, JobProgress, JobState, JobDone, ExecutorStatus, TaskAdded, TaskStatus, TaskRemoved,
                        ProbeProgress, ProbeDone, Distance, SpaceBuilt, SearchCandidates, WeightProgress, AlphaStep,
                        SearchRound, SearchDone, Warning, Log, Error, Reply, Dropped)
}
MESSAGES: dict[str, type[Message]] = {**COMMANDS, **EVENTS}
JOB_COMMANDS = tuple(name for name, cls in COMMANDS.items() if issubclass(cls, JobCommand))


# --------------------------------------------------------------------------- validation


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _check(value: Any, tp: Any) -> bool:
    if tp is Any:
        return True
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return any(_check(value, arg) for arg in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:  # 64-bit: a 4,000-digit seed or step count is an error reply, not a job that fails later
        return isinstance(value, int) and not isinstance(value, bool) and -(1 << 63) <= value < (1 << 63)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin is list or tp is list:
        args = typing.get_args(tp)
        return isinstance(value, list) and (not args or all(_check(v, args[0]) for v in value))
    if origin is dict or tp is dict:
        args = typing.get_args(tp)
        return isinstance(value, dict) and all(isinstance(k, str) for k in value) and (
            not args or all(_check(v, args[1]) for v in value.values()))
    raise TypeError(f"protocol field type {tp!r} not supported")


def _validate(msg: Message) -> None:
    hints = _hints(type(msg))
    rid = getattr(msg, "id", None) if isinstance(getattr(msg, "id", None), str) else None
    for f in dataclasses.fields(msg):
        value = getattr(msg, f.name)
        if not _check(value, hints[f.name]):
            raise ProtocolError(
                f"{msg.TYPE}: field {f.name!r} must be {_type_name(hints[f.name])}, got {type(value).__name__} {value!r:.80}",
                "bad_field", rid)
        if hints[f.name] is float and isinstance(value, int):
            object.__setattr__(msg, f.name, float(value))
    if isinstance(msg, Event) and msg.seq < 0:
        raise ProtocolError(f"{msg.TYPE}: seq must be >= 0", "bad_field")


def plain(value: Any) -> Any:
    """JSON-able copy: numpy / torch scalars and arrays become Python numbers and lists, tuples become lists."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    tolist = getattr(value, "tolist", None)
    if callable(tolist):  # numpy arrays and scalars, torch tensors
        return plain(tolist())
    item = getattr(value, "item", None)
    if callable(item):
        return plain(item())
    raise ProtocolError(f"value of type {type(value).__name__} cannot be sent in a message", "bad_field")


def _build(cls: type[Message], data: dict[str, Any], rid: str | None) -> Message:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    extra = sorted(set(data) - set(fields))
    if extra:
        raise ProtocolError(f"{cls.TYPE}: unknown field(s) {', '.join(extra)}", "extra_field", rid)
    missing = [n for n, f in fields.items() if n not in data
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ProtocolError(f"{cls.TYPE}: missing field(s) {', '.join(missing)}", "missing_field", rid)
    try:
        return cls(**data)
    except ProtocolError as exc:
        exc.request_id = exc.request_id or rid
        raise


def make_event(name: str, seq: int, payload: dict[str, Any]) -> Event:
    """The event `name` with `payload` (as compute code emits it), validated; ProtocolError when it does not fit."""
    cls = EVENTS.get(name)
    if cls is None:
        raise ProtocolError(f"unknown event {name!r}", "unknown_type")
    if any(k in ENVELOPE for k in payload):
        raise ProtocolError(f"{name}: payload may not use the reserved keys {', '.join(ENVELOPE)}", "extra_field")
    return _build(cls, {**plain(payload), "seq": seq}, None)  # type: ignore[return-value]


def make_command(name: str, **fields: Any) -> Command:
    cls = COMMANDS.get(name)
    if cls is None:
        raise ProtocolError(f"unknown command {name!r}", "unknown_type")
    return _build(cls, plain(fields), fields.get("id"))  # type: ignore[return-value]


# --------------------------------------------------------------------------- wire format


def encode(msg: Message) -> bytes:
    obj: dict[str, Any] = {"v": PROTOCOL_VERSION, "type": msg.TYPE}
    if isinstance(msg, Event):
        obj["seq"] = msg.seq
    obj.update(plain(msg.payload()))
    line = json.dumps(obj, separators=(",", ":"), allow_nan=True).encode() + b"\n"
    if len(line) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"{msg.TYPE}: message of {len(line)} bytes exceeds {MAX_MESSAGE_BYTES}", "oversized")
    return line


def decode(line: bytes | str) -> Message:
    raw = line.encode() if isinstance(line, str) else bytes(line)
    if len(raw.rstrip(b"\r\n")) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {len(raw)} bytes exceeds {MAX_MESSAGE_BYTES}", "oversized")
    try:
        obj = json.loads(raw.decode("utf-8"), parse_constant=_nan_constant)
    except (UnicodeDecodeError, ValueError) as exc:  # ValueError: bad JSON, or an integer of over 4,300 digits
        raise ProtocolError(f"not a JSON line: {str(exc)[:200]}", "malformed") from None
    except RecursionError:
        raise ProtocolError("not a JSON line: nested too deeply", "malformed") from None
    if not isinstance(obj, dict):
        raise ProtocolError(f"a message must be a JSON object, got {type(obj).__name__}", "malformed")
    rid = obj.get("id") if isinstance(obj.get("id"), str) else None
    version = obj.pop("v", None)
    if type(version) is not int or version != PROTOCOL_VERSION:  # true == 1 and 1.0 == 1 in Python: not here
        raise ProtocolError(f"protocol version {version!r} is not supported (this side speaks v{PROTOCOL_VERSION})",
                            "version", rid)
    kind = obj.pop("type", None)
    cls = MESSAGES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ProtocolError(f"unknown message type {kind!r}", "unknown_type", rid)
    if issubclass(cls, Command) and "seq" in obj:
        raise ProtocolError(f"{kind}: commands carry no 'seq'", "extra_field", rid)
    if issubclass(cls, Event) and not isinstance(obj.get("seq"), int):
        raise ProtocolError(f"{kind}: events need an integer 'seq'", "missing_field" if "seq" not in obj else "bad_field")
    return _build(cls, obj, rid)


def _nan_constant(name: str) -> float:
    return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[name]


def decode_command(line: bytes | str) -> Command:
    msg = decode(line)
    if not isinstance(msg, Command):
        raise ProtocolError(f"{msg.TYPE} is an event, not a command", "not_a_command")
    return msg


# --------------------------------------------------------------------------- where the channel lives

PID_FILE, SOCK_FILE, LOG_FILE, SEQ_FILE = "engine.pid", "engine.sock", "engine.log", "engine.seq"


def run_paths(store_path: Path) -> dict[str, Path]:
    run_dir = Path(store_path) / "runs"
    return {"run_dir": run_dir, "pid": run_dir / PID_FILE, "sock": run_dir / SOCK_FILE,
            "log": run_dir / LOG_FILE, "seq": run_dir / SEQ_FILE}


class SocketPath:
    """A bind/connect address for a socket file: sun_path holds ~107 bytes, store paths can be longer, so long paths
    go through /proc/self/fd/<dirfd>/<name> (Linux) while the directory descriptor is open."""

    LIMIT = 100

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None

    def __enter__(self) -> str:
        text = str(self.path)
        if len(text.encode()) <= self.LIMIT or not Path("/proc/self/fd").is_dir():
            return text
        self._fd = os.open(self.path.parent, os.O_RDONLY)
        return f"/proc/self/fd/{self._fd}/{self.path.name}"

    def __exit__(self, *exc: Any) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
