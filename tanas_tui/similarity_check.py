"""Does a stored distance matrix find related tasks? The `distances --check` report, from the store alone.

Per method: the nearest-same-group hit rate, the contrast (mean cross-group minus mean same-group distance in
pooled standard deviations) with a one-sided permutation p-value, with seeds >= 2 the per-cell std and how often a
task's nearest task is the same under every seed, and the noise floor when it has been measured (`--noise-floor`).
A task's group is its `group` (config first, then the stored task record), else its source.

The structure counts as detected when p < P_MAX, the contrast is > 0 and, where the noise floor was measured, its
largest same-task distance lies below the smallest between-group distance.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from engine.similarity import quality as sq

P_MAX = 0.05
THRESHOLDS = (f"detected when the permutation p < {P_MAX}, the contrast > 0 and, where measured, the noise floor "
              "(largest same-task distance) < the smallest between-group distance")


@dataclass
class MethodCheck:
    method: str
    tasks: int = 0
    groups: dict[str, int] = field(default_factory=dict)       # group -> number of tasks checked
    left_out: list[str] = field(default_factory=list)          # tasks with distances not computed yet
    hit_rate: float | None = None
    hits: int = 0
    counted: int = 0
    contrast: float | None = None
    p_value: float | None = None
    same_mean: float | None = None
    cross_mean: float | None = None
    seeds: int = 1
    std_mean: float | None = None                              # mean per-cell std over seeds (off-diagonal)
    seed_r: float | None = None
    nearest_unchanged: float | None = None
    noise_floor: dict[str, Any] | None = None                  # mean, max, min_between, below, kind
    detected: bool = False
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """One line, as the Distances panel shows it."""
        if self.hit_rate is None:
            return f"{self.method}: not checked ({self.reason})"
        parts = [f"{self.method}: nearest same group {self.hits}/{self.counted}",
                 f"contrast {self.contrast:.2f} (p {self.p_value:.3f})"]
        if self.nearest_unchanged is not None:
            parts.append(f"nearest unchanged over {self.seeds} seeds {self.nearest_unchanged:.0%}")
        if self.noise_floor:
            nf = self.noise_floor
            parts.append(f"noise floor {nf['max']:.3g} {'<' if nf['below'] else '≥'} {nf['min_between']:.3g}")
        else:
            parts.append("noise floor not measured")
        return ", ".join(parts) + (" — structure detected" if self.detected else f" — not detected ({self.reason})")


def task_groups(tasks: list[dict[str, Any]], cfg=None) -> dict[str, str]:
    """{task id: group}: the config's `group` for a task of the config, else the stored one, else the source."""
    configured = {}
    if cfg is not None:
        for t in cfg.all_tasks():
            configured[t.name] = t.group or t.source
    out = {}
    for t in tasks:
        name = t.get("name", t["id"])
        out[t["id"]] = configured.get(name) or t.get("group") or t.get("source") or "?"
    return out


def check_matrix(matrix, groups: dict[str, str], names: dict[str, str], *, permutations: int = 1000,
                 seed: int = 0) -> MethodCheck:
    """The quality report of one stored DistanceMatrix."""
    out = MethodCheck(matrix.method)
    n = len(matrix.ids)
    off = ~np.eye(n, dtype=bool)
    missing = np.isnan(matrix.value) & off
    keep = [i for i in range(n) if not (missing[i].any() or missing[:, i].any())]
    out.left_out = [names.get(matrix.ids[i], matrix.ids[i]) for i in range(n) if i not in keep]
    ids = [matrix.ids[i] for i in keep]
    labels = [groups.get(t, "?") for t in ids]
    out.tasks = len(ids)
    out.groups = {g: labels.count(g) for g in sorted(set(labels))}
    if len(ids) < 3:
        out.reason = f"{len(ids)} tasks with every distance computed; at least 3 are needed"
        return out
    if len(out.groups) < 2 or max(out.groups.values()) < 2:
        out.reason = "needs at least two groups and a group with two or more tasks"
        return out
    sub = np.ix_(keep, keep)
    d = np.asarray(matrix.value, dtype=np.float64)[sub].T      # rows = query tasks (the store keeps targets in columns)
    out.hit_rate, out.hits, out.counted = sq.hit_rate(d, labels)
    c = sq.contrast(d, labels, permutations=permutations, seed=seed)
    out.contrast, out.p_value, out.same_mean, out.cross_mean = c.contrast, c.p_value, c.same_mean, c.cross_mean
    out.seeds = int(matrix.params.get("seeds", 1) or 1)
    if out.seeds > 1:
        std = np.asarray(matrix.std, dtype=np.float64)[sub]
        out.std_mean = float(np.nanmean(std[~np.eye(len(ids), dtype=bool)]))
        seed_values = getattr(matrix, "seed_values", None)     # the UI's live matrix has neither
        if seed_values is not None and len(seed_values) >= 2:
            per_seed = [np.asarray(m, dtype=np.float64)[sub].T for m in seed_values]
            if all(np.isfinite(m[~np.eye(len(ids), dtype=bool)]).all() for m in per_seed):
                stab = sq.seed_stability(per_seed)
                out.seed_r, out.nearest_unchanged = stab.r_mean, stab.nearest_unchanged
    floor = (getattr(matrix, "noise_floor", None) or {}).get("distances", {})
    values = [v for t in ids for v in floor.get(t, [])]
    if values:
        nf = sq.noise_floor(values, d, labels)
        out.noise_floor = {"mean": nf.floor_mean, "max": nf.floor_max, "min_between": nf.min_between,
                           "below": nf.below, "tasks": sum(1 for t in ids if floor.get(t)),
                           "kind": matrix.noise_floor.get("kind", "")}
    reasons = []
    if not out.p_value < P_MAX:
        reasons.append(f"p {out.p_value:.3f} ≥ {P_MAX}")
    if not out.contrast > 0:
        reasons.append(f"contrast {out.contrast:.2f} ≤ 0")
    if out.noise_floor and not out.noise_floor["below"]:
        reasons.append("noise floor not below the smallest between-group distance")
    out.detected = not reasons
    out.reason = "; ".join(reasons)
    return out


def noise_level(matrix) -> tuple[str, float | None]:
    """For tie marking without seeds: ("noise floor", mean same-task distance) when measured, else ("", None)."""
    floor = (matrix.noise_floor or {}).get("distances", {})
    values = [v for vs in floor.values() for v in vs]
    if not values:
        return "", None
    return "noise floor", float(np.mean(values))
