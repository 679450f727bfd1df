"""The UI's in-memory model: what a store replay gives, with engine events applied on top.

Pure Python and numpy, no Textual, no torch: the app fills it from the store in a thread worker (`read_store`,
`read_search`), then feeds it engine events (`UiState.apply`). Applying is idempotent (events the replay already
covered change nothing), so a client that attaches mid-search can replay first and follow afterwards without gaps
or duplicates. Each `apply` returns the topics it changed, so the app refreshes only the panels concerned.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import numpy as np

from engine.choices import DISTANCE_METHODS
from engine.service.jobs import PIPELINE_STAGES
from engine.space.genotype import Genotype

if TYPE_CHECKING:
    from store.records import TaskRecord

# store.records is imported where it is used: importing it loads the `store` package and zarr, which the first
# paint of the UI does not need (the store is read after it, in a thread).

METHODS = DISTANCE_METHODS
MAX_LOG = 200

# Topics `apply` reports; panels subscribe to them.
TASKS = "tasks"
DISTANCES = "distances"
SEARCHES = "searches"
SPACES = "spaces"
JOBS = "jobs"


def search_topic(run_id: str) -> str:
    return f"search:{run_id}"


# -- small field readers: task and search attrs are JSON dicts written by the engine --------------------------------

def _first(attrs: Mapping[str, Any], *keys: str, default: Any = None) -> Any:
    for key in keys:
        value = attrs.get(key)
        if value is not None:
            return value
    return default


def genotype_hash(genotype: Any) -> str:
    """The genotype's stable hash (`Genotype.hash`), or "" for something that is not a genotype."""
    if not isinstance(genotype, Mapping):
        return ""
    if isinstance(genotype.get("hash"), str):
        return genotype["hash"]
    try:
        return Genotype.from_dict(genotype).hash
    except (KeyError, TypeError, ValueError):   # GenotypeError is a ValueError
        return ""


def task_rule(attrs: Mapping[str, Any]) -> str:
    if isinstance(attrs.get("rule"), str):
        return attrs["rule"]
    definition = attrs.get("definition") if isinstance(attrs.get("definition"), Mapping) else attrs
    positive = definition.get("positive")
    if positive:
        return "is " + "|".join(map(str, positive))
    classes = definition.get("classes")
    if classes:
        text = "{" + ",".join(map(str, classes)) + "}"
        return text + "+other" if definition.get("other") else text
    return "?"


def task_samples(attrs: Mapping[str, Any]) -> int | None:
    from store.records import TaskRecord

    record = TaskRecord.from_attrs(attrs)
    parts = [p for p in (record.n_train, record.n_val, record.n_test) if isinstance(p, int)]
    return sum(parts) if parts else None


