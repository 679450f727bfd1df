"""The distance forms of a dictionary, one object each: what a distance is computed from, its parameters (what makes
two matrices comparable), its noise floor and its remote unit. `make_measure` is the one place that reads
`[dictionary] fisher_form`; everything else asks the measure.

- `PairMeasure` (METHOD 3a): d(b, t) = H(F(b, t), F(t, t)), b's probe on t's samples against t's own Fisher; one
  Fisher pass per ordered pair; remote unit: `fisher_unit` (one per probe, every missing target).
- `EmbeddingMeasure` (Task2Vec): d(b, t) = H(F(b, b), F(t, t)) from the two own Fishers; symmetric; no unit beyond
  the own Fishers.
- `DomainMeasure`: like the embedding form, each task's label-free Fisher of the shared body's features.
- `TransferMeasure` (METHOD 3b): the transform-network distance; remote unit: `transfer_unit` (one per source probe).

H is the Hellinger form of METHOD 3a on unit-trace diagonals (`fisher_distance`), optionally with a unit trace per
layer (`fisher_norm = "layer"`).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable

import numpy as np
import torch

from engine.choices import DISTANCE_METHODS
from engine.config import Config
from engine.runtime.finite import check
from engine.similarity.distance import fisher_distance, per_layer_unit_trace
from engine.similarity.fisher import classifier_fisher, domain_fisher, fisher_layout, pad_head
from engine.similarity.probe import train_probe
from engine.similarity.probes import FisherFn, Probes, probe_seed

Pair = tuple[str, str]
Done = list[tuple[str, str, list[float]]]       # (source, target, one value per seed index)


def own_fisher_fn(d) -> FisherFn:
    """The Fisher a task's own probe stores under [dictionary] settings `d`."""
    return domain_fisher if d.fisher_form == "domain" else classifier_fisher


def make_measure(method: str, cfg: Config, probes: Probes) -> "Measure":
    if method == "transfer":
        return TransferMeasure(cfg, probes)
    if method == "fisher":
        forms = {"pair": PairMeasure, "embedding": EmbeddingMeasure, "domain": DomainMeasure}
        return forms[cfg.dictionary.fisher_form](cfg, probes)
    raise ValueError(f"unknown distance method {method!r} (use {' or '.join(DISTANCE_METHODS)})")


class Measure:
    """One distance form. `pair(b, t, s)` computes d(b, t) under seed index s now (never read from the store)."""

    method = ""
    vector_form = False  # see EmbeddingMeasure.vector_form
    own_only = False     # the distance needs the tasks' own Fishers only: nothing to compute per pair remotely
    unit_name = ""       # the kind of remote unit this form adds to the probes' and own Fishers' units

    def __init__(self, cfg: Config, probes: Probes):
        self.cfg, self.probes, self.d = cfg, probes, cfg.dictionary

    @property
    def seeds(self) -> int:
        return self.d.seeds

    def params(self) -> dict[str, Any]:
        d = self.d
        # The probe protocol is part of a distance's definition: probes trained differently give other distances.
        return {"probe": d.probe, "seeds": d.seeds,
                "probe_training": {"epsilon": d.epsilon, "min_epochs": d.min_epochs, "max_epochs": d.max_epochs,
                                   "lr": d.lr, "batch_size": d.batch_size}}

    def pair_values(self, b: str, t: str) -> list[float]:
        return [self.pair(b, t, s) for s in range(self.seeds)]

    def pair(self, b: str, t: str, s: int) -> float:
        raise NotImplementedError

    # the noise floor: the distance between two versions of task tid's probe (seed index 0) that differ only in
    # what the distance should ignore
    noise_kind = "two probes with the same initialisation and another data order"

    def same_task_distance(self, tid: str) -> float:
        raise NotImplementedError

    def _other_probe(self, tid: str) -> torch.nn.Module:
        task = self.probes.task_data(tid)
        seed = probe_seed(self.cfg, task.definition, 0)
        return train_probe(task, self.d, seed=seed, device=self.probes.device, order_seed=seed + 7_919).model

    # the remote planner's questions (engine.similarity.remote)
    def pass_targets(self, cross: list[Pair]) -> dict[str, list[str]]:
        """Per source probe, the targets whose samples it needs a Fisher pass on."""
        return {}

    def on_passes(self, b: str, s: int, vecs: dict[str, np.ndarray]) -> Done:
        """Fisher passes of probe (b, s) arrived (its own Fisher is stored already); the pairs now complete."""
        return []

    def submit_units(self, planner, cross: list[Pair]) -> dict[Any, tuple[str, int]]:
        """This form's own units for the missing cross pairs: {ref: (source, seed index)}."""
        return {}

    def on_unit(self, key: tuple[str, int], value: Any) -> Done:
        return []

    def finish_remote(self) -> Done:
        """After every unit arrived: the pairs still to write from what came back."""
        return []


