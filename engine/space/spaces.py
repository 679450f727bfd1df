"""Search spaces: which operations (with sampling weights), node counts and skeleton values a search may use.

Sampling a genotype (`SearchSpace.sample`): nodes, channels and layers uniformly from the allowed values; for each
cell and each intermediate node, two *distinct* inputs uniformly from the earlier nodes (as DARTS derives its
genotypes) and, per edge, an operation drawn by `op_weights`. `none` is never sampled, whatever its weight: a `none`
edge only removes an input, and a cell of `none` edges would output zeros. Its weight stays in `op_weights` so the
space still shows what the neighbours used; sampling renormalises over the other operations.

Task-aware space (METHOD.md section 4), for neighbours g with distances d_g to the target:

    w_g      = max(0, 1 - d_g / scale)            (scale 1 for Fisher distances in [0, 1], 100 for transfer percents)
    raw(op)  = sum_g  w_g * count_g(op)            (count_g: edges of g, both cells, carrying op)
    p(op)    = raw(op) / sum(raw)                  over the operations the neighbours used
    absent   = sampleable operations (all but `none`) with raw(op) = 0
    weight   = (1 - s) * p(op)  for used operations,  s / |absent|  for each absent one  (s = cfg.smoothing)

so `smoothing` is the total probability kept for operations no neighbour used (s = 0 restricts the space to the
neighbours' operations); with no absent operation, weight = p. When every w_g is 0 (all neighbours at distance
>= scale) the neighbours count equally and a note says so. Skeleton values (channels, layers, nodes): the configured
values within [min, max] of the neighbours' values; when no configured value lies in that range, the neighbours' own
values.
"""
from __future__ import annotations

import math
import random
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from engine.config import SpaceSection
from engine.space.genotype import PRIMITIVES, Cell, Genotype, GenotypeError

if TYPE_CHECKING:
    import torch

# No torch import here: the UI builds the standard space to show it, and must not pay torch's import time.

__all__ = ["SearchSpace", "SpaceError", "standard_space", "task_aware_space", "make_rng", "SAMPLED_OPS"]

SAMPLED_OPS: tuple[str, ...] = tuple(op for op in PRIMITIVES if op != "none")
KINDS = ("standard", "task-aware", "farthest")


class SpaceError(ValueError):
    """An invalid search space or space input; the message names the problem."""


def make_rng(generator: random.Random | torch.Generator | int | None) -> random.Random:
    """A `random.Random` from a seed, a `random.Random` (used as is) or a `torch.Generator` (one draw from it)."""
    if isinstance(generator, random.Random):
        return generator
    torch = sys.modules.get("torch")   # no torch.Generator can exist before torch is imported
    if torch is not None and isinstance(generator, torch.Generator):
        return random.Random(int(torch.randint(0, 2**62, (1,), generator=generator).item()))
    if generator is None or (isinstance(generator, int) and not isinstance(generator, bool)):
        return random.Random(generator)
    raise SpaceError(f"expected a seed, random.Random or torch.Generator, got {type(generator).__name__}")


