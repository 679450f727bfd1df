"""The engine's message protocol: every command and event, typed and versioned; the ONE place that knows it.

Wire format: one JSON object per line (UTF-8, newline-terminated, at most `MAX_MESSAGE_BYTES`), with `"v"` (the
protocol version), `"type"` (the message name) and the message's fields at the top level. Events also carry `"seq"`:

* broadcast events (everything compute code emits, job events) have `seq >= 1`, strictly increasing over the
  life of a store, across engine restarts; a client that replayed the store up to seq S drops events with seq <= S;
* direct messages to one connection (`reply`, `dropped`, and an `error` answering a bad request) have `seq == 0`
  and are never dropped by that filter.

Commands carry an optional `id` chosen by the client (at most `MAX_ID_CHARS`); the engine's `reply` / `error` to it
repeats that `id`. The line format's bounds (size, nesting depth, 64-bit integers) and the field type checks live in
engine/service/wire.py, the run directory's file names and socket addresses in engine/service/runfiles.py; both are
re-exported here, so clients import this module only.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from engine.choices import CUDA_DEVICE, DEVICES, DISTANCE_METHODS, ROLES, SPACE_KINDS
from engine.service.runfiles import LOG_FILE, PID_FILE, SEQ_FILE, SOCK_FILE, SocketPath, run_paths  # noqa: F401
from engine.service.wire import (ERROR_CODES, MAX_DEPTH, MAX_ID_CHARS, MAX_MESSAGE_BYTES,  # noqa: F401
                                 ProtocolError, check_fields, choice, decode_line, encode_line, plain, request_id,
                                 seed_field, text)

PROTOCOL_VERSION = 2   # 2: a job command's `config` is the resolved config as plain data, no longer a file path
MAX_SLEEP_STEPS = 1_000_000
SEED_LIMIT = 2 ** 32   # = engine.config.SEED_LIMIT: seeds numpy and torch both take
ENVELOPE = ("v", "type", "seq")


# --------------------------------------------------------------------------- base classes


@dataclass(frozen=True, kw_only=True)
class Message:
    TYPE: ClassVar[str] = ""

    def __post_init__(self) -> None:
        check_fields(self)
        if isinstance(self, Event) and self.seq < 0:
            raise ProtocolError(f"{self.TYPE}: seq must be >= 0", "bad_field")

    @property
    def rid(self) -> str | None:
        """This message's `id` when an error reply may repeat it."""
        return request_id({"id": getattr(self, "id", None)})

    def payload(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "seq"}


@dataclass(frozen=True, kw_only=True)
class Command(Message):
    id: str | None = None


@dataclass(frozen=True, kw_only=True)
class JobCommand(Command):
    """A command that queues a job. `config`: the job's whole config, resolved where it was submitted (file,
    `TANAS_*` and flags: `Config.snapshot()`); the engine runs the job with exactly that (its store replaced by the
    engine's own) and checks it under the config's rules before queueing; None: the engine's own config, resolved
    when it started. `device`: overrides project.device for this job."""
    config: dict[str, Any] | None = None
    device: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.device is not None and self.device not in DEVICES and not CUDA_DEVICE.fullmatch(self.device):
            raise ProtocolError(f"field 'device': {self.device[:80]!r} is not one of {', '.join(DEVICES)} or cuda:N",
                                "bad_field", self.rid)


@dataclass(frozen=True, kw_only=True)
class Event(Message):
    seq: int = 0

    @property
    def direct(self) -> bool:
        return self.seq == 0


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
        choice("role", self.role, ROLES, self.rid)
        if not isinstance(self.task.get("name"), str) or not self.task["name"]:
            raise ProtocolError("field 'task': needs a non-empty string 'name'", "bad_field", self.rid)
        text("task.name", self.task["name"], self.rid)


@dataclass(frozen=True, kw_only=True)
class RemoveTask(JobCommand):
    TYPE: ClassVar[str] = "remove_task"
    task: str                      # name or id

    def __post_init__(self) -> None:
        super().__post_init__()
        text("task", self.task, self.rid)


