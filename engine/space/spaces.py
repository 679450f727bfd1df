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
values by `[space] skeleton` (engine/space/skeleton.py; "span": the configured values within [min, max] of the
neighbours' values, or the neighbours' own when none lies there).

Cell-level form (`[space] form = "cells"`, the poster's "combining the skeletons, cells and operations of the most
similar pairs"): a candidate takes its normal cell from a neighbour drawn by w_g, its reduction cell from a neighbour
(drawn again, among those with as many nodes), each edge keeping its input and, with probability m = smoothing, its
operation replaced by another sampleable one drawn uniformly; channels and layers by the skeleton rule. The
neighbours' genotypes themselves are the first round's first candidates (`first_candidates`).

`size_log10` is log10 of the number of distinct genotypes `sample` can draw.
"""
from __future__ import annotations

import math
import random
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from engine.choices import SPACE_FORMS
from engine.config import SpaceSection
from engine.space.genotype import PRIMITIVES, Cell, Genotype, GenotypeError
from engine.space.skeleton import skeleton_values

if TYPE_CHECKING:
    import torch

# No torch import here: the UI builds the standard space to show it, and must not pay torch's import time.

__all__ = ["SearchSpace", "SpaceError", "standard_space", "task_aware_space", "make_rng", "SAMPLED_OPS"]

SAMPLED_OPS: tuple[str, ...] = tuple(op for op in PRIMITIVES if op != "none")
KINDS = ("standard", "task-aware", "farthest")
SKELETON = ("nodes", "channels", "layers")


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
    form: str = "operations"
    mutation: float = 0.0     # cells: the chance that an edge's operation is replaced
    # per skeleton field, one sampling weight per (sorted) value; a field not named is drawn uniformly
    skeleton_weights: dict[str, tuple[float, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise SpaceError(f"space kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.form not in SPACE_FORMS:
            raise SpaceError(f"space form must be one of {', '.join(SPACE_FORMS)}, got {self.form!r}")
        if not (isinstance(self.mutation, (int, float)) and 0.0 <= self.mutation < 1.0):
            raise SpaceError(f"mutation must be in [0, 1), got {self.mutation!r}")
        if self.form == "cells" and not self.provenance:
            raise SpaceError("a cell-level space needs the neighbours' genotypes (provenance); it has none")
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
        weights = {}
        for name, ws in dict(self.skeleton_weights or {}).items():
            values = getattr(self, name, None) if name in SKELETON else None
            if values is None:
                raise SpaceError(f"skeleton_weights names {name!r}; use {', '.join(SKELETON)}")
            ws = tuple(ws) if isinstance(ws, (list, tuple)) else ()
            if len(ws) != len(values) or not all(isinstance(w, (int, float)) and math.isfinite(w) and w >= 0
                                                 for w in ws) or sum(ws) <= 0:
                raise SpaceError(f"skeleton_weights[{name!r}] must hold one weight >= 0 per value of {name} "
                                 f"{list(values)}, not all 0; got {list(ws)!r}")
            weights[name] = tuple(float(w) / sum(ws) for w in ws)
        self.skeleton_weights = weights

    # -- sampling ------------------------------------------------------------------------------------------------
    def sample(self, generator: random.Random | torch.Generator | int | None = None) -> Genotype:
        """One genotype; deterministic for a given seed (or generator state)."""
        rng = make_rng(generator)
        if self.form == "cells":
            return self._sample_cells(rng)
        ops = [op for op in SAMPLED_OPS if self.op_weights.get(op, 0.0) > 0]
        weights = [self.op_weights[op] for op in ops]
        nodes = self._draw(rng, "nodes")
        channels = self._draw(rng, "channels")
        layers = self._draw(rng, "layers")

        def cell() -> Cell:
            edges = []
            for i in range(nodes):
                inputs = rng.sample(range(i + 2), 2)
                edges.append(tuple((rng.choices(ops, weights)[0], src) for src in inputs))
            return Cell(tuple(edges))

        normal = cell()
        return Genotype(normal=normal, reduce=cell(), channels=channels, layers=layers).validate()

    def _draw(self, rng: random.Random, name: str) -> int:
        values, weights = getattr(self, name), self.skeleton_weights.get(name)
        return rng.choice(values) if weights is None else rng.choices(values, weights)[0]

    def _sources(self) -> tuple[list[Genotype], list[float]]:
        genotypes = self.provenance_genotypes()
        weights = [float(p.get("weight", 0.0)) for p in self.provenance]
        return genotypes, (weights if sum(weights) > 0 else [1.0] * len(genotypes))

    def _sample_cells(self, rng: random.Random) -> Genotype:
        genotypes, weights = self._sources()
        normal_from = rng.choices(genotypes, weights)[0]
        alike = [(g, w) for g, w in zip(genotypes, weights) if g.nodes == normal_from.nodes and w > 0]
        reduce_from = rng.choices([g for g, _ in alike], [w for _, w in alike])[0]
        channels = self._draw(rng, "channels")
        layers = self._draw(rng, "layers")

        def mutated(cell: Cell) -> Cell:
            edges = []
            for node in cell.edges:
                pair = []
                for op, src in node:
                    if self.mutation > 0 and rng.random() < self.mutation:
                        op = rng.choice([o for o in SAMPLED_OPS if o != op])
                    pair.append((op, src))
                edges.append(tuple(pair))
            return Cell(tuple(edges), cell.concat)

        return Genotype(normal=mutated(normal_from.normal), reduce=mutated(reduce_from.reduce), channels=channels,
                        layers=layers).validate()

    def first_candidates(self) -> list[Genotype]:
        """Genotypes FUSE's first round takes before it samples: for a cell-level space the neighbours' own, by
        decreasing weight, each once; none for the other forms."""
        if self.form != "cells":
            return []
        genotypes, weights = self._sources()
        out: dict[str, Genotype] = {}
        for _, i in sorted((-w, i) for i, w in enumerate(weights)):
            out.setdefault(genotypes[i].hash, genotypes[i])
        return list(out.values())

    def size(self) -> int:
        """The number of distinct genotypes `sample` can draw (cells: both cells' sources, every mutation)."""
        skeleton = len(self.channels) * len(self.layers)
        if self.form != "cells":
            k = sum(1 for op in SAMPLED_OPS if self.op_weights.get(op, 0.0) > 0)
            return skeleton * sum(math.prod((i + 2) * (i + 1) * k * k for i in range(n)) ** 2 for n in self.nodes)
        genotypes, weights = self._sources()
        used = [g for g, w in zip(genotypes, weights) if w > 0]
        total = 0
        for n in sorted({g.nodes for g in used}):
            alike = [g for g in used if g.nodes == n]
            total += self._cells(g.normal for g in alike) * self._cells(g.reduce for g in alike)
        return skeleton * total

    def _cells(self, cells: Iterable[Cell]) -> int:
        """Distinct cells reachable from `cells` by the mutations: per input structure, the product over its edges
        of the operations an edge may carry (any sampleable one, or the sources' own)."""
        cells = list(cells)
        if self.mutation == 0:
            return len({(c.edges, c.concat) for c in cells})
        shapes: dict[tuple, list[set[str]]] = {}
        for c in cells:
            shape = (tuple(tuple(src for _, src in node) for node in c.edges), c.concat)
            slots = shapes.setdefault(shape, [set(SAMPLED_OPS) for _ in range(2 * c.nodes)])
            for slot, op in zip(slots, c.ops()):
                slot.add(op)
        return sum(math.prod(len(s) for s in slots) for slots in shapes.values())

    def size_log10(self) -> float:
        return math.log10(self.size())

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
        out = {"kind": self.kind, "op_weights": dict(self.op_weights), "nodes": list(self.nodes),
               "channels": list(self.channels), "layers": list(self.layers),
               "provenance": [dict(p) for p in self.provenance], "notes": list(self.notes)}
        # written only when they differ from the operation-frequency form, so spaces stored before them read equal
        if self.form != "operations":
            out.update(form=self.form, mutation=self.mutation)
        if self.skeleton_weights:
            out["skeleton_weights"] = {k: list(v) for k, v in self.skeleton_weights.items()}
        return out

    @classmethod
    def from_dict(cls, data: Any) -> "SearchSpace":
        if not isinstance(data, Mapping):
            raise SpaceError(f"a search space must be an object, got {type(data).__name__}")
        required = ("kind", "op_weights", "nodes", "channels", "layers")
        missing = [k for k in required if k not in data]
        if missing:
            raise SpaceError(f"search space is missing key(s): {', '.join(missing)}")
        unknown = set(data) - set(required) - {"provenance", "notes", "form", "mutation", "skeleton_weights"}
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
        skeleton_weights = data.get("skeleton_weights") or {}
        if not isinstance(skeleton_weights, Mapping):
            raise SpaceError("skeleton_weights must be an object mapping a skeleton field to its weights")
        return cls(kind=data["kind"], op_weights=dict(data["op_weights"]), nodes=tuple(data["nodes"]),
                   channels=tuple(data["channels"]), layers=tuple(data["layers"]), provenance=provenance,
                   notes=list(data.get("notes") or []), form=data.get("form", "operations"),
                   mutation=data.get("mutation", 0.0), skeleton_weights=dict(skeleton_weights))

    def provenance_genotypes(self) -> list[Genotype]:
        return [Genotype.from_dict(p["genotype"]) for p in self.provenance]

    def describe(self) -> str:
        form = "" if self.form == "operations" else f", {self.form} form (mutation {self.mutation:g})"
        lines = [f"{self.kind} search space{form}: nodes {_values(self.nodes)}, channels "
                 f"{self._weighted('channels')}, layers {self._weighted('layers')}",
                 f"size: 10^{self.size_log10():.1f} genotypes"]
        if self.form == "cells":
            lines.append("operations of the neighbours' cells (weighted share; a mutation draws any but 'none'):")
        else:
            lines.append("operations (sampling weight; 'none' is never sampled):")
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


    def _weighted(self, name: str) -> str:
        values, weights = getattr(self, name), self.skeleton_weights.get(name)
        if weights is None:
            return _values(values)
        return "{" + ", ".join(f"{v} ({w:.2f})" for v, w in zip(values, weights)) + "}"


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
    skeleton: dict[str, tuple[int, ...]] = {}
    skeleton_weights: dict[str, tuple[float, ...]] = {}
    for name in SKELETON:
        seen = [(getattr(g, name), w) for g, w in zip(genotypes, weights)]
        if name == "nodes" and cfg.form == "cells":   # a cell brings its own nodes
            skeleton[name] = tuple(sorted({v for v, _ in seen}))
            continue
        skeleton[name], ws = skeleton_values(cfg.skeleton, getattr(cfg, name), seen, cfg.skeleton_smoothing)
        if ws is not None:
            skeleton_weights[name] = ws
    return SearchSpace(kind=kind, op_weights=op_weights, provenance=provenance, notes=notes, form=cfg.form,
                       mutation=smoothing if cfg.form == "cells" else 0.0, skeleton_weights=skeleton_weights,
                       **skeleton)