@dataclass
class SearchSpace:
    kind: str
    op_weights: dict[str, float]
    nodes: tuple[int, ...]
    channels: tuple[int, ...]
    layers: tuple[int, ...]
    provenance: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise SpaceError(f"space kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        unknown = [op for op in self.op_weights if op not in PRIMITIVES]
        if unknown:
            raise SpaceError(f"unknown operation(s) in op_weights: {', '.join(map(str, unknown))}; "
                             f"valid operations: {', '.join(PRIMITIVES)}")
        for op, w in self.op_weights.items():
            if not isinstance(w, (int, float)) or isinstance(w, bool) or not math.isfinite(w) or w < 0:
                raise SpaceError(f"op_weights[{op!r}] must be a finite number >= 0, got {w!r}")
        if sum(self.op_weights.get(op, 0.0) for op in SAMPLED_OPS) <= 0:
            raise SpaceError("op_weights give no weight to any sampleable operation (everything but 'none')")
        total = sum(self.op_weights.values())
        # Canonical order and unit sum.
        self.op_weights = {op: float(self.op_weights[op]) / total for op in PRIMITIVES if op in self.op_weights}
        for name in ("nodes", "channels", "layers"):
            values = getattr(self, name)
            if not isinstance(values, (list, tuple)) or not values:
                raise SpaceError(f"{name} must be a non-empty list of positive integers, got {values!r}")
            for v in values:
                if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                    raise SpaceError(f"{name} must hold positive integers, got {v!r}")
            setattr(self, name, tuple(sorted(set(values))))

    # -- sampling ------------------------------------------------------------------------------------------------
    def sample(self, generator: random.Random | torch.Generator | int | None = None) -> Genotype:
        """One genotype; deterministic for a given seed (or generator state)."""
        rng = make_rng(generator)
        ops = [op for op in SAMPLED_OPS if self.op_weights.get(op, 0.0) > 0]
        weights = [self.op_weights[op] for op in ops]
        nodes = rng.choice(self.nodes)
        channels = rng.choice(self.channels)
        layers = rng.choice(self.layers)

        def cell() -> Cell:
            edges = []
            for i in range(nodes):
                inputs = rng.sample(range(i + 2), 2)
                edges.append(tuple((rng.choices(ops, weights)[0], src) for src in inputs))
            return Cell(tuple(edges))

        normal = cell()
        return Genotype(normal=normal, reduce=cell(), channels=channels, layers=layers).validate()

    def sample_many(self, n: int, seed: random.Random | torch.Generator | int | None = None,
                    exclude: Iterable[str] = (), max_tries: int = 1000) -> list[Genotype]:
        """`n` genotypes with distinct hashes, none of them in `exclude` (hashes), from one seeded stream."""
        if n < 0:
            raise SpaceError(f"n must be >= 0, got {n}")
        rng = make_rng(seed)
        seen = set(exclude)
        out: list[Genotype] = []
        tries = 0
        while len(out) < n:
            g = self.sample(rng)
            tries += 1
            if g.hash not in seen:
                seen.add(g.hash)
                out.append(g)
            elif tries >= max_tries + n:
                raise SpaceError(f"could not draw {n} distinct genotypes in {tries} tries; the space is too small")
        return out

    # -- plain data ----------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "op_weights": dict(self.op_weights), "nodes": list(self.nodes),
                "channels": list(self.channels), "layers": list(self.layers),
                "provenance": [dict(p) for p in self.provenance], "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, data: Any) -> "SearchSpace":
        if not isinstance(data, Mapping):
            raise SpaceError(f"a search space must be an object, got {type(data).__name__}")
        required = ("kind", "op_weights", "nodes", "channels", "layers")
        missing = [k for k in required if k not in data]
        if missing:
            raise SpaceError(f"search space is missing key(s): {', '.join(missing)}")
        unknown = set(data) - set(required) - {"provenance", "notes"}
        if unknown:
            raise SpaceError(f"search space has unknown key(s): {', '.join(sorted(map(str, unknown)))}")
        if not isinstance(data["op_weights"], Mapping):
            raise SpaceError("op_weights must be an object mapping operation to weight")
        provenance = [dict(p) for p in data.get("provenance") or []]
        for i, p in enumerate(provenance):
            if "genotype" in p:
                try:
                    Genotype.from_dict(p["genotype"])
                except GenotypeError as exc:
                    raise SpaceError(f"provenance[{i}] ({p.get('name', '?')}): {exc}") from None
        return cls(kind=data["kind"], op_weights=dict(data["op_weights"]), nodes=tuple(data["nodes"]),
                   channels=tuple(data["channels"]), layers=tuple(data["layers"]), provenance=provenance,
                   notes=list(data.get("notes") or []))

    def provenance_genotypes(self) -> list[Genotype]:
        return [Genotype.from_dict(p["genotype"]) for p in self.provenance]

    def describe(self) -> str:
        lines = [f"{self.kind} search space: nodes {_values(self.nodes)}, channels {_values(self.channels)}, "
                 f"layers {_values(self.layers)}", "operations (sampling weight; 'none' is never sampled):"]
        width = max(len(op) for op in self.op_weights)
        for op, w in self.op_weights.items():
            lines.append(f"  {op:<{width}}  {w:6.3f}  {'#' * round(w * 40)}")
        if self.provenance:
            lines.append("formed from the nearest tasks:")
            for p in self.provenance:
                lines.append(f"  {p['name']} ({p['task_id']}): distance {p['distance']:.4g}, weight {p['weight']:.3f}, "
                             f"genotype {p['hash']}")
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)


def _values(values: Sequence[int]) -> str:
    return "{" + ", ".join(map(str, values)) + "}"