class FisherMeasure(Measure):
    """What the Fisher forms share: the configured normalisation and the head handling of `include_head`."""

    method = "fisher"
    form: str | None = None      # recorded in the params when not the published "pair"

    def params(self) -> dict[str, Any]:
        d = self.d
        params = {**super().params(), "fisher": d.fisher, "fisher_samples": d.fisher_samples,
                  "include_head": d.include_head}
        # Recorded only when not the published setting, so stores built before these options stay valid.
        if d.fisher_body != "per-task":
            params.update(fisher_body=d.fisher_body, shared_epochs=d.shared_epochs)
        if self.form is not None:
            params["fisher_form"] = self.form
        if d.fisher_norm != "global":
            params["fisher_norm"] = d.fisher_norm
        return params

    def fisher(self, net: torch.nn.Module, tid: str, s: int, head_classes: int | None = None) -> torch.Tensor:
        """`net`'s Fisher (this form's kind) on task tid's M samples."""
        return self.probes.own_fisher(net, self.probes.samples(tid), s, self.d, head_classes)

    def own(self, tid: str, s: int, head_classes: int | None = None) -> torch.Tensor:
        """Task tid's stored own Fisher, its head padded to `head_classes` when given."""
        f = self.probes.store.load_fisher(tid, s)
        if f is None:
            raise ValueError(f"task {self.probes.store.task(tid)['name']!r} has no stored Fisher for seed {s}")
        f = torch.from_numpy(f)
        return f if head_classes is None else pad_head(f, self.probes.model(tid, s), head_classes)

    def head_classes(self, *nets: torch.nn.Module) -> int | None:
        return max(n.head.out_features for n in nets) if self.d.include_head else None

    def distance(self, f_a, f_b, layout_net: Callable[[], torch.nn.Module], head_classes: int | None) -> float:
        """H(f_a, f_b); `layout_net` gives the network whose layout a per-layer normalisation follows."""
        if self.d.fisher_norm == "layer":
            layout = fisher_layout(layout_net(), self.d.include_head, head_classes)
            f_a, f_b = per_layer_unit_trace(f_a, layout), per_layer_unit_trace(f_b, layout)
        check(f_a, "Fisher", "pass", "Fisher vector")
        return fisher_distance(f_a, f_b)

    def _head_halves_distance(self, tid: str) -> float:
        """Shared body: heads fitted on the two halves of the train split, each Fisher on the task's samples."""
        from engine.similarity.shared_probe import task_view

        task = self.probes.task_data(tid)
        m = len(task.train_y)
        perm = torch.randperm(m, generator=torch.Generator().manual_seed(5 + task.definition.seed))
        body = self.probes.shared_bodies().body(0)
        a, b = task_view(body, task, rows=perm[: m // 2]), task_view(body, task, rows=perm[m // 2:])
        return self.distance(self.fisher(a, tid, 0), self.fisher(b, tid, 0), lambda: a, None)

    @property
    def noise_kind(self) -> str:
        return ("heads fitted on the two halves of the train split (shared body)" if self.probes.shared
                else Measure.noise_kind)


class PairMeasure(FisherMeasure):
    """METHOD 3a as published: F(b, t) of b's probe on t's samples against t's own F(t, t)."""

    def pair(self, b: str, t: str, s: int) -> float:
        net_b, net_t = self.probes.model(b, s), self.probes.model(t, s)
        classes = self.head_classes(net_b, net_t)
        return self.distance(self.fisher(net_b, t, s, classes), self.own(t, s, classes), lambda: net_t, classes)

    def same_task_distance(self, tid: str) -> float:
        if self.probes.shared:
            return self._head_halves_distance(tid)
        net = self.probes.model(tid, 0)
        classes = net.head.out_features if self.d.include_head else None
        return self.distance(self.fisher(self._other_probe(tid), tid, 0, classes), self.own(tid, 0, classes),
                             lambda: net, classes)

    # remote: one Fisher unit per source probe computes F(b, t) for every missing t; the engine pairs each with t's
    # own Fisher once both are here
    def pass_targets(self, cross: list[Pair]) -> dict[str, list[str]]:
        self._remaining = set(cross)
        self._passes: dict[tuple[str, str, int], np.ndarray] = {}
        targets: dict[str, list[str]] = {}
        for b, t in cross:
            targets.setdefault(b, []).append(t)
        return targets

    def on_passes(self, b: str, s: int, vecs: dict[str, np.ndarray]) -> Done:
        self._passes.update({(b, t, s): v for t, v in vecs.items() if t != b})
        return self._complete([p for p in self._remaining if b in p])

    def finish_remote(self) -> Done:
        return self._complete(list(self._remaining))

    def _complete(self, pairs: Iterable[Pair]) -> Done:
        store, done = self.probes.store, []
        for b, t in pairs:
            if not all((b, t, s) in self._passes and store.fisher_length(t, s) is not None
                       for s in range(self.seeds)):
                continue
            values = []
            for s in range(self.seeds):
                f_bt = self._passes.pop((b, t, s))
                classes = self.head_classes(self.probes.model(b, s), self.probes.model(t, s))
                values.append(self.distance(f_bt, self.own(t, s, classes), lambda t=t, s=s: self.probes.model(t, s),
                                            classes))
            self._remaining.discard((b, t))
            done.append((b, t, values))
        return done


class EmbeddingMeasure(FisherMeasure):
    """Task2Vec's form: each task's own Fisher on its own data, d = H(F(b, b), F(t, t)); symmetric."""

    form = "embedding"
    own_only = True

    @property
    def vector_form(self) -> bool:
        """d(b, t) = ‖v(b) − v(t)‖ / √2 of one stored vector per task (`vector`): one unit trace over the whole
        Fisher and no head (a head is padded to the pair's larger class count, so it is not a per-task vector)."""
        return self.d.fisher_norm == "global" and not self.d.include_head

    def vector(self, tid: str, s: int) -> np.ndarray:
        """√(F(t, t) / ΣF(t, t)) of the stored own Fisher, float64: `fisher_distance`'s normalisation exactly."""
        from store.vectors import sqrt_unit_trace

        f = self.probes.store.load_fisher(tid, s)
        if f is None:
            raise ValueError(f"task {self.probes.store.task(tid)['name']!r} has no stored Fisher for seed {s}")
        return sqrt_unit_trace(f)

    def pair(self, b: str, t: str, s: int) -> float:
        classes = None
        if self.d.include_head:
            classes = self.head_classes(self.probes.model(b, s), self.probes.model(t, s))
        return self.distance(self.own(b, s, classes), self.own(t, s, classes), lambda: self.probes.model(t, s),
                             classes)

    def same_task_distance(self, tid: str) -> float:
        if self.probes.shared:
            return self._head_halves_distance(tid)
        net = self.probes.model(tid, 0)
        classes = net.head.out_features if self.d.include_head else None
        return self.distance(self.fisher(self._other_probe(tid), tid, 0, classes), self.fisher(net, tid, 0, classes),
                             lambda: net, classes)


class DomainMeasure(EmbeddingMeasure):
    """The embedding form on label-free Fishers of the shared body's features (`domain_fisher`); no head."""

    form = "domain"
    noise_kind = "the two halves of the train split (shared body, domain form)"

    def same_task_distance(self, tid: str) -> float:
        from engine.similarity.fisher import feature_fisher

        task = self.probes.task_data(tid)
        m = len(task.train_y)
        perm = torch.randperm(m, generator=torch.Generator().manual_seed(5 + task.definition.seed))
        net, n = self.probes.model(tid, 0), self.d.fisher_samples
        halves = [task.train_x[perm[: m // 2][:n]], task.train_x[perm[m // 2:][:n]]]
        vecs = [feature_fisher(net, h, generator=torch.Generator().manual_seed(31_337)) for h in halves]
        return self.distance(vecs[0], vecs[1], lambda: net, None)


class TransferMeasure(Measure):
    """METHOD 3b: the pruned transform network from A's features to B's."""

    method = "transfer"
    unit_name = "transfer"

    def params(self) -> dict[str, Any]:
        return {**super().params(), "transfer": dataclasses.asdict(self.cfg.transfer)}

    def _distance(self, net_a: torch.nn.Module, net_b: torch.nn.Module, tid_b: str, seed: int) -> float:
        from engine.similarity.transfer import transfer_distance

        return float(transfer_distance(net_a, net_b, self.probes.task_data(tid_b), self.cfg.transfer,
                                       device=self.probes.device, seed=seed, reporter=self.probes.reporter).distance)

    def pair(self, a: str, b: str, s: int) -> float:
        return self._distance(self.probes.model(a, s), self.probes.model(b, s), b, self.cfg.project.seed * 1000 + s)

    def same_task_distance(self, tid: str) -> float:
        return self._distance(self._other_probe(tid), self.probes.model(tid, 0), tid, self.cfg.project.seed * 1000)

    # remote: one transfer unit per source probe (b, s), b loaded once for all its targets
    def submit_units(self, planner, cross: list[Pair]) -> dict[Any, tuple[str, int]]:
        from engine.similarity.units import transfer_unit

        self._got: dict[Pair, dict[int, float]] = {}
        targets: dict[str, list[str]] = {}
        for b, t in cross:
            targets.setdefault(b, []).append(t)
        ex, refs = planner.executor, {}
        for b, ts in targets.items():
            attrs = planner.attrs[b]
            for s in range(self.seeds):
                ref = ex.submit(transfer_unit, self.d.probe, int(attrs["num_classes"]), planner.probe_ref(b, s),
                                self.cfg.transfer, s, self.cfg.project.seed * 1000 + s, ex.device,
                                ex.unit_reporter(f"transfer {attrs['name']}/{s}"), ts,
                                [int(planner.attrs[t]["num_classes"]) for t in ts],
                                *[planner.probe_ref(t, s) for t in ts], *[planner.task_ref(t) for t in ts],
                                name=f"transfer:{attrs['name']}:{s}")
                refs[ref] = (b, s)
        return refs

    def on_unit(self, key: tuple[str, int], value: dict[str, float]) -> Done:
        b, s = key
        done = []
        for t, dist in value.items():
            got = self._got.setdefault((b, t), {})
            got[s] = dist
            if len(got) == self.seeds:   # every seed's d(b, t) is here: one entry, as the local path writes it
                done.append((b, t, [got[i] for i in range(self.seeds)]))
        return done
