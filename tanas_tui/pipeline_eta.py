"""One time-left estimate for a whole job (a pipeline, a comparison, a search), from its events as they arrive.

A job's time goes to its searches (FUSE alternations, then retraining the winner) and to counted groups of
searches (the base tasks' genotype searches, the comparison's arms). The estimate adds up: the running search's
rest (its elapsed time scaled by the share of its alternations still to come, from `[search] rounds` and
`alternations`), its retraining (measured per epoch once it runs; before that, priced from the measured seconds per
weight batch), the searches still to come in its group (each at the mean of that group's finished ones, or of the
search before them) and, when the pipeline is still at its own search, the comparison's arms at that search's
duration. Before any search has been measured it knows nothing (None): the dictionary's probes have no rate that
predicts the searches. Paused time is not work: the clock stands still while the job is paused.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.service import protocol as P
from engine.service.jobs import PIPELINE_STAGES

GROUPS = ("base-task genotype searches", "comparison arms")
WEIGHT_SHARE = 0.9       # of an alternation's time: its weight phase (the α phase after it is short)
TRAIN_PLUS_VAL = 1.1     # the retraining's data (train + val) against the weight phase's (train)


@dataclass
class _Search:
    start: float
    group: str | None
    rounds: int = 1
    retrains: bool = True                     # a base task's genotype search stops at its selection
    fraction: float = 0.0                     # of its alternations done
    per_batch: float | None = None            # seconds per weight batch of the candidates' mixture
    batches_per_epoch: float | None = None
    phase: tuple[int, int] | None = None      # (round, alternation) of the weight phase measured
    phase_start: tuple[float, int] | None = None
    retrain: tuple[float, float, int, int] | None = None   # (start, last update, epochs done, epochs)
    measured: tuple[float, float] | None = None   # (when, its alternations' seconds left then): counts down after
    done_at: float | None = None


class PipelineEta:
    """Feed it every event of one job (`feed(ev, now)`); `remaining(now)` is the seconds left, or None."""

    def __init__(self, config: Any = None) -> None:
        self.cfg = getattr(config, "search", None)     # the job's [search] section, if its config is known
        dictionary = getattr(config, "dictionary", None)
        self.genotype_rounds = int(getattr(dictionary, "genotype_rounds", 1) or 1)
        self.runs: dict[str, _Search] = {}
        self.current: str | None = None
        self.stage: str | None = None          # the pipeline's stage
        self.counters: dict[str, tuple[int, int]] = {}
        self.group: str | None = None          # the counted group the running search belongs to
        self.durations: dict[str | None, list[float]] = {}
        self._paused_at: float | None = None
        self._paused_total = 0.0

    # -- the work clock: wall time less the paused time
    def clock(self, now: float) -> float:
        return (self._paused_at if self._paused_at is not None else now) - self._paused_total

    def _new(self, t: float) -> _Search:
        base = self.group == GROUPS[0]
        rounds = self.genotype_rounds if base else int(getattr(self.cfg, "rounds", 1) or 1)
        return _Search(start=t, group=self.group, rounds=max(1, rounds), retrains=not base)

    def feed(self, ev: P.Event, now: float) -> None:
        t = self.clock(now)
        match ev:
            case P.JobState():
                if ev.state == "paused" and self._paused_at is None:
                    self._paused_at = now
                elif ev.state != "paused" and self._paused_at is not None:
                    self._paused_total += now - self._paused_at
                    self._paused_at = None
            case P.JobProgress() if ev.job in self.runs:      # a search's own counter: its retraining
                run = self.runs[ev.job]
                if ev.stage.startswith(("retraining ", "training ")):
                    start = t if ev.done == 0 or run.retrain is None else run.retrain[0]
                    run.retrain = (start, t, ev.done, ev.total)
            case P.JobProgress():
                if ev.stage in GROUPS:
                    self.counters[ev.stage] = (ev.done, ev.total)
                    self.group = ev.stage if ev.done < ev.total else None
                elif ev.stage in PIPELINE_STAGES:
                    self.stage = ev.stage
            case P.SearchCandidates():
                run = self.runs.get(ev.run_id)
                if run is None or run.done_at is not None:
                    run = self.runs[ev.run_id] = self._new(t)
                self.current = ev.run_id
                self._progress(run, ev.round, 0, 0.0, t)
            case P.WeightProgress():
                run = self._run(ev.run_id, t)
                key = (ev.round, ev.alternation)
                if run.phase != key or run.phase_start is None:
                    run.phase, run.phase_start = key, (t, ev.done)
                t0, d0 = run.phase_start
                if ev.done > d0 and t > t0:
                    run.per_batch = (t - t0) / (ev.done - d0)
                if self.cfg is not None:
                    run.batches_per_epoch = ev.total / max(1, int(getattr(self.cfg, "w_epochs", 1)))
                self._progress(run, ev.round, ev.alternation, WEIGHT_SHARE * ev.done / max(1, ev.total), t)
            case P.AlphaStep():
                self._progress(self._run(ev.run_id, t), ev.round, ev.alternation, WEIGHT_SHARE, t)
            case P.SearchRound():
                run = self._run(ev.run_id, t)
                a = int(getattr(self.cfg, "alternations", 1)) if self.cfg is not None else 1
                self._progress(run, ev.round, a - 1, 1.0, t)
            case P.SearchDone():
                run = self.runs.get(ev.run_id)
                if run is not None and run.done_at is None:
                    run.done_at = t
                    self.durations.setdefault(run.group, []).append(t - run.start)
                if self.current == ev.run_id:
                    self.current = None

    def _run(self, run_id: str, t: float) -> _Search:
        if run_id not in self.runs:
            self.runs[run_id] = self._new(t)
        self.current = run_id
        return self.runs[run_id]

    def _progress(self, run: _Search, round_: int, alternation: int, within: float, t: float) -> None:
        if self.cfg is None:
            return
        per_round = max(1, int(getattr(self.cfg, "alternations", 1) or 1))
        total = run.rounds * per_round
        run.fraction = max(run.fraction, min(1.0, (round_ * per_round + alternation + within) / total))
        if run.fraction > 0 and t > run.start:
            run.measured = (t, (t - run.start) * (1 - run.fraction) / run.fraction)

    def _retrain_prior(self, run: _Search) -> float:
        """The retraining's seconds before it starts: one network's epochs at the mixture's measured batch rate."""
        cfg = self.cfg
        if cfg is None or not run.retrains or run.per_batch is None or run.batches_per_epoch is None:
            return 0.0
        candidates = max(1, int(getattr(cfg, "candidates", 1)))
        return (int(getattr(cfg, "final_epochs", 0)) * run.batches_per_epoch * run.per_batch * TRAIN_PLUS_VAL
                / candidates)

    def _search_left(self, run: _Search, t: float) -> float | None:
        if run.retrain is not None:
            start, last, done, total = run.retrain
            if done <= 0:
                return self._retrain_prior(run) or None
            per_epoch = (last - start) / done
            return max(0.0, (total - done) * per_epoch - (t - last))
        if run.measured is None:
            return None
        when, left = run.measured
        return max(0.0, left - (t - when)) + self._retrain_prior(run)

    def _arms_planned(self) -> int:
        """The comparison's runs besides the pipeline's own search (which it reuses)."""
        cfg = self.cfg
        if cfg is None or not getattr(cfg, "compare", False):
            return 0
        arms = list(getattr(cfg, "arms", ()))
        per_seed = len([a for a in arms if a != "fixed"]) + (len(getattr(cfg, "fixed_networks", ())) if "fixed" in arms
                                                            else 0)
        return max(0, per_seed * max(1, int(getattr(cfg, "repeats", 1))) - 1)

    def remaining(self, now: float) -> float | None:
        t = self.clock(now)
        run = self.runs.get(self.current) if self.current else None
        left = None
        whole = None             # what one search of the running kind takes, measured or estimated
        if run is not None and run.done_at is None:
            left = self._search_left(run, t)
            if left is not None:
                whole = (t - run.start) + left
        group = self.group
        if group is not None:
            done, total = self.counters.get(group, (0, 0))
            to_come = total - done - (1 if run is not None and run.done_at is None else 0)
            finished = self.durations.get(group) or self.durations.get(None) or []
            each = sum(finished) / len(finished) if finished else whole
            if to_come > 0:
                if each is None:
                    return None
                left = (left or 0.0) + to_come * each
        if self.stage == "search" and self._arms_planned():
            searched = self.durations.get(None) or []
            each = searched[-1] if searched else whole
            if each is None:
                return left
            left = (left or 0.0) + self._arms_planned() * each
        return left
