"""Time left of a running search, from rates measured live: seconds per weight batch and seconds per α phase (a
FUSE alternation is one weight phase then one α phase), or, before the first weight batch is measured, seconds per
α step. The estimate counts down between events and stands still while the job is paused: the paused time is not
counted as work."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WeightPhase:
    """The running weight phase of a FUSE alternation: batches done of total (over all its weight epochs)."""
    round: int
    alternation: int
    done: int
    total: int


class EtaEstimator:
    STEP_TIMES = 200   # α step arrival times kept for the fallback rate

    def __init__(self) -> None:
        self.phase: WeightPhase | None = None
        self.per_batch: float | None = None     # seconds per weight batch
        self.alpha_seconds = 0.0                 # seconds of the last α phase
        self.step_times: list[float] = []        # arrival times of live α steps
        self._start: tuple[float, int] | None = None   # (time, batches done) at the phase's first measurement
        self._weights_end: float | None = None   # when the last weight phase finished
        self._at: tuple[float, float] | None = None    # (time measured, seconds left then)
        self._paused: float | None = None        # when the job paused

    def weights(self, phase: WeightPhase, now: float) -> None:
        previous = self.phase
        if previous is None or (previous.round, previous.alternation) != (phase.round, phase.alternation) \
                or self._start is None:
            # a phase that reports a batch already done began when the last one ended (an α phase in between)
            start = self._weights_end if self._weights_end is not None and phase.done > 0 else None
            self._start = (start, 0) if start is not None else (now, phase.done)
        t0, d0 = self._start
        if phase.done > d0 and now > t0:
            self.per_batch = (now - t0) / (phase.done - d0)
        self.phase = phase
        if phase.done >= phase.total:
            self._weights_end = now

    def alpha(self, now: float) -> None:
        """An α step arrived: the α phase after the weights is (or was) running."""
        if self._weights_end is not None and now >= self._weights_end:
            self.alpha_seconds = now - self._weights_end
            self._weights_end = now   # the next weight phase starts about now
        if self.phase is not None:
            self.phase = WeightPhase(self.phase.round, self.phase.alternation, self.phase.total, self.phase.total)
        self.step_times.append(now)
        del self.step_times[:-self.STEP_TIMES]

    def new_round(self) -> None:
        self.phase = None

    def estimate(self, now: float, alternations_left: int) -> None:
        """Re-estimate after a measurement: the rest of this alternation plus `alternations_left` whole ones."""
        if self.per_batch is None:
            return
        total = self.phase.total if self.phase else 0
        done = self.phase.done if self.phase else 0
        left_now = (total - done) * self.per_batch + self.alpha_seconds
        per_alternation = total * self.per_batch + self.alpha_seconds
        self._at = (now, left_now + alternations_left * per_alternation)

    def pause(self, now: float) -> None:
        if self._paused is None:
            self._paused = now

    def resume(self, now: float) -> None:
        """The paused time is not work: every reference time moves forward by it."""
        if self._paused is None:
            return
        gap, self._paused = max(0.0, now - self._paused), None
        if self._at is not None:
            self._at = (self._at[0] + gap, self._at[1])
        if self._start is not None:
            self._start = (self._start[0] + gap, self._start[1])
        if self._weights_end is not None:
            self._weights_end += gap
        self.step_times = [t + gap for t in self.step_times]

    def remaining(self, now: float, steps_left: float | None = None) -> float | None:
        """Seconds left; `steps_left`: the α steps still to come, for the per-step rate used before any weight batch
        was measured. None while nothing is measured."""
        now = self._paused if self._paused is not None else now
        if self._at is not None:
            measured, left = self._at
            return max(0.0, left - max(0.0, now - measured))
        if steps_left is None or len(self.step_times) < 2:
            return None
        per_step = (self.step_times[-1] - self.step_times[0]) / (len(self.step_times) - 1)
        return max(0.0, steps_left * per_step)
