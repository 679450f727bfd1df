"""Engine events applied to the UI's model: one `match` over the protocol's event classes, so a field the protocol
renames fails here, where it is read, and nowhere silently."""
from __future__ import annotations

from typing import TYPE_CHECKING

from engine.service import protocol as P
from tanas_tui import units
from tanas_tui.model.matrix import Matrix
from tanas_tui.model.spaces import space_entry
from tanas_tui.model.tasks import TaskInfo
from tanas_tui.model.topics import DISTANCES, JOBS, SEARCHES, SPACES, TASKS, search_topic
from tanas_tui.model.trajectory import LIVE, SearchRun

if TYPE_CHECKING:
    from tanas_tui.model.state import UiModel


def reduce(m: UiModel, ev: P.Event, now: float) -> set[str]:
    match ev:
        case P.TaskAdded() | P.TaskRemoved() | P.ProbeProgress() | P.ProbeDone() | P.TaskStatus():
            return _task(m, ev)
        case P.Distance():
            matrix = m.matrices.setdefault(ev.method, Matrix(ev.method))
            return {DISTANCES} if matrix.set(ev.source, ev.target, ev.value, ev.std) else set()
        case P.SpaceBuilt():
            key, space = space_entry(ev.target, ev.kind, ev.space, ev.size_log10)
            m.spaces[key] = space
            return {SPACES}
        case P.AlphaStep() | P.SearchCandidates() | P.WeightProgress() | P.SearchRound() | P.SearchDone():
            return _search_event(m, ev, now)
        case P.JobStarted() | P.JobProgress() | P.JobState() | P.JobDone():
            return _job(m, ev, now)
        case P.ExecutorStatus():
            m.executor = ev.executor
            return {JOBS}
        case P.Warning():
            m.notices.append(("warning", ev.message))
        case P.Error():
            m.notices.append(("error", ev.message))
        case P.Log(level="warning" | "error"):
            m.notices.append((ev.level, ev.message))
    return set()


def _task(m: UiModel, ev: P.TaskAdded | P.TaskRemoved | P.ProbeProgress | P.ProbeDone | P.TaskStatus) -> set[str]:
    if isinstance(ev, P.TaskRemoved):
        m.tasks.pop(ev.task_id, None)
        for matrix in m.matrices.values():
            matrix.drop(ev.task_id)
        return {TASKS, DISTANCES}
    info = m.tasks.setdefault(ev.task_id, TaskInfo(ev.task_id, {"name": ev.name}))
    info.attrs.setdefault("name", ev.name)
    match ev:
        case P.TaskAdded():
            info.attrs["role"] = ev.role
            info.attrs.setdefault("status", "added")
        case P.ProbeProgress():
            seed = f" seed {ev.seed_index}" if ev.seed_index > 0 else ""
            info.progress = f"training {ev.epoch}/{ev.max_epochs}{seed} val {units.pct(ev.val_acc)}"
            return {TASKS}
        case P.ProbeDone():
            # not "ready" yet: its Fisher comes next; task_status says when it is
            info.progress = ""
            info.attrs["val_acc"], info.attrs["representative"] = ev.val_acc, ev.representative
        case P.TaskStatus():
            if ev.status in ("training", "ready"):      # what the store records
                info.attrs["status"], info.live_status = ev.status, ""
            else:
                info.live_status = ev.status
            if ev.status == "ready":
                info.progress = ""
    m.needs_task_read.add(ev.task_id)
    return {TASKS}


def _run(m: UiModel, run_id: str) -> SearchRun:
    """The run a live event names, tied to the job running now; created when it started after the replay (the
    store holds its attrs: `gap` asks the app to read them)."""
    s = m.searches.get(run_id)
    if s is None:
        s = m.searches[run_id] = SearchRun(run_id, {"status": "running"}, gap=True)
    job = m.jobs.current()
    if job is not None:
        s.job = job.job
        if s.attrs.get("status") in (*LIVE, "interrupted", "stopped", "failed", None):
            s.attrs["status"] = "paused" if job.state == "paused" else "running"
    return s


def _search_event(m: UiModel, ev: P.AlphaStep | P.SearchCandidates | P.WeightProgress | P.SearchRound | P.SearchDone,
                  now: float) -> set[str]:
    s = _run(m, ev.run_id)
    topics = {search_topic(s.id)}
    match ev:
        case P.AlphaStep():
            if s.step(ev, now):
                return topics | {SEARCHES}
            return topics if s.gap else set()
        case P.SearchCandidates():
            s.round_candidates(ev, now)
        case P.WeightProgress():
            s.weights(ev, now)
            return topics
        case P.SearchRound():
            s.round_done(ev, now)
        case P.SearchDone():
            s.attrs.update(result=dict(ev.result), status="done", updated=now)
    return topics | {SEARCHES}


def _job_runs(m: UiModel, job: str) -> list[SearchRun]:
    mine = [s for s in m.searches.values() if s.job == job]
    if not mine:   # attached mid-job: no event tied a search to it; the live ones are its
        mine = [s for s in m.searches.values() if s.attrs.get("status") in LIVE]
    return mine


def _job(m: UiModel, ev: P.JobStarted | P.JobProgress | P.JobState | P.JobDone, now: float) -> set[str]:
    topics = {JOBS, SEARCHES}
    match ev:
        case P.JobStarted():
            m.jobs.started(ev, now)
            return {JOBS}
        case P.JobProgress():
            m.jobs.progress(ev)
            return {JOBS}
        case P.JobState():
            info = m.jobs.state_changed(ev)
            if info is None:
                return set()
            for s in _job_runs(m, info.job):
                if s.attrs.get("status") in LIVE:
                    s.attrs["status"] = info.state
                    (s.eta.pause if info.state == "paused" else s.eta.resume)(now)
                    topics.add(search_topic(s.id))
        case P.JobDone():
            info = m.jobs.done(ev, now)
            for s in _job_runs(m, ev.job):
                if s.attrs.get("status") in LIVE:
                    if ev.status in ("stopped", "failed"):
                        s.attrs["status"] = ev.status
                    s.gap = True   # the store has its final record: re-read it
                    topics.add(search_topic(s.id))
            if ev.kind == "remove_search" and ev.status == "ok" and m.searches.pop(str(ev.params.get("run")), None):
                topics.add(SEARCHES)
            took = f" after {units.duration(ev.seconds)}" if ev.seconds else ""
            if ev.status != "ok":
                reason = f": {ev.message}" if ev.message else ""
                m.notices.append(("error" if ev.status == "failed" else "warning",
                                  f"job {info.job} {ev.status}{took}{reason}"))
            else:
                m.notices.append(("information", f"job {info.job} done{took}"))
    return topics
