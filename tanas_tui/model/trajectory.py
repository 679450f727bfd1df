"""One search run as the UI holds it: the store's attrs, the α trajectory (read from the store, then grown by live
`alpha_step` events without gaps or duplicates), each round's candidates and an ETA of its own.

A run that is not FUSE (random search, a fixed network) has no α: its `method` says so, and random search's
candidates are the ones it trained alone and judged by validation accuracy (`evaluated`)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import numpy as np

from engine.service import protocol as P
from tanas_tui.model.eta import EtaEstimator, WeightPhase
from tanas_tui.model.tasks import genotype_hash

if TYPE_CHECKING:
    from store.search import SearchRecord

LIVE = ("running", "paused")


def softmax_rows(rows: Iterable[Iterable[float]]) -> list[tuple[float, ...]]:
    """softmax of every row (an empty row stays empty). The one softmax of the front end."""
    rows = [tuple(r) for r in rows]
    if len({len(r) for r in rows}) > 1:   # ragged (the candidate count changed): row by row
        return [softmax_rows([r])[0] for r in rows]
    if not rows or not rows[0]:
        return rows
    arr = np.asarray(rows, dtype=np.float64)
    arr = np.exp(arr - arr.max(axis=1, keepdims=True))
    return [tuple(r) for r in (arr / arr.sum(axis=1, keepdims=True)).tolist()]


def softmax(values: Iterable[float]) -> list[float]:
    return list(softmax_rows([values])[0])


def _epoch(value: Any) -> float | None:
    """Epoch seconds from a live time stamp (a number) or the store's ISO time."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            return None
    return None


def _rows(array: Any, n: int) -> list[tuple[float, ...]]:
    return [tuple(row) for row in np.asarray(array, np.float64).tolist()] if n else []


