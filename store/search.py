"""Search runs: /searches/<run_id>/ with per-step arrays, appended in buffered chunks.

Write order on flush: every array is resized and its new rows written, then `committed_steps` (and any pending
candidate lists) are written in one attribute update. A reader cuts every array at `committed_steps`, so it never sees
a half-written step.
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from store import layout as L
from store.errors import NotFound, StoreError
from store.faults import fault_point
from store.nodes import Nodes, plain

_READ_RETRIES = 100
_READ_RETRY_S = 0.01


@dataclass
class SearchRecord:
    """One search run as committed so far. Step arrays all have `steps` rows."""

    id: str
    attrs: dict[str, Any]
    steps: int
    num_candidates: int
    alpha: np.ndarray          # float32 [steps, C]
    round: np.ndarray          # int32 [steps]
    step_kind: np.ndarray      # int32 [steps]
    loss_train: np.ndarray     # float32 [steps]
    loss_val: np.ndarray       # float32 [steps]
    val_acc: np.ndarray        # float32 [steps, C]
    candidates: list[dict[str, Any]] = field(default_factory=list)  # per round: {"round", "genotypes", "hashes"}


def _shape(name: str, steps: int, num_candidates: int) -> tuple[int, ...]:
    width = L.SEARCH_ARRAYS[name][1]
    return (steps, num_candidates) if width == "C" else (steps,)


def create(nodes: Nodes, run_id: str, attrs: dict[str, Any], num_candidates: int, work_dir: Path) -> None:
    """Builds the run's group with its (empty) arrays in `work_dir` and moves it in with one rename, so a reader
    (even a raw Zarr one) sees either no search or a complete one."""
    L.check_id("run id", run_id)
    if not isinstance(num_candidates, int) or isinstance(num_candidates, bool) or num_candidates < 1:
        raise StoreError(f"search {run_id!r}: candidates must be an integer >= 1, got {num_candidates!r}")
    attrs = plain(attrs, f"search {run_id!r}")
    reserved = L.SEARCH_RESERVED.intersection(attrs)
    if reserved:
        raise StoreError(f"search {run_id!r}: attribute(s) {sorted(reserved)} are managed by the store")
    path = L.search_path(run_id)
    with nodes.write_lock:
        if nodes.exists(path):
            raise StoreError(f"search {run_id!r} already exists in store {nodes.path}")
        nodes.ensure_group(L.SEARCHES)
        attrs.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        attrs.update({L.ATTR_COMMITTED: 0, L.ATTR_NUM_CANDIDATES: num_candidates, L.ATTR_CANDIDATES: []})
        work = Path(work_dir) / f"{L.NEW_SEARCH_PREFIX}{run_id}.{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        try:
            group = Nodes(work, read_only=False).create_group("", attrs)
            for name, (dtype, _) in L.SEARCH_ARRAYS.items():
                shape = _shape(name, 0, num_candidates)
                chunks = (L.SEARCH_CHUNK_STEPS,) + shape[1:]
                fill = np.nan if dtype.startswith("float") else 0
                group.create_array(name, shape=shape, chunks=chunks, dtype=dtype, fill_value=fill)
            fault_point("search-create")
            os.rename(work, nodes.path / path)
        finally:
            shutil.rmtree(work, ignore_errors=True)


def read(nodes: Nodes, run_id: str) -> SearchRecord:
    path = L.search_path(L.check_id("run id", run_id))
    what = f"search {run_id}"
    for _ in range(_READ_RETRIES):
        attrs = nodes.attrs(path, what)
        steps = int(attrs.get(L.ATTR_COMMITTED, 0))
        width = int(attrs.get(L.ATTR_NUM_CANDIDATES, 0))
        arrays: dict[str, np.ndarray] = {}
        for name, (dtype, _) in L.SEARCH_ARRAYS.items():
            if steps == 0:
                arrays[name] = np.zeros(_shape(name, 0, width), dtype=dtype)
                continue
            arr = nodes.array(f"{path}/{name}", f"{what}/{name}")
            if arr.shape[0] < steps:
                break  # a truncate is shrinking the arrays after lowering committed_steps: read again
            arrays[name] = nodes.read(f"{path}/{name}", slice(0, steps), f"{what}/{name}")
        else:
            candidates = list(attrs.get(L.ATTR_CANDIDATES, []))
            public = {k: v for k, v in attrs.items() if k not in (L.ATTR_CANDIDATES,)}
            return SearchRecord(id=run_id, attrs=public, steps=steps, num_candidates=width,
                                candidates=candidates, **arrays)
        time.sleep(_READ_RETRY_S)
    raise StoreError(f"search {run_id!r} in store {nodes.path}: arrays shorter than committed_steps")


class SearchWriter:
    """Appends steps of one search run. Rows are buffered in memory; `flush()` commits them.

    Auto-flushes when `flush_every` rows are pending, or on `append` when the oldest pending row is older than
    `flush_seconds` (None: never by time). Not thread-safe: one writer per run, used from one thread.
    """

    def __init__(self, nodes: Nodes, run_id: str, flush_every: int = 256, flush_seconds: float | None = 5.0):
        if nodes.read_only:
            raise StoreError(f"store {nodes.path} is open read-only; open it with mode='w' to write search {run_id!r}")
        if flush_every < 1:
            raise StoreError(f"flush_every must be >= 1, got {flush_every}")
        self.run_id = run_id
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds
        self._nodes = nodes
        self._path = L.search_path(L.check_id("run id", run_id))
        attrs = nodes.attrs(self._path, f"search {run_id}")
        self.num_candidates = int(attrs[L.ATTR_NUM_CANDIDATES])
        self._committed = int(attrs.get(L.ATTR_COMMITTED, 0))
        self._candidates: list[dict[str, Any]] = list(attrs.get(L.ATTR_CANDIDATES, []))
        self._candidates_dirty = False
        self._arrays = {name: nodes.array(f"{self._path}/{name}") for name in L.SEARCH_ARRAYS}
        self._pending: dict[str, list[Any]] = {name: [] for name in L.SEARCH_ARRAYS}
        self._first_pending_at: float | None = None

    @property
    def committed_steps(self) -> int:
        return self._committed

    @property
    def pending_steps(self) -> int:
        return len(self._pending["round"])

    @property
    def steps(self) -> int:
        """Committed plus pending steps: the index the next appended step gets."""
        return self._committed + self.pending_steps

    def append(
        self,
        alpha: Sequence[float] | np.ndarray,
        round: int,
        step_kind: int,
        loss_train: float,
        loss_val: float,
        val_acc: Sequence[float] | np.ndarray,
    ) -> int:
        """Buffers one step; returns its step index."""
        c = self.num_candidates
        row = {
            "alpha": self._vector("alpha", alpha, c),
            "round": int(round),
            "step_kind": int(step_kind),
            "loss_train": float(loss_train),
            "loss_val": float(loss_val),
            "val_acc": self._vector("val_acc", val_acc, c),
        }
        for name, item in row.items():
            self._pending[name].append(item)
        step = self.steps - 1
        now = time.monotonic()
        if self._first_pending_at is None:
            self._first_pending_at = now
        if self.pending_steps >= self.flush_every or (
            self.flush_seconds is not None and now - self._first_pending_at >= self.flush_seconds
        ):
            self.flush()
        return step

    def _vector(self, name: str, values: Any, width: int) -> np.ndarray:
        vec = np.asarray(values, dtype=np.float32).reshape(-1)
        if vec.shape != (width,):
            raise StoreError(
                f"search {self.run_id!r}: {name} has {vec.size} values, expected {width} (one per candidate)"
            )
        return vec

    def set_candidates(self, round: int, genotypes: list[dict[str, Any]], hashes: list[str]) -> None:
        """Records a round's candidate genotypes; written with the next flush."""
        if len(genotypes) != len(hashes):
            raise StoreError(
                f"search {self.run_id!r} round {round}: {len(genotypes)} genotypes but {len(hashes)} hashes"
            )
        entry = plain({"round": int(round), "genotypes": list(genotypes), "hashes": list(hashes)},
                      f"search {self.run_id!r} round {round} candidates")
        self._candidates = [e for e in self._candidates if e.get("round") != entry["round"]] + [entry]
        self._candidates.sort(key=lambda e: e["round"])
        self._candidates_dirty = True

    def flush(self) -> None:
        """Writes all pending rows (one resize + one slice write per array), then bumps `committed_steps`."""
        n = self.pending_steps
        if n == 0 and not self._candidates_dirty:
            return
        start, end = self._committed, self._committed + n
        with self._nodes.write_lock:
            if n:
                for name, (dtype, _) in L.SEARCH_ARRAYS.items():
                    block = np.asarray(self._pending[name], dtype=dtype)
                    arr = self._arrays[name]
                    arr.resize(_shape(name, end, self.num_candidates))
                    arr[start:end] = block
            updates: dict[str, Any] = {L.ATTR_COMMITTED: end}
            if self._candidates_dirty:
                updates[L.ATTR_CANDIDATES] = self._candidates
            self._nodes.update_attrs(self._path, updates)
        self._committed = end
        self._candidates_dirty = False
        self._pending = {name: [] for name in L.SEARCH_ARRAYS}
        self._first_pending_at = None

    def truncate(self, n: int) -> None:
        """Forgets every step from index n on (resume after a checkpoint taken at step n)."""
        self.flush()
        if not 0 <= n <= self._committed:
            raise StoreError(f"search {self.run_id!r}: cannot truncate to {n} steps; it has {self._committed}")
        if n == self._committed:
            return
        with self._nodes.write_lock:
            # lower the commit mark first: readers then never look at the rows being deleted
            self._nodes.update_attrs(self._path, {L.ATTR_COMMITTED: n})
            self._committed = n
            for name in L.SEARCH_ARRAYS:
                self._arrays[name].resize(_shape(name, n, self.num_candidates))

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> "SearchWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()


