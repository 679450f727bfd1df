"""`Store`: the Zarr artifact store. Open it read-only from any number of processes, or for writing from one."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from store import check as C
from store import layout as L
from store import search as S
from store.distance_access import DistanceAccess
from store.errors import NotFound, StoreCorrupt, StoreError, StoreIncompatible
from store.faults import fault_point
from store.lock import WriterLock, live_writer
from store.nodes import Nodes, plain
from store.search import SearchRecord, SearchWriter

_CREATE_HINT = "`tanas-tui run` creates a store there (or pass --store PATH)"
_FISHER_CHUNK = 1 << 20
_RECOVERY_LOG_KEPT = 20
_CHECK_PASSES = 4     # read-only checks beside a live writer: passes while it sees work in progress


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


class Store(DistanceAccess):
    """See `Store.open`. Every read re-opens the Zarr nodes it needs, so a long-lived reader sees the writer's
    progress; nothing is cached between calls."""

    def __init__(self, path: Path, nodes: Nodes, lock: WriterLock | None):
        self.path = path
        self._nodes = nodes
        self._lock = lock
        self._closed = False
        self.repaired: list[str] = []  # what opening for writing repaired (see store.check.repair_on_open)

    # ---------------------------------------------------------------- opening

    @classmethod
    def open(
        cls,
        path: str | Path,
        mode: str = "r",
        create: bool = False,
        config: dict[str, Any] | None = None,
    ) -> "Store":
        """Opens the store at `path`.

        mode "r": read-only; never writes, never locks. mode "w": takes the writer lock (StoreLocked when another
        writer holds it). create=True (mode "w" only) makes a new store when none exists at `path` and opens an
        existing one as is. `config`, when given in mode "w", is saved as the root's config snapshot.
        """
        if mode not in ("r", "w"):
            raise StoreError(f"invalid store mode {mode!r}: use 'r' (read-only) or 'w' (writer)")
        if create and mode != "w":
            raise StoreError("create=True needs mode='w'")
        path = Path(path).expanduser().absolute()
        if not (path / "zarr.json").is_file():
            if not create:
                if not path.exists():
                    raise StoreError(f"no tanas store at {path}; {_CREATE_HINT}")
                raise StoreError(f"{path} is not a tanas store; {_CREATE_HINT}")
            if path.exists() and (not path.is_dir() or any(p.name != L.RUNS for p in path.iterdir())):
                raise StoreError(f"{path} exists and is not a tanas store; choose another path for a new store")
            return cls._create(path, config)
        cls._check_format(path)
        if mode == "r":
            return cls(path, Nodes(path, read_only=True), None)
        (path / L.RUNS).mkdir(exist_ok=True)
        lock = WriterLock(path / L.RUNS / L.LOCK_FILE, path).acquire()
        try:
            store = cls(path, Nodes(path, read_only=False), lock)
            store._ensure_skeleton()
            store.repaired = C.repair_on_open(store._nodes)
            if store.repaired:
                store._record_recoveries(store.repaired)
            if config is not None:
                store.set_config_snapshot(config)
        except BaseException:
            lock.release()
            raise
        return store

    def _record_recoveries(self, lines: list[str]) -> None:
        """Counts what this open finished or undid in the root attrs (`store check` shows it) and logs one line."""
        root = self._nodes.attrs("")
        log = list(root.get(L.ATTR_RECOVERY_LOG, [])) + [f"{_now()}: {line}" for line in lines]
        self._nodes.update_attrs("", {L.ATTR_RECOVERIES: int(root.get(L.ATTR_RECOVERIES, 0)) + len(lines),
                                      L.ATTR_RECOVERY_LOG: log[-_RECOVERY_LOG_KEPT:]})
        logging.getLogger("tanas.store").warning("store %s: recovered what an interrupted writer left: %s", self.path,
                                                 "; ".join(lines))

    @classmethod
    def _create(cls, path: Path, config: dict[str, Any] | None) -> "Store":
        (path / L.RUNS).mkdir(parents=True, exist_ok=True)
        lock = WriterLock(path / L.RUNS / L.LOCK_FILE, path).acquire()
        try:
            nodes = Nodes(path, read_only=False)
            if not nodes.exists(""):  # another creator may have finished while we waited for the lock
                attrs = {L.ATTR_FORMAT: L.FORMAT, L.ATTR_CREATED: _now(),
                         L.ATTR_CONFIG: plain(config or {}, "config snapshot")}
                zarr.open_group(store=nodes.zstore, mode="a", attributes=attrs)
            else:
                cls._check_format(path)
            store = cls(path, nodes, lock)
            store._ensure_skeleton()
            if config is not None:
                store.set_config_snapshot(config)
        except BaseException:
            lock.release()
            raise
        return store

    @staticmethod
    def _check_format(path: Path) -> None:
        try:
            root = zarr.open_group(store=Nodes(path, read_only=True).zstore, mode="r")
            found = root.attrs.get(L.ATTR_FORMAT)
        except Exception as exc:  # noqa: BLE001 - any unreadable root means "not our store"
            raise StoreError(f"{path} is not a tanas store ({exc}); {_CREATE_HINT}") from None
        version = L.parse_format(found)
        if version is None:
            raise StoreError(f"{path} is not a tanas store (no {L.FORMAT_NAME!r} format attribute); {_CREATE_HINT}")
        if version[0] != L.FORMAT_MAJOR:
            raise StoreIncompatible(
                f"store {path} has format {found}, but this tanas-tui reads {L.FORMAT} (major version "
                f"{L.FORMAT_MAJOR}); use a tanas-tui release matching {found} or create a new store"
            )

    def _ensure_skeleton(self) -> None:
        for group in (L.TASKS, L.DISTANCES, L.SEARCHES, L.RUNS):
            self._nodes.ensure_group(group)
        if L.ATTR_ORDER not in self._nodes.attrs(L.TASKS):
            self._nodes.update_attrs(L.TASKS, {L.ATTR_ORDER: self._nodes.child_groups(L.TASKS)})

    @property
    def writable(self) -> bool:
        return self._lock is not None and not self._closed

    @property
    def run_dir(self) -> Path:
        return self.path / L.RUNS

    @property
    def mode(self) -> str:
        return "w" if self._lock is not None else "r"

    def close(self) -> None:
        """Releases the writer lock (if held). Idempotent."""
        self._closed = True
        if self._lock is not None:
            self._lock.release()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r}, mode={self.mode!r}{', closed' if self._closed else ''})"

    def _writing(self, action: str) -> Nodes:
        if self._closed:
            raise StoreError(f"store {self.path} is closed; cannot {action}")
        if self._lock is None:
            raise StoreError(f"store {self.path} is open read-only; open it with mode='w' to {action}")
        return self._nodes

    def _reading(self) -> Nodes:
        if self._closed:
            raise StoreError(f"store {self.path} is closed")
        return self._nodes

    def check(self, repair: bool = False) -> "C.CheckReport":
        """Checks every invariant (see store.check); `repair` needs the store open for writing.

        Read-only beside a live writer (another process holds the lock), the check is repeated a few times while it
        sees problems or the store changes under it (a group deleted mid-read), and what the writer's work in
        progress looks like is reported as such (`report.writer`, `report.in_progress`), never as a problem."""
        if repair:
            nodes = self._writing("repair the store")
            with nodes.write_lock:
                return C.check(nodes, repair=True)
        nodes = self._reading()
        passes: list[C.CheckReport] = []
        for attempt in range(_CHECK_PASSES):
            writer = live_writer(self.path / L.RUNS / L.LOCK_FILE) if self._lock is None else None
            try:
                with nodes.write_lock:
                    report = C.check(nodes, writer=writer)
            except (NotFound, StoreCorrupt):
                if writer is None:
                    raise
                report = C.CheckReport(writer=writer, in_progress=[
                    f"the store changed while it was read (pid {writer} is writing it)"])
            if writer is None:
                return report      # nobody writes: one pass reads a still store
            passes.append(report)
            if not report.problems:
                break
            time.sleep(0.05 * (attempt + 1))
        # beside a writer an item can change between two reads of one pass (deleted, replaced); a problem is one
        # that every pass saw
        last = passes[-1]
        last.problems = [p for p in last.problems if all(p in r.problems for r in passes)]
        last.remaining = list(last.problems)
        return last

    # ---------------------------------------------------------------- root

    @property
    def attrs(self) -> dict[str, Any]:
        return self._reading().attrs("")

    def set_config_snapshot(self, config: dict[str, Any]) -> None:
        self._writing("save the config").update_attrs("", {L.ATTR_CONFIG: plain(config, "config snapshot")})

    # ---------------------------------------------------------------- tasks

    def task_ids(self) -> list[str]:
        """Task ids in insertion order (a task whose removal is under way is already gone)."""
        return C.task_ids(self._reading())

    def list_tasks(self) -> list[dict[str, Any]]:
        """Every task's attrs plus "id", in insertion order."""
        nodes = self._reading()
        out = []
        for task_id in self.task_ids():
            try:
                out.append({**nodes.attrs(L.task_path(task_id)), "id": task_id})
            except NotFound:
                continue  # removed between reading the order and the task
        return out

    def tasks_attrs(self, task_ids: list[str]) -> list[dict[str, Any] | None]:
        """The attrs (plus "id") of each of `task_ids`, None for one that is not a stored task; reads only those."""
        nodes = self._reading()
        stored = set(self.task_ids())
        out: list[dict[str, Any] | None] = []
        for task_id in task_ids:
            try:
                out.append({**nodes.attrs(L.task_path(task_id)), "id": task_id} if task_id in stored else None)
            except NotFound:
                out.append(None)
        return out

    def has_task(self, task_id: str) -> bool:
        return task_id in self.task_ids()

    def task(self, task_id: str) -> dict[str, Any]:
        nodes = self._reading()
        if task_id not in self.task_ids():
            raise NotFound(f"no task with id {task_id!r} in store {self.path}")
        return {**nodes.attrs(L.task_path(task_id), f"task {task_id}"), "id": task_id}

    def find_task(self, name_or_id: str) -> str:
        """The id of the task with this id, this name, or (failing both) this unique id prefix."""
        ids = self.task_ids()
        if name_or_id in ids:    # an id wins over a name
            return name_or_id
        names = self._names(ids)
        if name_or_id in names:
            return names[name_or_id]
        prefixed = [i for i in ids if name_or_id and i.startswith(name_or_id)]
        if len(prefixed) == 1:
            return prefixed[0]
        listed = ", ".join(list(names)[:20]) or "none"
        raise NotFound(f"no task named {name_or_id!r} in store {self.path} (tasks: {listed})")

    def task_names(self) -> dict[str, str]:
        """name -> id of every stored task (one attribute read; see `_names`)."""
        return self._names()

    def task_named(self, name: str) -> str | None:
        """The id of the task named `name`, or None; one attribute read (see `_names`)."""
        return self._names().get(name)

    def _names(self, ids: list[str] | None = None) -> dict[str, str]:
        """name -> id of every stored task, from /tasks `names` (kept by add_task and update_task), so that a name
        costs one attribute read, not one per task. Rebuilt from the tasks' own attrs when it does not cover every
        task (a store written before it was kept), and saved when the store is open for writing."""
        nodes = self._reading()
        ids = self.task_ids() if ids is None else ids
        index = nodes.attrs(L.TASKS).get(L.ATTR_NAMES)
        live = set(ids)
        if not isinstance(index, dict) or not live <= set(index.values()):
            index = {t["name"]: t["id"] for t in self.list_tasks() if isinstance(t.get("name"), str)}
            if self.writable:
                nodes.update_attrs(L.TASKS, {L.ATTR_NAMES: index})
        return {n: i for n, i in index.items() if i in live}

    def add_task(self, task_id: str, attrs: dict[str, Any]) -> None:
        """Adds a task; attrs must hold a unique "name"."""
        nodes = self._writing("add a task")
        L.check_id("task id", task_id)
        attrs = plain(attrs, f"task {task_id!r}")
        if attrs.pop("id", task_id) != task_id:
            raise StoreError(f"task {task_id!r}: attrs carry a different id")
        name = attrs.get("name")
        if not isinstance(name, str) or not name:
            raise StoreError(f"task {task_id!r}: attrs need a non-empty string 'name'")
        with nodes.write_lock:
            ids = self.task_ids()
            if task_id in ids:
                raise StoreError(f"task {task_id!r} already exists in store {self.path}")
            names = self._check_unique_name(name, task_id, ids)
            # a group not in the order is the leftover of an add that died half-way: replace it
            nodes.create_group(L.task_path(task_id), attrs)
            nodes.update_attrs(L.TASKS, {L.ATTR_ORDER: ids + [task_id], L.ATTR_NAMES: {**names, name: task_id}})

    def add_tasks(self, records: dict[str, dict[str, Any]]) -> None:
        """Adds many tasks ({task id: attrs with a unique "name"}) with one update of the task order: a bulk import
        costs its task groups, not one rewrite of the order per task."""
        nodes = self._writing("add tasks")
        checked = {}
        for task_id, attrs in records.items():
            L.check_id("task id", task_id)
            attrs = plain(attrs, f"task {task_id!r}")
            attrs.pop("id", None)
            if not isinstance(attrs.get("name"), str) or not attrs["name"]:
                raise StoreError(f"task {task_id!r}: attrs need a non-empty string 'name'")
            checked[task_id] = attrs
        with nodes.write_lock:
            ids = self.task_ids()
            names = self._names(ids)
            seen = set(ids)
            for task_id, attrs in checked.items():
                if task_id in seen:
                    raise StoreError(f"task {task_id!r} already exists in store {self.path}")
                if attrs["name"] in names:
                    raise StoreError(f"a task named {attrs['name']!r} already exists in store {self.path} "
                                     f"(id {names[attrs['name']]})")
                seen.add(task_id)
                names[attrs["name"]] = task_id
            for task_id, attrs in checked.items():
                nodes.create_group(L.task_path(task_id), attrs)
            nodes.update_attrs(L.TASKS, {L.ATTR_ORDER: ids + list(checked), L.ATTR_NAMES: names})

    def _check_unique_name(self, name: str, task_id: str, ids: list[str] | None = None) -> dict[str, str]:
        names = self._names(ids)
        other = names.get(name)
        if other is not None and other != task_id and self._reading().attrs(L.task_path(other)).get("name") == name:
            raise StoreError(f"a task named {name!r} already exists in store {self.path} (id {other})")
        return names

    def update_task(self, task_id: str, **attrs: Any) -> None:
        nodes = self._writing("update a task")
        attrs = plain(attrs, f"task {task_id!r}")
        attrs.pop("id", None)
        with nodes.write_lock:
            if task_id not in self.task_ids():
                raise NotFound(f"no task with id {task_id!r} in store {self.path}")
            if "name" in attrs:
                if not isinstance(attrs["name"], str) or not attrs["name"]:
                    raise StoreError(f"task {task_id!r}: 'name' must be a non-empty string")
                names = self._check_unique_name(attrs["name"], task_id)
            nodes.update_attrs(L.task_path(task_id), attrs)
            if "name" in attrs:
                names = {n: i for n, i in names.items() if i != task_id}
                nodes.update_attrs(L.TASKS, {L.ATTR_NAMES: {**names, attrs["name"]: task_id}})

    def remove_task(self, task_id: str) -> None:
        """Deletes the task, its probe and Fisher arrays, and its row and column in every distance matrix.

        Journaled: the id goes into /tasks `removing` first (readers no longer see the task), so a writer that dies
        part-way leaves a removal the next writer to open the store finishes."""
        nodes = self._writing("remove a task")
        with nodes.write_lock:
            if task_id not in self.task_ids():
                raise NotFound(f"no task with id {task_id!r} in store {self.path}")
            tasks = nodes.attrs(L.TASKS)
            pending = list(tasks.get(L.ATTR_REMOVING, []))
            names = dict(tasks.get(L.ATTR_REMOVING_NAMES, {}))
            names[task_id] = nodes.attrs(L.task_path(task_id)).get("name", task_id)
            nodes.update_attrs(L.TASKS, {L.ATTR_REMOVING: pending + [task_id], L.ATTR_REMOVING_NAMES: names})
            fault_point("remove-marked")
            C.finish_removal(nodes, task_id)

    def removal_under_way(self, name_or_id: str) -> str | None:
        """The id of a task whose removal was interrupted (readers no longer see it; the next writer to open the
        store finishes it) with this id or name, or None."""
        attrs = self._reading().attrs(L.TASKS)
        names = attrs.get(L.ATTR_REMOVING_NAMES, {})
        for task_id in attrs.get(L.ATTR_REMOVING, []):
            if name_or_id in (task_id, names.get(task_id)):
                return task_id
        return None

    def _require_task(self, task_id: str) -> None:
        if not self._nodes.exists(L.task_path(task_id)) or task_id not in self.task_ids():
            raise NotFound(f"no task with id {task_id!r} in store {self.path}")

    # ---------------------------------------------------------------- probes and Fisher vectors

    def save_probe(self, task_id: str, state: dict[str, np.ndarray], seed_index: int = 0) -> None:
        """Stores a probe's weights (a state dict of numpy arrays), replacing any earlier one for this seed."""
        nodes = self._writing("save a probe")
        self._require_task(task_id)
        if not isinstance(state, dict) or not state:
            raise StoreError(f"task {task_id!r}: probe state must be a non-empty dict of arrays")
        arrays = {}
        for name, value in state.items():
            arr = np.asarray(value)
            if arr.dtype.kind not in "biuf":
                raise StoreError(f"task {task_id!r}: probe parameter {name!r} has unsupported dtype {arr.dtype}")
            arrays[L.param_key(name)] = (name, arr)
        path = L.probe_path(task_id, seed_index)
        with nodes.write_lock:
            nodes.ensure_group(f"{L.task_path(task_id)}/{L.PROBE}")
            group = nodes.create_group(path, {})
            for key, (_, arr) in arrays.items():
                chunks = tuple(max(1, d) for d in arr.shape)
                out = group.create_array(key, shape=arr.shape, chunks=chunks, dtype=arr.dtype, fill_value=0)
                out[...] = arr
            fault_point("probe-arrays")
            # the names go last: a probe without them is incomplete and not reported by has_probe
            nodes.update_attrs(path, {L.ATTR_PARAMS: [name for name, _ in arrays.values()]})

    def has_probe(self, task_id: str, seed_index: int = 0) -> bool:
        path = L.probe_path(task_id, seed_index)
        nodes = self._reading()
        return nodes.exists(path) and L.ATTR_PARAMS in nodes.attrs(path)

    def probe_seeds(self, task_id: str) -> list[int]:
        """Seed indices with a complete stored probe."""
        nodes = self._reading()
        names = nodes.child_groups(f"{L.task_path(task_id)}/{L.PROBE}")
        return sorted(int(n) for n in names if n.isdigit() and self.has_probe(task_id, int(n)))

    def load_probe(self, task_id: str, seed_index: int = 0) -> dict[str, np.ndarray]:
        """The probe's state dict, in the order it was saved. NotFound when none is stored."""
        if not self.has_probe(task_id, seed_index):
            raise NotFound(f"task {task_id!r} has no stored probe for seed {seed_index} in store {self.path}")
        nodes = self._reading()
        path = L.probe_path(task_id, seed_index)
        names = nodes.attrs(path)[L.ATTR_PARAMS]
        return {name: nodes.read(f"{path}/{L.param_key(name)}") for name in names}

    def save_fisher(self, task_id: str, vec: np.ndarray, seed_index: int = 0) -> None:
        """Stores the task's own diagonal Fisher as a flat float32 vector."""
        nodes = self._writing("save a Fisher vector")
        self._require_task(task_id)
        arr = np.asarray(vec, dtype=np.float32)
        if arr.ndim != 1 or arr.size == 0:
            raise StoreError(f"task {task_id!r}: Fisher vector must be flat and non-empty, got shape {arr.shape}")
        if not np.isfinite(arr).all():
            raise StoreError(f"task {task_id!r}: Fisher vector holds NaN or infinite entries; not stored")
        with nodes.write_lock:
            group = nodes.ensure_group(L.fisher_group_path(task_id))
            # marked `writing` from its creation until its data is in: an array created but never (or partly)
            # filled reads as zeros, and must not count as this task's Fisher (nor let the task be marked ready)
            out = group.create_array(
                L.fisher_path(task_id, seed_index).rpartition("/")[2], shape=arr.shape,
                chunks=(min(arr.size, _FISHER_CHUNK),), dtype="float32", fill_value=0, overwrite=True,
                attributes={L.ATTR_WRITING: True},
            )
            fault_point("fisher-created")
            out[...] = arr
            fault_point("fisher-written")
            out.attrs.put({L.ATTR_SUM: float(arr.sum(dtype=np.float64))})

    def _fisher_array(self, task_id: str, seed_index: int):
        """The stored Fisher's zarr array when it is complete (a store of an older version has no mark), or None."""
        path = L.fisher_path(task_id, seed_index)
        nodes = self._reading()
        if not nodes.exists(path):
            return None
        arr = nodes.array(path)
        return None if L.ATTR_WRITING in arr.attrs else arr

    def load_fisher(self, task_id: str, seed_index: int = 0) -> np.ndarray | None:
        if self._fisher_array(task_id, seed_index) is None:
            return None
        return self._reading().read(L.fisher_path(task_id, seed_index))

    def fisher_length(self, task_id: str, seed_index: int = 0) -> int | None:
        """The stored Fisher vector's length, without reading it; None when there is none (or it is incomplete)."""
        arr = self._fisher_array(task_id, seed_index)
        return None if arr is None else int(arr.shape[0])

    # ---------------------------------------------------------------- searches

    def create_search(
        self, run_id: str, attrs: dict[str, Any], candidates: int,
        flush_every: int = 256, flush_seconds: float | None = 5.0,
    ) -> SearchWriter:
        """Creates /searches/<run_id> with empty step arrays of width `candidates`; returns its writer."""
        nodes = self._writing("create a search")
        S.create(nodes, run_id, attrs, candidates, self.run_dir)
        return SearchWriter(nodes, run_id, flush_every=flush_every, flush_seconds=flush_seconds)

    def open_search_writer(
        self, run_id: str, flush_every: int = 256, flush_seconds: float | None = 5.0
    ) -> SearchWriter:
        """A writer continuing after the run's committed steps (resume)."""
        return SearchWriter(self._writing("write a search"), run_id, flush_every=flush_every,
                            flush_seconds=flush_seconds)

    def list_searches(self) -> list[dict[str, Any]]:
        """Every search's attrs plus "id" (without the per-round candidate lists), oldest first."""
        nodes = self._reading()
        out = []
        for run_id in nodes.child_groups(L.SEARCHES):
            try:
                attrs = nodes.attrs(L.search_path(run_id))
            except NotFound:
                continue
            attrs.pop(L.ATTR_CANDIDATES, None)
            out.append({**attrs, "id": run_id})
        return sorted(out, key=lambda a: (str(a.get("created", "")), a["id"]))

    def search(self, run_id: str) -> dict[str, Any]:
        L.check_id("run id", run_id)
        return {**self._reading().attrs(L.search_path(run_id), f"search {run_id}"), "id": run_id}

    def remove_search(self, run_id: str) -> None:
        """Deletes a search: its attrs, step arrays, candidates and checkpoint."""
        L.check_id("run id", run_id)
        nodes = self._writing("remove a search")
        with nodes.write_lock:
            if not nodes.exists(L.search_path(run_id)):
                raise NotFound(f"no search {run_id!r} in store {self.path}")
            nodes.delete(L.search_path(run_id))

    def update_search(self, run_id: str, **attrs: Any) -> None:
        nodes = self._writing("update a search")
        L.check_id("run id", run_id)
        attrs = plain(attrs, f"search {run_id!r}")
        reserved = L.SEARCH_RESERVED.intersection(attrs)
        if reserved:
            raise StoreError(f"search {run_id!r}: attribute(s) {sorted(reserved)} are written by its SearchWriter "
                             f"or save_test_outcome")
        nodes.update_attrs(L.search_path(run_id), attrs, what=f"search {run_id}")

    def read_search(self, run_id: str) -> SearchRecord:
        """The run's committed steps; a step being written is never visible half-done."""
        return S.read(self._reading(), run_id)

    def save_test_outcome(self, run_id: str, correct: Any, task_id: str) -> None:
        """Stores which test samples the run got right (bool per sample, in the test split's order of `task_id`),
        replacing an earlier one, then its summary record (attrs `test_outcome`) last: a reader that sees the
        record sees the whole array."""
        from store.records import SampleOutcomeRecord

        nodes = self._writing("save a test outcome")
        path = L.search_path(L.check_id("run id", run_id))
        arr = np.asarray(correct)
        if arr.ndim != 1 or arr.size == 0 or arr.dtype.kind not in "bui":
            raise StoreError(f"search {run_id!r}: test outcome must be a non-empty flat boolean array, got "
                             f"{arr.dtype} {arr.shape}")
        if arr.dtype.kind != "b" and not np.isin(arr, (0, 1)).all():
            raise StoreError(f"search {run_id!r}: test outcome holds values other than 0/1")
        arr = arr.astype(bool)
        with nodes.write_lock:
            group = nodes.group(path, f"search {run_id}")
            out = group.create_array(L.TEST_CORRECT, shape=arr.shape, chunks=arr.shape, dtype="bool",
                                     fill_value=False, overwrite=True)
            out[...] = arr
            record = SampleOutcomeRecord(task_id=str(task_id), n_test=int(arr.size), n_correct=int(arr.sum()))
            nodes.update_attrs(path, {L.ATTR_TEST_OUTCOME: record.to_attrs()}, what=f"search {run_id}")

    def load_test_outcome(self, run_id: str) -> np.ndarray | None:
        """The run's per-test-sample correctness (bool [n_test]), or None when none was recorded."""
        nodes = self._reading()
        path = L.search_path(L.check_id("run id", run_id))
        if L.ATTR_TEST_OUTCOME not in nodes.attrs(path, f"search {run_id}"):
            return None
        return np.asarray(nodes.array(f"{path}/{L.TEST_CORRECT}")[...], dtype=bool)

    def save_checkpoint(self, run_id: str, blob: bytes) -> None:
        """Writes the run's checkpoint bytes to a temp file and atomically replaces the previous one."""
        S.save_checkpoint(self._writing("save a checkpoint"), run_id, blob)

    def load_checkpoint(self, run_id: str) -> bytes | None:
        return S.load_checkpoint(self._reading(), run_id)

    def checkpoint_file(self, run_id: str) -> Path:
        """Where the run's checkpoint lives (for messages about it)."""
        return self.path / L.checkpoint_group_path(L.check_id("run id", run_id)) / L.CHECKPOINT_FILE