@dataclass
class SearchRun:
    id: str
    attrs: dict[str, Any] = field(default_factory=dict)
    loaded: bool = False            # the trajectory was read from the store (not just the attrs)
    # Per-step rows are tuples of floats: the garbage collector stops tracking those, so a long trajectory
    # does not make every collection slower (lists would be scanned on each one).
    alpha: list[tuple[float, ...]] = field(default_factory=list)
    probs: list[tuple[float, ...]] = field(default_factory=list)   # softmax(alpha) per step, computed once
    round: list[int] = field(default_factory=list)
    alternation: list[int] = field(default_factory=list)
    loss_train: list[float] = field(default_factory=list)
    loss_val: list[float] = field(default_factory=list)
    val_acc: list[tuple[float, ...]] = field(default_factory=list)
    candidates: dict[int, dict[str, Any]] = field(default_factory=dict)   # round -> {"hashes", "genotypes", ...}
    round_start: dict[int, int] = field(default_factory=dict)   # round -> index of its first step
    gap: bool = False               # a live step arrived beyond what we hold: re-read the store
    pending: dict[int, P.AlphaStep] = field(default_factory=dict)   # live steps waiting for that re-read
    job: str = ""                   # the engine job seen running it (live events only)
    eta: EtaEstimator = field(default_factory=EtaEstimator)

    # -- what the store says --------------------------------------------------------------------------------------
    @property
    def method(self) -> str:
        """fuse | random | fixed:<network>: what kind of run this is."""
        return str(self.attrs.get("kind") or (self.result or {}).get("kind") or "fuse")

    @property
    def is_fuse(self) -> bool:
        return self.method == "fuse"

    @property
    def evaluated(self) -> list[dict[str, Any]]:
        """Random search's candidates: each trained alone, with its validation accuracy and loss."""
        items = self.attrs.get("candidates_evaluated")
        return [dict(c) for c in items if isinstance(c, Mapping)] if isinstance(items, list) else []

    @property
    def target(self) -> str:
        return str(self.attrs.get("target") or self.attrs.get("target_name") or "")

    @property
    def target_name(self) -> str:
        return str(self.attrs.get("target_name") or self.attrs.get("target") or "")

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
        return dict(c.get("search", c)) if isinstance(c, Mapping) else {}

    @property
    def updated(self) -> float | None:
        """Latest time stamp the run carries (live events, or the store's ISO times), as epoch seconds."""
        stamps = [self.attrs.get(k) for k in ("updated", "created", "resumed", "stopped", "finished")]
        checkpoint = self.attrs.get("checkpoint")
        if isinstance(checkpoint, Mapping):
            stamps.append(checkpoint.get("time"))
        times = [t for t in map(_epoch, stamps) if t is not None]
        return max(times) if times else None

    # -- the trajectory -------------------------------------------------------------------------------------------
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
        later = [i for i in self.round_start.values() if i > start]
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
        steps = self.round_steps(rnd)
        width = len(self.alpha[steps[-1]]) if steps else len(hashes)
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

    # -- time left ------------------------------------------------------------------------------------------------
    def alternations_left(self) -> int:
        """Whole alternations after the current one, this round's and the later rounds'."""
        phase = self.eta.phase
        alt = phase.alternation if phase else max(0, self.current_alternation() - 1)
        rnd = phase.round if phase else self.current_round
        return max(0, self.alternations_total - alt - 1) + max(0, self.rounds_total - rnd - 1) * self.alternations_total

    def eta_seconds(self, now: float) -> float | None:
        """Remaining time, None before the first measurement or when the search is not running."""
        if self.status not in LIVE:
            return None
        steps_in_round = max(1, len(self.round_steps()))
        per_round = steps_in_round / max(1, self.current_alternation()) * self.alternations_total
        steps_left = per_round * (self.rounds_total - self.current_round) - steps_in_round
        return self.eta.remaining(now, steps_left)

    # -- live events ----------------------------------------------------------------------------------------------
    def weights(self, ev: P.WeightProgress, now: float) -> None:
        self.eta.weights(WeightPhase(ev.round, ev.alternation, ev.done, ev.total), now)
        self.eta.estimate(now, self.alternations_left())
        self.attrs["updated"] = now

    def round_candidates(self, ev: P.SearchCandidates, now: float) -> None:
        entry = dict(self.candidates.get(ev.round, {}))
        entry.update({"round": ev.round, "hashes": list(ev.candidates)})
        if ev.genotypes:
            entry["genotypes"] = list(ev.genotypes)
        if ev.incumbent:
            entry["carried"] = ev.incumbent
        self.candidates[ev.round] = entry
        self.eta.new_round()
        self.attrs["updated"] = now

    def round_done(self, ev: P.SearchRound, now: float) -> None:
        entry = dict(self.candidates.get(ev.round, {}))
        entry.update({"round": ev.round, "hashes": list(ev.candidates or entry.get("hashes") or [])})
        if ev.genotypes:
            entry["genotypes"] = list(ev.genotypes)
        if ev.incumbent:
            entry["incumbent"] = ev.incumbent
        self.candidates[ev.round] = entry
        self.attrs["updated"] = now

    def step(self, ev: P.AlphaStep, now: float) -> bool:
        """Appends a live step; False when the replay already held it or steps before it are missing (held until
        the store is re-read: `gap`)."""
        self.attrs["updated"] = now
        self.eta.alpha(now)
        self.eta.estimate(now, self.alternations_left())
        if ev.step < len(self.alpha):
            return False
        if ev.step > len(self.alpha):
            self.pending[ev.step] = ev
            self.gap = True
            return False
        self._append(ev)
        self._drain_pending()
        return True

    def _append(self, ev: P.AlphaStep) -> None:
        self.alpha.append(tuple(ev.alpha))
        self.probs.extend(softmax_rows([ev.alpha]))
        self.round.append(ev.round)
        self.round_start.setdefault(ev.round, len(self.round) - 1)
        self.alternation.append(ev.alternation)
        self.loss_train.append(ev.loss_train)
        self.loss_val.append(ev.loss_val)
        self.val_acc.append(tuple(ev.val_acc))
        self.attrs.setdefault("status", "running")

    def _drain_pending(self) -> None:
        for step in sorted(self.pending):
            if step == len(self.alpha):
                self._append(self.pending.pop(step))
            elif step > len(self.alpha):
                self.gap = True
                break
            else:
                del self.pending[step]

    # -- the store ------------------------------------------------------------------------------------------------
    def load(self, record: SearchRecord) -> None:
        """Merge a store read (arrays cut at committed_steps); live steps beyond it are kept."""
        n = int(len(record.round))
        extra = {name: getattr(self, name)[n:] for name in ("alpha", "round", "alternation", "loss_train",
                                                            "loss_val", "val_acc")}
        self.alpha = _rows(record.alpha, n) + extra["alpha"]
        self.round = [int(r) for r in np.asarray(record.round)] + extra["round"]
        # the store's step_kind is the alternation within the round
        self.alternation = [int(a) for a in np.asarray(record.step_kind)] + extra["alternation"]
        self.loss_train = [float(v) for v in np.asarray(record.loss_train)] + extra["loss_train"]
        self.loss_val = [float(v) for v in np.asarray(record.loss_val)] + extra["loss_val"]
        self.val_acc = _rows(record.val_acc, n) + extra["val_acc"]
        for entry in record.candidates or []:
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
