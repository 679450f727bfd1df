"""The UI's model: what a store replay gives, with engine events reduced on top (`reducer.py`).

Pure Python and numpy, no Textual, no torch. The app reads the store in thread workers (`snapshot.py`) and merges
what it read here (`load_snapshot`, `load_search`, `load_task`); engine events go through `apply`, which only
accepts protocol event objects. Merging and applying are idempotent (events a replay already covered change
nothing), so a window attaching mid-search replays first and follows afterwards without gaps or duplicates. Each
call returns the topics it changed, so the app refreshes only the panels concerned."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from engine.choices import DISTANCE_METHODS
from engine.service import protocol as P
from tanas_tui.model.jobs import CONTROL_SHOWN, JobInfo, Jobs
from tanas_tui.model.matrix import Matrix
from tanas_tui.model.spaces import space_entry
from tanas_tui.model.tasks import TaskInfo
from tanas_tui.model.topics import DISTANCES, JOBS, SEARCHES, SPACES, TASKS, search_topic
from tanas_tui.model.trajectory import LIVE, SearchRun

if TYPE_CHECKING:
    from store.search import SearchRecord
    from tanas_tui.model.snapshot import StoreSnapshot

METHODS = DISTANCE_METHODS


class UiModel:
    def __init__(self, store_path: str = "") -> None:
        self.store_path = store_path
        self.store_attrs: dict[str, Any] = {}
        self.tasks: dict[str, TaskInfo] = {}
        self.matrices: dict[str, Matrix] = {m: Matrix(m) for m in METHODS}
        self.searches: dict[str, SearchRun] = {}
        self.spaces: dict[tuple[str, str], dict[str, Any]] = {}   # (target id, kind) -> space dict
        self.jobs = Jobs()
        self.notices: list[tuple[str, str]] = []                   # to show as notifications, drained by the app
        self.needs_task_read: set[str] = set()                     # task ids whose attrs the app should re-read
        self.last_seq = -1
        self.loaded = False
        self.engine_alive: bool | None = None   # None: not known (no connection attempted)
        self.device = ""                        # the engine's device, from its status reply
        self.executor = ""                      # the newest executor reading (status reply, then events)
        self.config: Any = None                 # the app's config: the [search] budget the job ETAs count with
        self._etas: dict[str, Any] = {}         # job id -> tanas_tui.pipeline_eta.PipelineEta, from its start

    # -- engine events (reducer.py) -------------------------------------------------------------------------------
    def apply(self, event: P.Event, now: float | None = None) -> set[str]:
        from tanas_tui.model.reducer import reduce

        if not isinstance(event, P.Event):
            raise TypeError(f"the model takes protocol events, got {type(event).__name__}")
        if event.seq:   # 0: direct messages are never deduplicated
            if event.seq <= self.last_seq:
                return set()
            self.last_seq = event.seq
        return reduce(self, event, time.time() if now is None else now)

    def apply_many(self, events: Iterable[P.Event], now: float | None = None) -> set[str]:
        changed: set[str] = set()
        now = time.time() if now is None else now
        for ev in events:
            try:
                changed |= self.apply(ev, now)
                self._feed_etas(ev, now)
            except Exception as exc:  # noqa: BLE001 - an event the model cannot use must never take the UI down
                self.notices.append(("error", f"could not apply event {ev!r:.80}: {exc}"))
        return changed

    def _feed_etas(self, ev: P.Event, now: float) -> None:
        from tanas_tui.pipeline_eta import PipelineEta

        if isinstance(ev, P.JobStarted):
            self._etas[ev.job] = PipelineEta(self.config)
        for eta in self._etas.values():
            eta.feed(ev, now)
        if isinstance(ev, P.JobDone):
            self._etas.pop(ev.job, None)

    def job_eta(self, job: str, now: float) -> float | None:
        """Seconds left of the whole job (its pipeline's stages, searches, retraining and comparison arms), or None
        before anything it can measure has run; paused time does not count."""
        eta = self._etas.get(job)
        return eta.remaining(now) if eta is not None else None

    # -- engine requests and replies ------------------------------------------------------------------------------
    def control_requested(self, job: str | None, action: str) -> set[str]:
        self.jobs.requested(job, action)
        return {JOBS, SEARCHES}

    def control_answered(self, command: P.Pause | P.Resume | P.Stop, reply: P.Reply | None) -> set[str]:
        self.jobs.answered(command, reply)
        return {JOBS, SEARCHES}

    def engine_status(self, reply: P.Reply) -> set[str]:
        """The engine's `status` reply on connecting: its device, executor and running job."""
        data = reply.data
        self.device = str(data.get("device") or self.device)
        self.executor = str(data.get("executor") or "")
        self.jobs.from_status(data.get("job"))
        return {JOBS, SEARCHES}

    def set_engine(self, alive: bool | None) -> set[str]:
        """Whether a process writes the store (an engine, or a headless run holding the lock). When none does,
        jobs still open ended with it, and searches the store calls running were cut off."""
        if alive == self.engine_alive:
            return set()
        self.engine_alive = alive
        if alive is not False:
            return {JOBS}
        self.jobs.engine_gone()
        topics = {JOBS, SEARCHES}
        for s in self.searches.values():
            if s.attrs.get("status") in LIVE:
                self._settle(s)
                topics.add(search_topic(s.id))
        return topics

    # -- store reads (snapshot.py reads them off the event loop) --------------------------------------------------
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
                matrix.keep_live(live)
            self.matrices[method] = matrix
        for attrs in snap.searches:
            rid = str(attrs["id"])
            s = self.searches.setdefault(rid, SearchRun(rid))
            s.attrs.update(attrs)
            self._settle(s)
            if s.space:
                key, space = space_entry(s.target, str(s.space.get("kind", "task-aware")), s.space,
                                         s.attrs.get("space_size_log10"))
                self.spaces[key] = space
        self.loaded = True
        return {TASKS, DISTANCES, SEARCHES, SPACES}

    def load_search(self, record: SearchRecord) -> set[str]:
        s = self.searches.setdefault(record.id, SearchRun(record.id))
        s.attrs.update(record.attrs)
        self._settle(s)
        s.load(record)
        return {SEARCHES, search_topic(record.id)}

    def load_task(self, task_id: str, attrs: Mapping[str, Any]) -> set[str]:
        info = self.tasks.setdefault(task_id, TaskInfo(task_id, {}))
        info.attrs.update(attrs)
        return {TASKS}

    def _settle(self, s: SearchRun) -> None:
        """A search the store calls running while no process writes the store was cut off: say so."""
        if self.engine_alive is False and s.attrs.get("status") in LIVE:
            s.attrs["status"] = "interrupted"

    # -- queries --------------------------------------------------------------------------------------------------
    def current_job(self) -> JobInfo | None:
        return self.jobs.current()

    def job_for_run(self, run_id: str) -> str | None:
        """The engine job running search `run_id`: the one whose parameters name it, the one its live events came
        from, else (the engine runs one job at a time) the running job while the search is live. None: not known."""
        s = self.searches.get(run_id)
        for job in (self.jobs.for_run(run_id), s.job if s is not None else None):
            info = self.jobs.get(job)
            if info is not None and not info.finished:
                return info.job
        current = self.jobs.current()
        return current.job if current is not None and s is not None and s.status in LIVE else None

    def search_status(self, s: SearchRun) -> str:
        """The status to show: a control request in flight for the job running it, else the run's own."""
        if s.status in LIVE:
            info = self.jobs.get(self.job_for_run(s.id))
            if info is not None and info.control:
                return CONTROL_SHOWN[info.control]
            if info is None and self.jobs.unassigned:
                return CONTROL_SHOWN[self.jobs.unassigned]
        return s.status

    def task_name(self, task_id: str) -> str:
        """The task's name for display: control characters shown as escapes (never sent to the terminal)."""
        from tanas_tui.safe_text import printable

        info = self.tasks.get(task_id)
        return printable(info.name if info else task_id)

    def running_search(self) -> SearchRun | None:
        running = [s for s in self.searches.values() if s.status in LIVE]
        return running[-1] if running else None

    def drain_notices(self) -> list[tuple[str, str]]:
        out, self.notices = self.notices, []
        return out