def task_definition(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The TaskDef fields of a stored task (flat attrs or a nested "definition")."""
    source = attrs.get("definition") if isinstance(attrs.get("definition"), Mapping) else attrs
    keys = ("name", "source", "positive", "classes", "other", "balance", "limit", "val_fraction", "test_fraction",
            "seed")
    out = {k: source[k] for k in keys if k in source}
    out.setdefault("name", attrs.get("name"))
    return out


@dataclass
class TaskInfo:
    """A stored task as the panels show it: its `TaskRecord` plus the live probe line."""
    id: str
    attrs: dict[str, Any]
    progress: str = ""        # live probe training line, cleared when the probe is done
    live_status: str = ""     # a state the store does not record ("fisher"), from task_status events

    @property
    def record(self) -> TaskRecord:
        from store.records import TaskRecord

        return TaskRecord.from_attrs(self.attrs)

    @property
    def name(self) -> str:
        return self.record.name or self.id

    @property
    def source(self) -> str:
        return str(self.record.source or task_definition(self.attrs).get("source") or "")

    @property
    def rule(self) -> str:
        return task_rule(self.attrs)

    @property
    def samples(self) -> int | None:
        return task_samples(self.attrs)

    @property
    def val_acc(self) -> float | None:
        value = self.record.val_acc
        return float(value) if isinstance(value, (int, float)) else None

    @property
    def representative(self) -> bool | None:
        value = self.record.representative
        return bool(value) if value is not None else None

    @property
    def genotype(self) -> dict | None:
        g = self.record.best_genotype
        return g if isinstance(g, Mapping) else None

    @property
    def genotype_hash(self) -> str:
        return str(self.record.genotype_hash or genotype_hash(self.genotype))

    @property
    def status(self) -> str:
        return self.progress or self.live_status or str(self.record.status or "")

    @property
    def role(self) -> str:
        return str(self.record.role or "base")


@dataclass
class Matrix:
    """One distance method's matrix: value[i, j] = d(source=ids[i], target=ids[j]); NaN = not computed."""

    method: str
    ids: list[str] = field(default_factory=list)
    value: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    std: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    params: dict[str, Any] = field(default_factory=dict)

    def index(self, task_id: str) -> int:
        return self.ids.index(task_id)

    def ensure(self, task_id: str) -> int:
        if task_id in self.ids:
            return self.ids.index(task_id)
        n = len(self.ids)
        value = np.full((n + 1, n + 1), np.nan, np.float32)
        std = np.full((n + 1, n + 1), np.nan, np.float32)
        value[:n, :n] = self.value
        std[:n, :n] = self.std
        value[n, n] = 0.0
        std[n, n] = 0.0
        self.ids.append(task_id)
        self.value, self.std = value, std
        return n

    def drop(self, task_id: str) -> None:
        if task_id not in self.ids:
            return
        i = self.ids.index(task_id)
        self.ids.pop(i)
        self.value = np.delete(np.delete(self.value, i, 0), i, 1)
        self.std = np.delete(np.delete(self.std, i, 0), i, 1)

    def set(self, source: str, target: str, value: float, std: float) -> bool:
        i, j = self.ensure(source), self.ensure(target)
        old, old_std = self.value[i, j], self.std[i, j]
        if old == value and old_std == std:
            return False
        self.value[i, j] = value
        self.std[i, j] = std
        return True

    def nearest(self, target: str, k: int) -> list[tuple[str, float]]:
        """The k sources closest to `target` (the target itself excluded), nearest first."""
        if target not in self.ids:
            return []
        j = self.ids.index(target)
        pairs = [(self.ids[i], float(self.value[i, j])) for i in range(len(self.ids))
                 if i != j and not math.isnan(self.value[i, j])]
        pairs.sort(key=lambda p: (p[1], p[0]))
        return pairs[:k]

    def computed(self) -> int:
        return int(np.count_nonzero(~np.isnan(self.value)))


@dataclass
class SearchState:
    """One FUSE run: the store's attrs plus its step arrays (as lists, appended live)."""

    id: str
    attrs: dict[str, Any] = field(default_factory=dict)
    loaded: bool = False            # the trajectory was read from the store (not just the attrs)
    # Per-step rows are tuples of floats: the garbage collector stops tracking those, so a long trajectory
    # does not make every collection slower (lists would be scanned on each one).
    alpha: list[tuple[float, ...]] = field(default_factory=list)
    round: list[int] = field(default_factory=list)
    alternation: list[int] = field(default_factory=list)
    loss_train: list[float] = field(default_factory=list)
    loss_val: list[float] = field(default_factory=list)
    val_acc: list[tuple[float, ...]] = field(default_factory=list)
    candidates: dict[int, dict[str, Any]] = field(default_factory=dict)   # round -> {"hashes", "genotypes", ...}
    step_times: list[float] = field(default_factory=list)   # wall clock of live steps, for the ETA
    gap: bool = False               # a live step arrived beyond what we hold: re-read the store
    pending: dict[int, dict[str, Any]] = field(default_factory=dict)   # live steps waiting for that re-read
    probs: list[tuple[float, ...]] = field(default_factory=list)   # softmax(alpha) per step, computed once
    round_start: dict[int, int] = field(default_factory=dict)   # round -> index of its first step
    job: str = ""                   # the engine job seen running it (live events only)
    weights: dict[str, Any] = field(default_factory=dict)   # the running weight phase: round, alternation, done, total
    # measured rates for the ETA (live events only): seconds per weight batch, seconds of an α phase
    per_batch: float | None = None
    alpha_seconds: float = 0.0
    _phase_start: tuple[float, int] | None = None   # (time, batches done) at the phase's first weight_progress
    _weights_end: float | None = None               # when the last weight phase finished
    eta_at: tuple[float, float] | None = None       # (time measured, seconds remaining then)

    # attrs
    @property
    def target(self) -> str:
        return str(_first(self.attrs, "target", "target_name", default=""))

    @property
    def target_name(self) -> str:
        return str(_first(self.attrs, "target_name", "target", default=""))

    @property
    def status(self) -> str:
        return str(self.attrs.get("status", "running" if not self.result else "done"))

    @property
    def result(self) -> dict[str, Any] | None:
        r = self.attrs.get("result")
        return r if isinstance(r, Mapping) and r else None

    @property
    def device(self) -> str:
        return str(self.attrs.get("device", ""))

    @property
    def space(self) -> dict[str, Any] | None:
        s = self.attrs.get("space")
        return s if isinstance(s, Mapping) else None

    @property
    def config(self) -> dict[str, Any]:
        c = self.attrs.get("config")
        if isinstance(c, Mapping):
            return dict(c.get("search", c))
        return {}

    @property
    def updated(self) -> float | None:
        """Latest time stamp the run carries (live events, or the store's ISO times), as epoch seconds."""
        stamps = [self.attrs.get(k) for k in ("updated", "created", "resumed", "stopped", "finished")]
        checkpoint = self.attrs.get("checkpoint")
        if isinstance(checkpoint, Mapping):
            stamps.append(checkpoint.get("time"))
        times = [t for t in map(_epoch, stamps) if t is not None]
        return max(times) if times else None

    @property
    def rounds_total(self) -> int:
        return int(self.config.get("rounds") or (max(self.round) + 1 if self.round else 1))

    @property
    def alternations_total(self) -> int:
        return int(self.config.get("alternations") or 1)

    @property
    def steps(self) -> int:
        return len(self.alpha)

    @property
    def current_round(self) -> int:
        """The latest round with steps or with its candidates announced (a round is shown from its start)."""
        latest = self.round[-1] if self.round else 0
        return max(latest, max(self.candidates)) if self.candidates else latest

    def round_steps(self, rnd: int | None = None) -> range:
        """Indices of the steps of round `rnd` (default: the current one)."""
        rnd = self.current_round if rnd is None else rnd
        start = self.round_start.get(rnd)
        if start is None:
            return range(0)
        later = [i for r, i in self.round_start.items() if i > start]
        return range(start, min(later) if later else len(self.round))

    def current_alternation(self) -> int:
        """1-based alternation reached in the current round (0 before the first α step)."""
        steps = self.round_steps()
        if not steps:
            return 0
        last = self.alternation[steps[-1]] if steps[-1] < len(self.alternation) else -1
        if last >= 0:
            return last + 1   # alternations only grow within a round
        per = max(1, int(self.config.get("alpha_epochs") or 1))
        return min(self.alternations_total, math.ceil(len(steps) / per))

    def hashes(self, rnd: int | None = None) -> list[str]:
        rnd = self.current_round if rnd is None else rnd
        entry = self.candidates.get(rnd) or {}
        hashes = list(entry.get("hashes") or [])
        if not hashes and entry.get("genotypes"):
            hashes = [genotype_hash(g) for g in entry["genotypes"]]
        width = len(self.alpha[self.round_steps(rnd)[-1]]) if self.round_steps(rnd) else len(hashes)
        while len(hashes) < width:
            hashes.append("…")   # not read from the store yet (a re-read is on its way)
        return hashes

    def carried(self, rnd: int | None = None) -> str:
        """The hash of the incumbent carried over into round `rnd` from the round before ("" in round 0)."""
        rnd = self.current_round if rnd is None else rnd
        if rnd <= 0:
            return ""
        entry = self.candidates.get(rnd) or {}
        if entry.get("carried"):
            return str(entry["carried"])
        incumbents = self.attrs.get("incumbents")
        if isinstance(incumbents, list) and len(incumbents) >= rnd:
            return str(incumbents[rnd - 1])
        return str((self.candidates.get(rnd - 1) or {}).get("incumbent") or "")

    def genotypes(self, rnd: int | None = None) -> list[dict]:
        rnd = self.current_round if rnd is None else rnd
        return list((self.candidates.get(rnd) or {}).get("genotypes") or [])

    def alternations_left(self) -> int:
        """Whole alternations after the current one, this round's and the later rounds'."""
        alt = int(self.weights.get("alternation", max(0, self.current_alternation() - 1)))
        rnd = int(self.weights.get("round", self.current_round))
        return max(0, self.alternations_total - alt - 1) + max(0, self.rounds_total - rnd - 1) * self.alternations_total

    def note_weights(self, data: Mapping[str, Any], now: float) -> None:
        done, total = int(data.get("done", 0)), int(data.get("total", 0))
        key = (data.get("round"), data.get("alternation"))
        if (self.weights.get("round"), self.weights.get("alternation")) != key or self._phase_start is None:
            start = self._weights_end if self._weights_end is not None and done > 0 else None
            self._phase_start = (start, 0) if start is not None else (now, done)
        t0, d0 = self._phase_start
        if done > d0 and now > t0:
            self.per_batch = (now - t0) / (done - d0)
        self.weights = {"round": key[0], "alternation": key[1], "done": done, "total": total}
        if done >= total:
            self._weights_end = now
        self._estimate(now)

    def note_alpha(self, now: float) -> None:
        if self._weights_end is not None and now >= self._weights_end:
            self.alpha_seconds = now - self._weights_end
            self._weights_end = now   # the next weight phase starts about now
        self.weights = {**self.weights, "done": self.weights.get("total", 0)} if self.weights else {}
        self._estimate(now)

    def _estimate(self, now: float) -> None:
        if self.per_batch is None:
            return
        total = int(self.weights.get("total", 0))
        left_now = (total - int(self.weights.get("done", 0))) * self.per_batch + self.alpha_seconds
        per_alternation = total * self.per_batch + self.alpha_seconds
        self.eta_at = (now, left_now + self.alternations_left() * per_alternation)

    def eta_seconds(self, now: float | None = None) -> float | None:
        """Remaining time from the measured rates of the current phase (weight batches, α phases), counting down
        between events; None before the first measurement or when the search is not running."""
        if self.status not in ("running", ""):
            return None
        if self.eta_at is not None:
            measured, left = self.eta_at
            return max(0.0, left - max(0.0, (time.time() if now is None else now) - measured))
        if len(self.step_times) < 2:
            return None
        per_step = (self.step_times[-1] - self.step_times[0]) / (len(self.step_times) - 1)
        steps_in_round = max(1, len(self.round_steps()))
        alt = max(1, self.current_alternation())
        per_round = steps_in_round / alt * self.alternations_total
        remaining = per_round * (self.rounds_total - self.current_round) - steps_in_round
        return max(0.0, remaining * per_step)

    def load_record(self, record: Mapping[str, Any]) -> None:
        """Merge a store read (arrays cut at committed_steps); live steps beyond it are kept."""
        alpha = [tuple(row) for row in np.asarray(record.get("alpha", np.zeros((0, 0))), dtype=np.float64).tolist()]
        n = len(alpha)
        live_from = n
        keep = slice(live_from, None)
        extra_alpha = self.alpha[keep] if len(self.alpha) > n else []
        extra = {name: getattr(self, name)[keep] if len(getattr(self, name)) > n else []
                 for name in ("round", "alternation", "loss_train", "loss_val", "val_acc")}
        self.alpha = alpha + extra_alpha
        self.round = [int(r) for r in np.asarray(record.get("round", []))] + extra["round"]
        alternation = record.get("alternation", record.get("step_kind"))  # the store's step_kind = alternation
        stored_alt = [int(a) for a in np.asarray(alternation)] if alternation is not None else [-1] * n
        self.alternation = stored_alt + extra["alternation"]
        self.loss_train = [float(v) for v in np.asarray(record.get("loss_train", []))] + extra["loss_train"]
        self.loss_val = [float(v) for v in np.asarray(record.get("loss_val", []))] + extra["loss_val"]
        self.val_acc = [tuple(row) for row in
                        np.asarray(record.get("val_acc", np.zeros((0, 0))), dtype=np.float64).tolist()] + extra["val_acc"]
        for entry in record.get("candidates") or []:
            if isinstance(entry, Mapping) and "round" in entry:
                merged = dict(self.candidates.get(int(entry["round"]), {}))
                merged.update(entry)
                self.candidates[int(entry["round"])] = merged
        self.probs = softmax_rows(self.alpha)
        self.round_start = {}
        for i, r in enumerate(self.round):
            self.round_start.setdefault(r, i)
        self.loaded = True
        self.gap = False
        self._drain_pending()

    def _drain_pending(self) -> None:
        for step in sorted(self.pending):
            data = self.pending.pop(step)
            if step == len(self.alpha):
                self._append(data, None)
            elif step > len(self.alpha):
                self.pending[step] = data
                self.gap = True
                break

    def add_step(self, data: Mapping[str, Any], now: float) -> bool:
        step = int(data.get("step", len(self.alpha)))
        if step < len(self.alpha):
            return False                      # the replay already holds it
        if step > len(self.alpha):
            self.pending[step] = dict(data)   # missed steps (attached mid-run): held until the store re-read
            self.gap = True
            return False
        self._append(data, now)
        self._drain_pending()
        return True

    def _append(self, data: Mapping[str, Any], now: float | None) -> None:
        self.alpha.append(tuple(float(a) for a in data.get("alpha") or ()))
        self.probs.append(tuple(softmax(self.alpha[-1])))
        self.round.append(int(data.get("round", self.round[-1] if self.round else 0)))
        self.round_start.setdefault(self.round[-1], len(self.round) - 1)
        self.alternation.append(int(data.get("alternation", -1)))
        self.loss_train.append(_num(data.get("loss_train")))
        self.loss_val.append(_num(data.get("loss_val")))
        self.val_acc.append(tuple(_num(v) for v in data.get("val_acc") or ()))
        if now is not None:
            self.step_times.append(now)
            del self.step_times[:-200]
        self.attrs.setdefault("status", "running")


def _epoch(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value:
        from datetime import datetime

        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            try:
                return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z").timestamp()
            except ValueError:
                return None
    return None


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) else float("nan")


def softmax_rows(rows: list[tuple[float, ...]]) -> list[tuple[float, ...]]:
    """softmax of every row at once (rows of equal length; an empty list stays empty)."""
    if not rows:
        return []
    arr = np.asarray(rows, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] == 0:
        return [tuple(softmax(r)) for r in rows]
    arr = np.exp(arr - arr.max(axis=1, keepdims=True))
    return [tuple(r) for r in (arr / arr.sum(axis=1, keepdims=True)).tolist()]


def softmax(values: Iterable[float]) -> list[float]:
    arr = np.asarray(list(values), dtype=np.float64)
    if arr.size == 0:
        return []
    arr = np.exp(arr - arr.max())
    return (arr / arr.sum()).tolist()


@dataclass
class JobInfo:
    job: str
    kind: str = ""
    stage: str = ""
    done: int = 0
    total: int = 0
    finished: bool = False
    state: str = "running"    # running | paused | done | stopped | failed | engine gone
    sub: str = ""             # the stage's own counter ("base task 3/10", "probe mnist-3 1/1")
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class StoreSnapshot:
    """Everything `read_store` reads in one go (off the event loop)."""

    path: str
    attrs: dict[str, Any]
    tasks: list[dict[str, Any]]
    matrices: dict[str, Matrix]
    searches: list[dict[str, Any]]


def read_store(path: str | Path) -> StoreSnapshot:
    """Reads tasks, both distance matrices and the searches' attrs (not their trajectories) from the store."""
    from store import NotFound, Store, StoreError

    with Store.open(Path(path), mode="r") as store:
        tasks = store.list_tasks()
        matrices: dict[str, Matrix] = {}
        for method in METHODS:
            try:
                dm = store.distances(method)
            except (NotFound, KeyError):
                continue
            except StoreError:
                continue
            matrices[method] = Matrix(method, list(dm.ids), np.array(dm.value, np.float32, copy=True),
                                      np.array(dm.std, np.float32, copy=True), dict(dm.params or {}))
        searches = store.list_searches()
        return StoreSnapshot(str(path), dict(store.attrs), tasks, matrices, searches)


def read_task(path: str | Path, task_id: str) -> dict[str, Any]:
    from store import Store

    with Store.open(Path(path), mode="r") as store:
        attrs = dict(store.task(task_id))
        attrs["id"] = task_id
        return attrs


def read_search(path: str | Path, run_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(attrs, record) of one search; the record's arrays are cut at committed_steps."""
    from store import Store

    with Store.open(Path(path), mode="r") as store:
        attrs = dict(store.search(run_id))
        rec = store.read_search(run_id)
        record = {name: getattr(rec, name) for name in ("alpha", "round", "step_kind", "loss_train", "loss_val",
                                                        "val_acc", "candidates") if hasattr(rec, name)}
        if hasattr(rec, "alternation"):
            record["alternation"] = rec.alternation
        return attrs, record


class UiState:
    def __init__(self, store_path: str = "") -> None:
        self.store_path = store_path
        self.store_attrs: dict[str, Any] = {}
        self.tasks: dict[str, TaskInfo] = {}
        self.matrices: dict[str, Matrix] = {m: Matrix(m) for m in METHODS}
        self.searches: dict[str, SearchState] = {}
        self.spaces: dict[tuple[str, str], dict[str, Any]] = {}   # (target id, kind) -> space dict
        self.jobs: dict[str, JobInfo] = {}
        self.log: list[tuple[str, str]] = []                       # (level, message)
        self.notices: list[tuple[str, str]] = []                   # to show as notifications, drained by the app
        self.needs_task_read: set[str] = set()                     # task ids whose attrs the app should re-read
        self.last_seq = -1
        self.loaded = False
        self.engine_alive: bool | None = None   # None: not known (no connection attempted)
        self.executor = ""                      # the newest executor_status reading ("" : none since connecting)

    # -- replay ----------------------------------------------------------------------------------------------------
    def load_snapshot(self, snap: StoreSnapshot) -> set[str]:
        self.store_attrs = snap.attrs
        seen = set()
        for attrs in snap.tasks:
            tid = str(attrs["id"])
            seen.add(tid)
            info = self.tasks.get(tid)
            if info is None:
                self.tasks[tid] = TaskInfo(tid, dict(attrs))
            else:
                info.attrs.update(attrs)
                if attrs.get("status") == "ready":
                    info.live_status = info.progress = ""
        for tid in [t for t in self.tasks if t not in seen and not self.tasks[t].progress]:
            del self.tasks[tid]
        for method, matrix in snap.matrices.items():
            live = self.matrices.get(method)
            if live is not None and live.ids:
                # keep live values the store has not committed yet
                for i, s in enumerate(live.ids):
                    for j, t in enumerate(live.ids):
                        v = live.value[i, j]
                        if not math.isnan(v) and s in matrix.ids and t in matrix.ids:
                            a, b = matrix.index(s), matrix.index(t)
                            if math.isnan(matrix.value[a, b]):
                                matrix.value[a, b], matrix.std[a, b] = v, live.std[i, j]
            self.matrices[method] = matrix
        for attrs in snap.searches:
            rid = str(attrs["id"])
            s = self.searches.setdefault(rid, SearchState(rid))
            s.attrs.update(attrs)
            self._settle(s)
            if s.space:
                self.spaces[(s.target, str(s.space.get("kind", "task-aware")))] = s.space
        self.loaded = True
        return {TASKS, DISTANCES, SEARCHES, SPACES}

    def load_search(self, run_id: str, attrs: Mapping[str, Any], record: Mapping[str, Any]) -> set[str]:
        s = self.searches.setdefault(run_id, SearchState(run_id))
        s.attrs.update(attrs)
        self._settle(s)
        s.load_record(record)
        return {SEARCHES, search_topic(run_id)}

    def update_task(self, task_id: str, attrs: Mapping[str, Any]) -> set[str]:
        info = self.tasks.setdefault(task_id, TaskInfo(task_id, {}))
        info.attrs.update(attrs)
        return {TASKS}

    # -- live events -------------------------------------------------------------------------------------------------
    def apply_many(self, events: Iterable[Any], now: float | None = None) -> set[str]:
        changed: set[str] = set()
        now = time.time() if now is None else now
        for ev in events:
            try:
                changed |= self.apply(ev, now)
            except Exception as exc:  # noqa: BLE001 - a malformed event must never take the UI down
                self.notices.append(("error", f"could not apply event {ev!r:.80}: {exc}"))
        return changed

    def apply(self, event: Any, now: float | None = None) -> set[str]:
        name, data, seq = normalize_event(event)
        if seq:  # 0 / None: direct messages and test events are never deduplicated
            if seq <= self.last_seq:
                return set()
            self.last_seq = seq
        now = time.time() if now is None else now
        handler = getattr(self, "_on_" + name, None)
        if handler is None:
            return set()
        return handler(data, now) or set()

    def _on_task_added(self, d: Mapping[str, Any], now: float) -> set[str]:
        tid = str(d["task_id"])
        info = self.tasks.setdefault(tid, TaskInfo(tid, {"name": d.get("name", tid)}))
        info.attrs.setdefault("name", d.get("name", tid))
        if d.get("role"):
            info.attrs["role"] = d["role"]
        info.attrs.setdefault("status", "added")
        self.needs_task_read.add(tid)
        return {TASKS}

    def _on_task_removed(self, d: Mapping[str, Any], now: float) -> set[str]:
        tid = str(d["task_id"])
        self.tasks.pop(tid, None)
        for m in self.matrices.values():
            m.drop(tid)
        return {TASKS, DISTANCES}

    def _on_probe_progress(self, d: Mapping[str, Any], now: float) -> set[str]:
        tid = str(d["task_id"])
        info = self.tasks.setdefault(tid, TaskInfo(tid, {"name": d.get("name", tid)}))
        acc = d.get("val_acc")
        acc_text = f" val {acc:.3f}" if isinstance(acc, (int, float)) else ""
        seed = d.get("seed_index")
        seed_text = f" seed {seed}" if isinstance(seed, int) and seed > 0 else ""
        info.progress = f"training {d.get('epoch', '?')}/{d.get('max_epochs', '?')}{seed_text}{acc_text}"
        return {TASKS}

    def _on_probe_done(self, d: Mapping[str, Any], now: float) -> set[str]:
        tid = str(d["task_id"])
        info = self.tasks.setdefault(tid, TaskInfo(tid, {"name": d.get("name", tid)}))
        info.progress = ""
        if "val_acc" in d:
            info.attrs["val_acc"] = d["val_acc"]
        if "representative" in d:
            info.attrs["representative"] = bool(d["representative"])
        # not "ready" yet: its Fisher comes next; task_status says when it is
        self.needs_task_read.add(tid)
        return {TASKS}

    def _on_task_status(self, d: Mapping[str, Any], now: float) -> set[str]:
        tid = str(d["task_id"])
        info = self.tasks.setdefault(tid, TaskInfo(tid, {"name": d.get("name", tid)}))
        status = str(d.get("status", ""))
        if status in ("training", "ready"):      # what the store records
            info.attrs["status"] = status
            info.live_status = ""
        else:
            info.live_status = status
        if status == "ready":
            info.progress = ""
        self.needs_task_read.add(tid)
        return {TASKS}

    def _on_distance(self, d: Mapping[str, Any], now: float) -> set[str]:
        method = str(d.get("method", "fisher"))
        matrix = self.matrices.setdefault(method, Matrix(method))
        std = d.get("std")
        changed = matrix.set(str(d["source"]), str(d["target"]), _num(d.get("value")),
                             _num(std) if std is not None else 0.0)
        return {DISTANCES} if changed else set()

    def _on_space_built(self, d: Mapping[str, Any], now: float) -> set[str]:
        space = d.get("space") if isinstance(d.get("space"), Mapping) else {}
        kind = str(d.get("kind") or space.get("kind") or "task-aware")
        self.spaces[(str(d.get("target", "")), kind)] = dict(space)
        return {SPACES}

    def _search(self, run_id: str) -> SearchState:
        s = self.searches.get(run_id)
        if s is None:
            # a run that started after the replay: the store holds its attrs (target, space, config), read it
            s = self.searches[run_id] = SearchState(run_id, {"status": "running"}, gap=True)
        job = self.current_job()
        if job is not None:
            s.job = job.job
            if s.attrs.get("status") in ("running", "paused", "interrupted", "stopped", "failed", None):
                s.attrs["status"] = "paused" if job.state == "paused" else "running"
        return s

    def _settle(self, s: SearchState) -> None:
        """A search the store calls running while no process writes the store was cut off: say so."""
        if self.engine_alive is False and s.attrs.get("status") in ("running", "paused"):
            s.attrs["status"] = "interrupted"

    def _job_searches(self, job: str) -> list[SearchState]:
        mine = [s for s in self.searches.values() if s.job == job]
        if not mine:   # attached mid-job: no event tied a search to it; the live ones are its
            mine = [s for s in self.searches.values() if s.attrs.get("status") in ("running", "paused")]
        return mine

    def _on_job_state(self, d: Mapping[str, Any], now: float) -> set[str]:
        job = d.get("job") or (self.current_job().job if self.current_job() else None)
        if job is None:
            return set()
        info = self.jobs.setdefault(str(job), JobInfo(str(job)))
        info.state = "paused" if d.get("state") == "paused" else "running"
        topics = {JOBS, SEARCHES}
        for s in self._job_searches(info.job):
            if s.attrs.get("status") in ("running", "paused"):
                s.attrs["status"] = info.state
                topics.add(search_topic(s.id))
        return topics

    def set_engine(self, alive: bool | None) -> set[str]:
        """Whether a process writes the store (an engine, or a headless run holding the lock). When none does,
        jobs still marked running ended with it, and searches the store calls running were cut off."""
        if alive == self.engine_alive:
            return set()
        self.engine_alive = alive
        if alive is not False:
            return {JOBS}
        for info in self.jobs.values():
            if not info.finished:
                info.finished, info.state = True, "engine gone"
        topics = {JOBS, SEARCHES}
        for s in self.searches.values():
            if s.attrs.get("status") in ("running", "paused"):
                self._settle(s)
                topics.add(search_topic(s.id))
        return topics

    def _on_alpha_step(self, d: Mapping[str, Any], now: float) -> set[str]:
        s = self._search(str(d["run_id"]))
        s.attrs["updated"] = now
        s.note_alpha(now)
        if s.add_step(d, now):
            return {SEARCHES, search_topic(s.id)}
        return {search_topic(s.id)} if s.gap else set()

    def _on_search_candidates(self, d: Mapping[str, Any], now: float) -> set[str]:
        s = self._search(str(d["run_id"]))
        rnd = int(d.get("round", 0))
        entry = dict(s.candidates.get(rnd, {}))
        entry.update({"round": rnd, "hashes": list(d.get("candidates") or [])})
        if d.get("genotypes"):
            entry["genotypes"] = list(d["genotypes"])
        if d.get("incumbent"):
            entry["carried"] = d["incumbent"]
        s.candidates[rnd] = entry
        s.weights = {}
        s.attrs["updated"] = now
        return {SEARCHES, search_topic(s.id)}

    def _on_weight_progress(self, d: Mapping[str, Any], now: float) -> set[str]:
        s = self._search(str(d["run_id"]))
        s.note_weights(d, now)
        s.attrs["updated"] = now
        return {search_topic(s.id)}

    def _on_search_round(self, d: Mapping[str, Any], now: float) -> set[str]:
        s = self._search(str(d["run_id"]))
        rnd = int(d.get("round", 0))
        entry = dict(s.candidates.get(rnd, {}))
        entry.update({"round": rnd, "hashes": list(d.get("candidates") or entry.get("hashes") or [])})
        if d.get("genotypes"):
            entry["genotypes"] = list(d["genotypes"])
        if d.get("incumbent"):
            entry["incumbent"] = d["incumbent"]
        s.candidates[rnd] = entry
        s.attrs["updated"] = now
        return {SEARCHES, search_topic(s.id)}

    def _on_search_done(self, d: Mapping[str, Any], now: float) -> set[str]:
        s = self._search(str(d["run_id"]))
        s.attrs["result"] = dict(d.get("result") or {})
        s.attrs["status"] = "done"
        s.attrs["updated"] = now
        return {SEARCHES, search_topic(s.id)}

    def _on_job_started(self, d: Mapping[str, Any], now: float) -> set[str]:
        job = str(d.get("job", "?"))
        self.jobs[job] = JobInfo(job, str(d.get("kind", "")), params=dict(d.get("params") or {}))
        return {JOBS}

    def _on_job_progress(self, d: Mapping[str, Any], now: float) -> set[str]:
        job = str(d.get("job", "?"))
        info = self.jobs.setdefault(job, JobInfo(job))
        stage = str(d.get("stage", info.stage))
        done, total = int(d.get("done") or 0), int(d.get("total") or 0)
        if info.kind == "run_pipeline" and stage not in PIPELINE_STAGES and stage != "done":
            info.sub = f"{stage} {min(done + 1, total)}/{total}" if total else stage   # "base task 3/10"
            return {JOBS}
        info.stage, info.done, info.total, info.sub = stage, done, total, ""
        return {JOBS}

    def _on_job_done(self, d: Mapping[str, Any], now: float) -> set[str]:
        job = str(d.get("job", "?"))
        info = self.jobs.setdefault(job, JobInfo(job, str(d.get("kind", ""))))
        info.finished = True
        status = d.get("status")
        info.state = "done" if status in (None, "ok", "done") else str(status)
        topics = {JOBS, SEARCHES}
        for s in self._job_searches(job):
            if s.attrs.get("status") in ("running", "paused"):
                if info.state in ("stopped", "failed"):
                    s.attrs["status"] = info.state
                s.gap = True   # the store has its final record: re-read it
                topics.add(search_topic(s.id))
        if isinstance(status, str) and status not in ("ok", "done"):
            self.notices.append(("warning", f"job {job} ended: {status}"))
        return topics

    def _log(self, level: str, d: Mapping[str, Any]) -> set[str]:
        message = str(d.get("message", ""))
        self.log.append((level, message))
        del self.log[:-MAX_LOG]
        if level in ("warning", "error"):
            self.notices.append((level, message))
        return {JOBS}

    def _on_executor_status(self, d: Mapping[str, Any], now: float) -> set[str]:
        self.executor = str(d.get("executor", ""))
        return {JOBS}

    def _on_log(self, d: Mapping[str, Any], now: float) -> set[str]:
        return self._log(str(d.get("level", "info")), d)

    def _on_warning(self, d: Mapping[str, Any], now: float) -> set[str]:
        return self._log("warning", d)

    def _on_error(self, d: Mapping[str, Any], now: float) -> set[str]:
        return self._log("error", d)

    def set_running_job(self, info: Mapping[str, Any] | None) -> set[str]:
        """The engine's running job as its `status` reply describes it (a window attaching mid-job missed the
        job's `job_started`)."""
        if not isinstance(info, Mapping) or not info.get("id"):
            return set()
        job = str(info["id"])
        if job not in self.jobs:
            self.jobs[job] = JobInfo(job, str(info.get("kind", "")), params=dict(info.get("params") or {}))
        current = self.jobs[job]
        progress = info.get("progress")
        if isinstance(progress, Mapping) and progress.get("stage") and not current.stage:
            current.stage = str(progress["stage"])
            current.done = int(progress.get("done") or 0)
            current.total = int(progress.get("total") or 0)
        if info.get("paused"):
            current.state = "paused"
        return {JOBS, SEARCHES}

    # -- queries -------------------------------------------------------------------------------------------------
    def current_job(self) -> JobInfo | None:
        running = [j for j in self.jobs.values() if not j.finished]
        return running[-1] if running else None

    def job_for_run(self, run_id: str) -> str | None:
        """The engine job running search `run_id`, for pause / resume / stop (None: the engine's running job)."""
        for info in reversed(list(self.jobs.values())):
            if not info.finished and info.params.get("run_id") == run_id:
                return info.job
        return None

    def task_name(self, task_id: str) -> str:
        """The task's name for display: control characters shown as escapes (never sent to the terminal)."""
        from tanas_tui.safe_text import printable

        info = self.tasks.get(task_id)
        return printable(info.name if info else task_id)

    def task_by_name(self, name: str) -> TaskInfo | None:
        for info in self.tasks.values():
            if info.name == name or info.id == name:
                return info
        return None

    def running_search(self) -> SearchState | None:
        running = [s for s in self.searches.values() if s.status in ("running", "paused")]
        return running[-1] if running else None

    def drain_notices(self) -> list[tuple[str, str]]:
        out, self.notices = self.notices, []
        return out


def normalize_event(event: Any) -> tuple[str, dict[str, Any], int | None]:
    """(name, payload, seq) from an event as the client delivers it: an `engine.service.protocol` event object, its dict
    form, or a plain (name, payload) pair (tests, benchmarks)."""
    if isinstance(event, tuple) and len(event) == 2:
        return str(event[0]), dict(event[1]), None
    if isinstance(event, Mapping):
        name = _first(event, "type", "event", "name")
        payload = event.get("data") if isinstance(event.get("data"), Mapping) else \
            event.get("payload") if isinstance(event.get("payload"), Mapping) else event
        seq = event.get("seq")
        return str(name), dict(payload), int(seq) if isinstance(seq, int) else None
    name = getattr(event, "TYPE", None) or type(event).__name__
    if hasattr(event, "__dict__"):
        payload = dict(vars(event))   # a protocol dataclass: its fields (cheaper than .payload(), this is hot)
        payload.pop("seq", None)
    else:
        payload = event.payload() if callable(getattr(event, "payload", None)) else {}
    seq = getattr(event, "seq", None)
    return str(name), dict(payload), int(seq) if isinstance(seq, int) else None