@dataclass(frozen=True, kw_only=True)
class RemoveSearch(JobCommand):
    TYPE: ClassVar[str] = "remove_search"
    run: str                       # run id

    def __post_init__(self) -> None:
        super().__post_init__()
        text("run", self.run, self.rid)


@dataclass(frozen=True, kw_only=True)
class ComputeDistances(JobCommand):
    TYPE: ClassVar[str] = "compute_distances"
    method: str | None = None      # None: the config's dictionary.method

    def __post_init__(self) -> None:
        super().__post_init__()
        choice("method", self.method, METHODS, self.rid)


@dataclass(frozen=True, kw_only=True)
class MeasureNoiseFloor(JobCommand):
    """Same-task distances of every task of a method's matrix, stored with the matrix (`distances --check`)."""
    TYPE: ClassVar[str] = "noise_floor"
    method: str | None = None      # None: the config's dictionary.method

    def __post_init__(self) -> None:
        super().__post_init__()
        choice("method", self.method, METHODS, self.rid)


@dataclass(frozen=True, kw_only=True)
class BuildSpace(JobCommand):
    TYPE: ClassVar[str] = "build_space"
    target: str | None = None      # task name; None: the config's target
    kind: str | None = None        # None: the config's space.kind

    def __post_init__(self) -> None:
        super().__post_init__()
        choice("kind", self.kind, SPACE_KINDS, self.rid)
        text("target", self.target, self.rid)


@dataclass(frozen=True, kw_only=True)
class StartSearch(JobCommand):
    TYPE: ClassVar[str] = "start_search"
    target: str | None = None
    space: str | None = None       # space kind; None: the config's space.kind
    run_id: str | None = None      # an existing run id resumes that run
    seed: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        choice("space", self.space, SPACE_KINDS, self.rid)
        text("target", self.target, self.rid)
        text("run_id", self.run_id, self.rid)
        seed_field(self.seed, SEED_LIMIT, self.rid)


@dataclass(frozen=True, kw_only=True)
class CheckPremise(JobCommand):
    """The premise check of a target (engine.search.premise): `tasks` dictionary tasks' genotypes trained on it for
    `seeds` seeds of `epochs` epochs each."""
    TYPE: ClassVar[str] = "check_premise"
    target: str | None = None      # None: the config's target
    tasks: int = 8
    seeds: int = 3
    epochs: int = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        text("target", self.target, self.rid)
        for name, lo, hi in (("tasks", 4, 10_000), ("seeds", 2, 1000), ("epochs", 1, 10_000)):
            value = getattr(self, name)
            if type(value) is not int or not lo <= value <= hi:
                raise ProtocolError(f"field {name!r} must be an integer from {lo} to {hi}, got {value!r}", "bad_field",
                                    self.rid)


@dataclass(frozen=True, kw_only=True)
class CheckGenotypes(JobCommand):
    """Every base task's genotype against `random` random genotypes on its own task (engine.search.premise)."""
    TYPE: ClassVar[str] = "check_genotypes"
    random: int = 8
    epochs: int = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        for name, lo, hi in (("random", 1, 10_000), ("epochs", 1, 10_000)):
            value = getattr(self, name)
            if type(value) is not int or not lo <= value <= hi:
                raise ProtocolError(f"field {name!r} must be an integer from {lo} to {hi}, got {value!r}", "bad_field",
                                    self.rid)


@dataclass(frozen=True, kw_only=True)
class RunPipeline(JobCommand):
    """The whole pipeline. `seed`: the target's search seed (and the comparison's first seed) instead of
    project.seed, which keeps seeding the dictionary; `run_id`: the target search's run id."""
    TYPE: ClassVar[str] = "run_pipeline"
    seed: int | None = None
    run_id: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        text("run_id", self.run_id, self.rid)
        seed_field(self.seed, SEED_LIMIT, self.rid)


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
                                "bad_field", self.rid)


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
        choice("status", self.status, JOB_STATUSES)


