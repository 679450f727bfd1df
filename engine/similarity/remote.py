"""The dictionary's remote planner: completing tasks and filling NaN entries as units on a remote executor.

One unit per missing probe (task, seed), one Fisher unit per probe that has passes to make (its own Fisher when
missing, plus the passes its measure asks for), and the measure's own units (`Measure.submit_units`). Results are
handed, as each arrives, to the same recording paths the local build uses (`Probes.record_probe`,
`Probes.record_own_fisher`, the dictionary's distance writer), so both builds store the same things.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from engine.similarity.measures import Measure, Pair
from engine.similarity.probes import Probes, probe_seed


class RemotePlanner:
    """Plans and follows one dictionary's units on `executor` (duck-typed: `put`, `submit`, `completed`, `device`,
    `unit_reporter`, `status`). What it ships (tasks, Fisher samples) is kept for the whole job."""

    def __init__(self, probes: Probes, executor: Any):
        self.probes, self.executor = probes, executor
        self._task_refs: dict[str, Any] = {}
        self._sample_refs: dict[str, Any] = {}
        self._probe_refs: dict[tuple[str, int], Any] = {}
        self.attrs: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ what goes to the cluster once per job

    def task_ref(self, t: str) -> Any:
        """A unit's view of a task (train + val), shipped once per job."""
        from engine.similarity.units import worker_task

        if t not in self._task_refs:
            self._task_refs[t] = self.executor.put(worker_task(self.probes.task_data(t)))
        return self._task_refs[t]

    def samples_ref(self, t: str) -> Any:
        """A Fisher pass needs only t's M samples: shipped once per job."""
        if t not in self._sample_refs:
            x, y, seed = self.probes.samples(t)
            self._sample_refs[t] = self.executor.put((x.cpu(), y.cpu(), seed))
        return self._sample_refs[t]

    def probe_ref(self, t: str, s: int) -> Any:
        """A probe unit's result ref, or the stored weights shipped once."""
        if (t, s) not in self._probe_refs:
            self._probe_refs[(t, s)] = self.executor.put((self.probes.store.load_probe(t, s), None))
        return self._probe_refs[(t, s)]

    # ------------------------------------------------------------------ one batch of units

    def run(self, ids: list[str], pairs: list[Pair], measure: Measure,
            record: Callable[[str, str, list[float]], None]) -> list[Pair]:
        """Completes tasks `ids` and computes `pairs` (missing entries, ids in the matrix) through units, calling
        `record(b, t, values)` for each finished pair; returns the cross pairs the measure leaves to local work."""
        from engine.similarity.units import fisher_unit, train_probe_unit

        probes, ex, store, seeds = self.probes, self.executor, self.probes.store, self.probes.seeds
        reporter, job = probes.reporter, probes.job
        self.attrs = attrs = {t: store.task(t) for t in ids}
        for t in ids:
            probes.check_arch(attrs[t])
        cross = [(b, t) for b, t in pairs if b != t]
        if probes.shared:   # a shared-body probe is a head fitted here on the one body (trained once, or read back)
            for t in ids:
                todo = probes.missing_probes(t)
                if todo:
                    probes.train(t, todo)
        targets_of = measure.pass_targets(cross)
        missing_probes = [(t, s) for t in ids for s in probes.missing_probes(t)]
        own_missing = {(t, s) for t in ids for s in range(seeds) if store.fisher_length(t, s) is None}

        kinds: dict[Any, tuple[str, str, int]] = {}
        for t in dict.fromkeys(t for t, _ in missing_probes):
            probes.mark_training(t)
        for t, s in missing_probes:
            task = probes.task_data(t)
            ref = ex.submit(train_probe_unit, self.task_ref(t), probes.cfg.dictionary,
                            probe_seed(probes.cfg, task.definition, s), s, ex.device,
                            ex.unit_reporter(f"probe {task.definition.name}/{s}"), name=f"probe:{task.definition.name}:{s}")
            self._probe_refs[(t, s)] = ref
            kinds[ref] = ("probe", t, s)
        d = probes.cfg.dictionary
        for b in ids:
            for s in range(seeds):
                own = (b, s) in own_missing
                targets = targets_of.get(b, [])
                if not own and not targets:
                    continue
                listed = ([b] if own else []) + targets
                classes = [0] * own + [int(attrs[t]["num_classes"]) for t in targets]  # 0: own, unpadded
                ref = ex.submit(fisher_unit, probes.own_fisher, d.probe, int(attrs[b]["num_classes"]),
                                self.probe_ref(b, s), d, s, ex.device, listed, classes,
                                *[self.samples_ref(t) for t in listed], name=f"fisher:{attrs[b]['name']}:{s}")
                kinds[ref] = ("fisher", b, s)
        own_units = measure.submit_units(self, cross)
        kinds.update({ref: ("unit", b, s) for ref, (b, s) in own_units.items()})

        totals = {"probe": len(missing_probes), "fisher": sum(1 for k in kinds.values() if k[0] == "fisher"),
                  "unit": len(own_units)}
        stages = {"probe": "probes", "fisher": "fisher passes", "unit": f"{measure.unit_name} units"}
        if kinds:
            more = (f", {totals['unit']} {measure.unit_name} units ({len(cross)} pairs)" if measure.unit_name
                    else f" ({sum(len(v) for v in targets_of.values())} pairs)")
            reporter.emit("log", level="info", message=(
                f"{ex.status()}: {totals['probe']} probe units, {totals['fisher']} Fisher units{more}"))
        done = {k: 0 for k in totals}
        unrecorded = set(missing_probes)
        # Ray hands results back in any order: a Fisher pass (or a measure's unit) can arrive before the result of
        # the probe unit it was computed from, and the measures read probes back from the store; such a result
        # waits until every probe it may read is stored
        waiting: list[tuple[str, str, int, Any]] = []

        def handle(kind: str, b: str, s: int, value: Any) -> None:
            if kind == "fisher":
                if (b, s) in own_missing:
                    probes.record_own_fisher(b, s, np.asarray(value[b]))
                    own_missing.discard((b, s))
                probes.mark_ready(b)
                finished = measure.on_passes(b, s, value)
            else:
                finished = measure.on_unit((b, s), value)
            for source, target, values in finished:
                record(source, target, values)
            done[kind] += 1
            reporter.emit("job_progress", job=job, stage=stages[kind], done=done[kind], total=totals[kind])

        for ref, value in ex.completed(list(kinds), reporter):
            kind, b, s = kinds[ref]
            if kind == "probe":
                state, info = value
                probes.record_probe(b, s, state, info["val_acc"], info["epochs"], info["seconds"])
                unrecorded.discard((b, s))
                done[kind] += 1
                reporter.emit("job_progress", job=job, stage=stages[kind], done=done[kind], total=totals[kind])
            else:
                waiting.append((kind, b, s, value))
            while waiting and not unrecorded:
                handle(*waiting.pop(0))
        for item in waiting:   # every unit has arrived, so every probe is stored
            handle(*item)
        for t in ids:
            probes.mark_ready(t)
        for source, target, values in measure.finish_remote():  # every unit has arrived: all its inputs are here
            record(source, target, values)
        return cross if measure.own_only else []
