"""The engine's jobs as the UI knows them, with their control state in one place.

The engine runs one job at a time, so a `job_started` ends every job still open here. A `job_progress` naming no
known job is a stage counter of the running one (random search counts its candidates under its run id): it never
becomes a job of its own. A pause, resume or stop the user asked for is shown ("pausing…", "stopping…") from the
moment it is sent until the engine's own event says it happened: `job_state` for pause and resume, `job_done` for
stop, or the engine is gone. A refused request clears it at once."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from engine.service import protocol as P
from engine.service.jobs import PIPELINE_STAGES

CONTROL_SHOWN = {"pause": "pausing…", "resume": "resuming…", "stop": "stopping…"}


@dataclass
class JobInfo:
    job: str
    kind: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    stage: str = ""
    done: int = 0
    total: int = 0
    sub: str = ""             # the stage's own counter ("base task 3/10", "candidates 5/5")
    state: str = "running"    # running | paused | done | stopped | failed | ended | engine gone
    finished: bool = False
    started: float | None = None    # when its job_started arrived (epoch seconds)
    seconds: float | None = None    # its duration, from job_done
    ended: float | None = None      # when its job_done arrived (epoch seconds)
    message: str = ""               # why it failed
    control: str | None = None      # pause | resume | stop: asked for, not yet seen to happen
    inferred: bool = False          # known only from a progress event (no job_started, no status reply)

    @property
    def shown_state(self) -> str:
        return CONTROL_SHOWN[self.control] if self.control else self.state

    def line(self) -> str:
        """The status line's job text: `run_pipeline search 5/7 · candidates 5/5 (paused)`."""
        text = " ".join(p for p in (self.kind or self.job, self.stage, f"{self.done}/{self.total}" if self.total else "")
                        if p)
        text += f" · {self.sub}" if self.sub else ""
        return text + (f" ({self.shown_state})" if self.control or self.state == "paused" else "")


class Jobs:
    def __init__(self) -> None:
        self.by_id: dict[str, JobInfo] = {}
        self.unassigned: str | None = None   # a control sent with no job named (the engine's running job)

    def get(self, job: str | None) -> JobInfo | None:
        return self.by_id.get(job) if job else None

    def finished(self) -> list[JobInfo]:
        """The jobs that ended (done, failed, stopped, cut off), most recent first: the Jobs view's history."""
        return [j for j in reversed(list(self.by_id.values())) if j.finished and not j.inferred]

    def current(self) -> JobInfo | None:
        running = [j for j in self.by_id.values() if not j.finished]
        return running[-1] if running else None

    def for_run(self, run_id: str) -> str | None:
        """The open job whose parameters name search `run_id`."""
        for info in reversed(list(self.by_id.values())):
            if not info.finished and info.params.get("run_id") == run_id:
                return info.job
        return None

    # -- events ---------------------------------------------------------------------------------------------------
    def started(self, ev: P.JobStarted, now: float) -> None:
        for other in self.by_id.values():
            if not other.finished:
                other.finished, other.control = True, None
                other.state = "ended" if other.state in ("running", "paused") else other.state
        self.by_id[ev.job] = JobInfo(ev.job, ev.kind, dict(ev.params), started=now)

    def progress(self, ev: P.JobProgress) -> None:
        info = self.by_id.get(ev.job)
        if info is None:
            current = self.current()
            if current is not None:
                current.sub = f"{ev.stage} {ev.done}/{ev.total}" if ev.total else ev.stage
                return
            info = self.by_id[ev.job] = JobInfo(ev.job, inferred=True)
        if info.kind == "run_pipeline" and ev.stage not in PIPELINE_STAGES and ev.stage != "done":
            info.sub = f"{ev.stage} {min(ev.done + 1, ev.total)}/{ev.total}" if ev.total else ev.stage
            return
        info.stage, info.done, info.total, info.sub = ev.stage, ev.done, ev.total, ""

    def state_changed(self, ev: P.JobState) -> JobInfo | None:
        info = self.get(ev.job) or self.current()
        if info is None:
            return None
        info.state = ev.state
        if info.control == {"paused": "pause", "running": "resume"}[ev.state]:
            info.control = None
        return info

    def done(self, ev: P.JobDone, now: float | None = None) -> JobInfo:
        info = self.by_id.setdefault(ev.job, JobInfo(ev.job, ev.kind))
        info.finished, info.control, info.ended = True, None, now
        info.kind = info.kind or ev.kind
        info.state = "done" if ev.status == "ok" else ev.status
        info.seconds, info.message = ev.seconds, ev.message
        for other in self.by_id.values():
            if other.inferred and not other.finished:
                other.finished, other.state = True, "ended"
        return info

    def from_status(self, info: Mapping[str, Any] | None) -> bool:
        """The engine's running job as its `status` reply describes it (a window attaching mid-job missed the
        job's `job_started`). False when there is none."""
        if not isinstance(info, Mapping) or not info.get("id"):
            return False
        job = str(info["id"])
        current = self.by_id.get(job)
        if current is None or current.inferred:
            current = self.by_id[job] = JobInfo(job, str(info.get("kind", "")), dict(info.get("params") or {}),
                                                started=info.get("started"))
        progress = info.get("progress")
        if isinstance(progress, Mapping) and progress.get("stage") and not current.stage:
            current.stage = str(progress["stage"])
            current.done = int(progress.get("done") or 0)
            current.total = int(progress.get("total") or 0)
        if info.get("paused"):
            current.state = "paused"
        return True

    def engine_gone(self) -> None:
        for info in self.by_id.values():
            if not info.finished:
                info.finished, info.state, info.control = True, "engine gone", None
        self.unassigned = None

    # -- control requests -----------------------------------------------------------------------------------------
    def requested(self, job: str | None, action: str) -> None:
        info = self.get(job)
        if info is not None:
            info.control = action
        else:
            self.unassigned = action

    def answered(self, command: P.Pause | P.Resume | P.Stop, reply: P.Reply | None) -> None:
        """The engine's answer to a control request (None: refused or unreachable)."""
        job = command.job or (str(reply.data.get("job")) if reply is not None and reply.data.get("job") else None)
        unassigned, self.unassigned = self.unassigned, None
        info = self.get(job)
        if reply is None:
            if info is not None:
                info.control = None
            return
        if info is None and job is not None:
            info = self.by_id[job] = JobInfo(job)
        if info is not None and not info.finished:
            action = info.control or unassigned or command.TYPE
            # nothing left to wait for: a resume of a job that never blocked, a pause of one already blocked
            settled = (action == "resume" and info.state != "paused") or (action == "pause" and info.state == "paused")
            info.control = None if settled else action