@dataclass(frozen=True, kw_only=True)
class TaskAdded(Event):
    TYPE: ClassVar[str] = "task_added"
    task_id: str
    name: str
    role: str

    def __post_init__(self) -> None:
        super().__post_init__()
        choice("role", self.role, ROLES)


@dataclass(frozen=True, kw_only=True)
class TaskStatus(Event):
    """A stored task changed state: `training` (its probe, also a retraining), `fisher` (its own Fisher), `ready`."""
    TYPE: ClassVar[str] = "task_status"
    task_id: str
    name: str
    status: str

    def __post_init__(self) -> None:
        super().__post_init__()
        choice("status", self.status, TASK_STATUSES)


@dataclass(frozen=True, kw_only=True)
class JobState(Event):
    """The running job reached a safe point while a pause was requested (`paused`), or went on (`running`).
    `job` is None when the reporter does not know its job's id (the one running job)."""
    TYPE: ClassVar[str] = "job_state"
    state: str
    job: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        choice("state", self.state, JOB_STATES)


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
    shared_body: bool = False      # the probe is the shared body + a head fitted here: `epochs` are shared_epochs


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
    size_log10: float | None = None   # log10 of the number of genotypes the space can draw


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
        choice("level", self.level, LEVELS)


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
                        BuildSpace, StartSearch, CheckPremise, CheckGenotypes,
                        RunPipeline, Sleep, Pause, Resume, Stop, Shutdown)
}
EVENTS: dict[str, type[Event]] = {
    c.TYPE: c for c in (JobStarted, JobProgress, JobState, JobDone, ExecutorStatus, TaskAdded, TaskStatus, TaskRemoved,
                        ProbeProgress, ProbeDone, Distance, SpaceBuilt, SearchCandidates, WeightProgress, AlphaStep,
                        SearchRound, SearchDone, Warning, Log, Error, Reply, Dropped)
}
MESSAGES: dict[str, type[Message]] = {**COMMANDS, **EVENTS}
JOB_COMMANDS = tuple(name for name, cls in COMMANDS.items() if issubclass(cls, JobCommand))


# --------------------------------------------------------------------------- building and the wire format


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
        exc.request_id = exc.request_id or request_id({"id": rid})
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
    return _build(cls, plain(fields), request_id(fields))  # type: ignore[return-value]


def encode(msg: Message) -> bytes:
    obj: dict[str, Any] = {"v": PROTOCOL_VERSION, "type": msg.TYPE}
    if isinstance(msg, Event):
        obj["seq"] = msg.seq
    obj.update(plain(msg.payload()))
    return encode_line(obj, msg.TYPE)


def decode(line: bytes | str) -> Message:
    obj = decode_line(line)
    rid = request_id(obj)
    version = obj.pop("v", None)
    if type(version) is not int or version != PROTOCOL_VERSION:  # true == 1 and 1.0 == 1 in Python: not here
        raise ProtocolError(f"protocol version {version!r:.20} is not supported (this side speaks "
                            f"v{PROTOCOL_VERSION})", "version", rid)
    kind = obj.pop("type", None)
    cls = MESSAGES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ProtocolError(f"unknown message type {kind!r:.80}", "unknown_type", rid)
    if issubclass(cls, Command) and "seq" in obj:
        raise ProtocolError(f"{kind}: commands carry no 'seq'", "extra_field", rid)
    if issubclass(cls, Event) and not isinstance(obj.get("seq"), int):
        raise ProtocolError(f"{kind}: events need an integer 'seq'", "missing_field" if "seq" not in obj else "bad_field")
    return _build(cls, obj, rid)


def decode_command(line: bytes | str) -> Command:
    msg = decode(line)
    if not isinstance(msg, Command):
        raise ProtocolError(f"{msg.TYPE} is an event, not a command", "not_a_command")
    return msg