def save_checkpoint(nodes: Nodes, run_id: str, blob: bytes) -> None:
    path = L.search_path(L.check_id("run id", run_id))
    if not nodes.exists(path):
        raise NotFound(f"search {run_id!r} not found in store {nodes.path}")
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise StoreError(f"search {run_id!r}: checkpoint must be bytes, got {type(blob).__name__}")
    group_path = L.checkpoint_group_path(run_id)
    with nodes.write_lock:
        nodes.ensure_group(group_path)
        directory = nodes.path / group_path
        target = directory / L.CHECKPOINT_FILE
        tmp = directory / f".{L.CHECKPOINT_FILE}.{os.getpid()}.tmp"
        try:
            with open(tmp, "wb") as fh:
                fh.write(blob)
                fh.flush()
                os.fsync(fh.fileno())
            fault_point("checkpoint-write")
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        nodes.update_attrs(group_path, {"saved": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "bytes": len(blob)})


def load_checkpoint(nodes: Nodes, run_id: str) -> bytes | None:
    path = L.search_path(L.check_id("run id", run_id))
    if not nodes.exists(path):
        raise NotFound(f"search {run_id!r} not found in store {nodes.path}")
    try:
        return (nodes.path / L.checkpoint_group_path(run_id) / L.CHECKPOINT_FILE).read_bytes()
    except FileNotFoundError:
        return None