def standard_space(cfg: SpaceSection | None = None) -> SearchSpace:
    cfg = cfg or SpaceSection()
    return SearchSpace(kind="standard", op_weights={op: 1.0 for op in PRIMITIVES}, nodes=tuple(cfg.nodes),
                       channels=tuple(cfg.channels), layers=tuple(cfg.layers))


def task_aware_space(neighbors: Sequence[tuple[str, str, float, Genotype]], cfg: SpaceSection | None = None,
                     scale: float = 1.0, kind: str = "task-aware") -> SearchSpace:
    """The space spanned by the nearest tasks' best genotypes; `neighbors` holds (task_id, name, distance, genotype).

    kind="farthest" builds the control space the same way from the k farthest tasks (the caller picks them): only
    which tasks go in differs, so a difference in results is the tasks', not the construction's."""
    cfg = cfg or SpaceSection()
    if kind not in ("task-aware", "farthest"):
        raise SpaceError(f"a space from dictionary tasks is 'task-aware' or 'farthest', got {kind!r}")
    if not neighbors:
        raise SpaceError("a task-aware space needs at least one neighbouring task with a genotype; got none")
    if not (isinstance(scale, (int, float)) and scale > 0 and math.isfinite(scale)):
        raise SpaceError(f"scale must be a positive number, got {scale!r}")
    smoothing = float(cfg.smoothing)
    if not 0.0 <= smoothing < 1.0:
        raise SpaceError(f"smoothing must be in [0, 1), got {smoothing!r}")

    rows = []
    for entry in neighbors:
        try:
            task_id, name, distance, genotype = entry
        except (TypeError, ValueError):
            raise SpaceError(f"each neighbour must be (task_id, name, distance, genotype), got {entry!r}") from None
        if not isinstance(genotype, Genotype):
            raise SpaceError(f"neighbour {name} ({task_id}): expected a Genotype, got {type(genotype).__name__}")
        try:
            genotype.validate()
        except GenotypeError as exc:
            raise SpaceError(f"neighbour {name} ({task_id}): invalid genotype: {exc}") from None
        d = float(distance)
        if not math.isfinite(d) or not 0.0 <= d <= scale:
            raise SpaceError(f"neighbour {name} ({task_id}): distance {distance!r} is outside [0, {scale:g}]"
                             + ("; transfer distances are percents, pass scale=100" if scale == 1.0 and d > 1 else ""))
        rows.append((str(task_id), str(name), d, genotype, max(0.0, 1.0 - d / scale)))

    notes: list[str] = []
    weights = [w for *_, w in rows]
    if sum(weights) == 0:
        weights = [1.0] * len(rows)
        notes.append(f"every neighbour is at distance >= {scale:g}; their genotypes counted equally")

    raw: Counter = Counter()
    for (_, _, _, genotype, _), w in zip(rows, weights):
        for op, count in genotype.ops_used().items():
            raw[op] += w * count
    total = sum(raw.values())
    absent = [op for op in SAMPLED_OPS if raw[op] == 0]
    used_share = 1.0 - smoothing if absent else 1.0
    op_weights = {op: used_share * raw[op] / total for op in PRIMITIVES if raw[op] > 0}
    for op in absent:
        op_weights[op] = smoothing / len(absent)
    op_weights = {op: w for op, w in op_weights.items() if w > 0}
    if not any(op_weights.get(op, 0) > 0 for op in SAMPLED_OPS):
        raise SpaceError("the neighbours' genotypes use only 'none' and smoothing is 0: nothing left to sample")

    genotypes = [r[3] for r in rows]
    provenance = [{"task_id": tid, "name": name, "distance": d, "weight": w, "hash": g.hash, "genotype": g.to_dict()}
                  for tid, name, d, g, w in rows]
    if kind == "farthest":
        notes.append(f"control space: the {len(rows)} farthest dictionary tasks, built like the task-aware space")
    return SearchSpace(
        kind=kind, op_weights=op_weights,
        nodes=_span(cfg.nodes, [g.nodes for g in genotypes]),
        channels=_span(cfg.channels, [g.channels for g in genotypes]),
        layers=_span(cfg.layers, [g.layers for g in genotypes]),
        provenance=provenance, notes=notes,
    )


def _span(allowed: Sequence[int], seen: Sequence[int]) -> tuple[int, ...]:
    lo, hi = min(seen), max(seen)
    inside = tuple(sorted({v for v in allowed if lo <= v <= hi}))
    return inside or tuple(sorted(set(seen)))
