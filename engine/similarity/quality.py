"""Is a task-distance matrix signal? The quality measures of METHOD.md section 3d, as pure numpy functions.

Convention: `d[q, c]` is the distance seen by query task q to candidate task c, so a task's nearest list is its row.
The store keeps `value[i, j] = d(b_i, t_j)` with the nearest tasks of t in column j: pass `value.T`.
Groups are any hashable labels per task (the data source unless the user names groups).

- hit rate: per query, is the nearest other task in the same group? Queries whose group has no other member are
  skipped (they cannot hit).
- contrast: (mean cross-group − mean same-group off-diagonal distance) / pooled within-set standard deviation
  (Cohen's d of the two sets of off-diagonal entries), with a one-sided permutation p-value (group labels permuted).
- seed stability: Pearson r between matrices of different seeds over off-diagonal entries, the fraction of queries
  whose nearest task is the same under every seed, and per-cell mean ± std.
- noise floor: distances between two probes of the same task that differ only in what the method should ignore,
  compared with the smallest between-group distance.
- ties: neighbours closer to each other than one standard deviation are "tied within noise".
"""
from __future__ import annotations

from dataclasses import dataclass
import math
from itertools import combinations
from typing import Hashable, Sequence

import numpy as np


def _square(d, name: str = "distance matrix") -> np.ndarray:
    a = np.asarray(d, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"{name} must be square, got shape {a.shape}")
    if a.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 tasks, got {a.shape[0]}")
    off = ~np.eye(len(a), dtype=bool)
    if not np.all(np.isfinite(a[off])):
        raise ValueError(f"{name} has missing (NaN) or infinite off-diagonal entries")
    return a


def _groups(groups: Sequence[Hashable], n: int) -> np.ndarray:
    g = list(groups)
    if len(g) != n:
        raise ValueError(f"{len(g)} group labels for {n} tasks")
    _, codes = np.unique(np.asarray([str(x) for x in g]), return_inverse=True)
    return codes


def _nearest(d: np.ndarray) -> np.ndarray:
    masked = d.copy()
    np.fill_diagonal(masked, np.inf)
    return np.argmin(masked, axis=1)


def hit_rate(d, groups: Sequence[Hashable]) -> tuple[float, int, int]:
    """(hits / counted, hits, counted): how often a query's nearest other task shares its group."""
    a = _square(d)
    g = _groups(groups, len(a))
    near = _nearest(a)
    counted = hits = 0
    for q in range(len(a)):
        if np.sum(g == g[q]) < 2:
            continue
        counted += 1
        hits += int(g[near[q]] == g[q])
    return (hits / counted if counted else float("nan")), hits, counted


def _same_mask(g: np.ndarray) -> np.ndarray:
    return g[:, None] == g[None, :]


def _contrast(a: np.ndarray, off: np.ndarray, g: np.ndarray) -> float:
    same = _same_mask(g) & off
    cross = ~_same_mask(g) & off
    s, c = a[same], a[cross]
    if s.size < 2 or c.size < 2:
        return float("nan")
    pooled = np.sqrt(((s.size - 1) * s.var(ddof=1) + (c.size - 1) * c.var(ddof=1)) / (s.size + c.size - 2))
    diff = c.mean() - s.mean()
    if pooled == 0:
        return float("inf") if diff > 0 else (float("-inf") if diff < 0 else 0.0)
    return float(diff / pooled)


@dataclass(frozen=True)
class Contrast:
    contrast: float
    p_value: float
    same_mean: float
    cross_mean: float
    permutations: int
    exact: bool = False           # every distinct relabelling enumerated (when there are at most `permutations`)


def contrast(d, groups: Sequence[Hashable], permutations: int = 2000, seed: int = 0) -> Contrast:
    """Cross − same mean off-diagonal distance in pooled standard deviations, with a permutation p-value.

    The p-value is one-sided (is same-group closer than chance?). When the distinct relabellings of the tasks number
    at most `permutations` (two groups of five: 252) it is exact, #{relabellings ≥ observed} / #relabellings;
    otherwise (1 + #{permuted ≥ observed}) / (1 + N) over N random permutations from a generator fixed by `seed`.
    """
    a = _square(d)
    g = _groups(groups, len(a))
    if len(np.unique(g)) < 2:
        raise ValueError("contrast needs at least two groups")
    if not np.any(_same_mask(g) & ~np.eye(len(a), dtype=bool)):
        raise ValueError("contrast needs a group with at least two tasks")
    if permutations < 1:
        raise ValueError(f"permutations must be at least 1, got {permutations}")
    off = ~np.eye(len(a), dtype=bool)
    observed = _contrast(a, off, g)
    same = _same_mask(g) & off
    stats = dict(same_mean=float(a[same].mean()), cross_mean=float(a[~_same_mask(g) & off].mean()))
    if _labelings(g) <= permutations:     # few enough to enumerate: the exact p-value, no Monte Carlo floor
        values = [_contrast(a, off, h) for h in _distinct_relabelings(g)]
        exceed = sum(v >= observed - 1e-12 for v in values)
        return Contrast(observed, exceed / len(values), permutations=len(values), exact=True, **stats)
    rng = np.random.default_rng(seed)
    exceed = 0
    for _ in range(permutations):
        if _contrast(a, off, rng.permutation(g)) >= observed:
            exceed += 1
    return Contrast(observed, (1 + exceed) / (1 + permutations), permutations=permutations, **stats)


def _labelings(g: np.ndarray) -> int:
    """How many distinct ways the group labels can be assigned to the tasks (a multinomial coefficient)."""
    _, counts = np.unique(g, return_counts=True)
    total, left = 1, len(g)
    for c in counts:
        total *= math.comb(left, int(c))
        left -= int(c)
    return total


def _distinct_relabelings(g: np.ndarray):
    """Every distinct assignment of g's labels (with their counts) to positions, the observed one included."""
    labels, counts = np.unique(g, return_counts=True)

    def place(free: tuple[int, ...], k: int, out: np.ndarray):
        if k == len(labels) - 1:
            out[list(free)] = k
            yield labels[out]
            return
        for chosen in combinations(free, int(counts[k])):
            out[list(chosen)] = k
            rest = tuple(i for i in free if i not in chosen)
            yield from place(rest, k + 1, out)

    yield from place(tuple(range(len(g))), 0, np.zeros(len(g), dtype=int))


@dataclass(frozen=True)
class SeedStability:
    r_mean: float
    r_pairs: tuple[float, ...]
    nearest_unchanged: float          # fraction of queries whose nearest task is the same under every seed
    mean: np.ndarray                  # per-cell mean over seeds
    std: np.ndarray                   # per-cell sample std (ddof=1)


def seed_stability(matrices: Sequence) -> SeedStability:
    """Agreement between matrices of the same tasks built under different global seeds (at least two)."""
    mats = [_square(m, f"matrix of seed {i}") for i, m in enumerate(matrices)]
    if len(mats) < 2:
        raise ValueError("seed stability needs matrices of at least two seeds")
    if len({m.shape for m in mats}) != 1:
        raise ValueError("the seeds' matrices differ in shape")
    off = ~np.eye(len(mats[0]), dtype=bool)
    rs = []
    for a, b in combinations(mats, 2):
        x, y = a[off], b[off]
        if x.std() == 0 or y.std() == 0:
            rs.append(float("nan"))
        else:
            rs.append(float(np.corrcoef(x, y)[0, 1]))
    nears = np.stack([_nearest(m) for m in mats])
    unchanged = float(np.mean(np.all(nears == nears[0], axis=0)))
    stack = np.stack(mats)
    return SeedStability(float(np.nanmean(rs)) if not all(np.isnan(rs)) else float("nan"), tuple(rs), unchanged,
                         stack.mean(0), stack.std(0, ddof=1))


@dataclass(frozen=True)
class NoiseFloor:
    floor_mean: float
    floor_max: float
    min_between: float                # smallest cross-group off-diagonal distance
    between_above_floor: float        # fraction of cross-group entries above floor_max
    below: bool                       # floor_max < min_between: every between-group distance exceeds the noise


def noise_floor(floor_distances, d, groups: Sequence[Hashable]) -> NoiseFloor:
    """Compares same-task distances (`floor_distances`, e.g. two probes differing in data order) with `d`."""
    f = np.asarray(floor_distances, dtype=np.float64).reshape(-1)
    if f.size == 0 or not np.all(np.isfinite(f)):
        raise ValueError("noise floor needs at least one finite same-task distance")
    a = _square(d)
    g = _groups(groups, len(a))
    cross = a[~_same_mask(g)]
    if cross.size == 0:
        raise ValueError("noise floor needs at least two groups")
    return NoiseFloor(float(f.mean()), float(f.max()), float(cross.min()), float(np.mean(cross > f.max())),
                      bool(f.max() < cross.min()))


@dataclass(frozen=True)
class Neighbour:
    index: int
    distance: float
    std: float
    tied: bool                        # within one std of the neighbour ranked just before it


def nearest_with_ties(distances, stds=None, *, noise: float | None = None, k: int | None = None,
                      exclude: int | None = None) -> list[Neighbour]:
    """A query's candidates sorted by distance; a neighbour is tied when it lies within one standard deviation of the
    one ranked before it. The spread is max(std of the two cells) when `stds` is given, else the scalar `noise`."""
    dist = np.asarray(distances, dtype=np.float64).reshape(-1)
    sd = np.zeros_like(dist) if stds is None else np.asarray(stds, dtype=np.float64).reshape(-1)
    if sd.shape != dist.shape:
        raise ValueError(f"{sd.size} stds for {dist.size} distances")
    if stds is None and noise is None:
        raise ValueError("tie marking needs per-cell stds or a scalar noise level")
    order = [int(i) for i in np.argsort(dist, kind="stable") if i != exclude and np.isfinite(dist[i])]
    if k is not None:
        order = order[:k]
    out: list[Neighbour] = []
    for rank, i in enumerate(order):
        tied = False
        if rank:
            prev = order[rank - 1]
            spread = max(sd[i], sd[prev]) if noise is None else max(noise, sd[i], sd[prev])
            tied = bool(dist[i] - dist[prev] < spread)
        out.append(Neighbour(i, float(dist[i]), float(sd[i]), tied))
    return out


def summary(d, groups: Sequence[Hashable], permutations: int = 2000, seed: int = 0) -> dict:
    """Hit rate and contrast of one matrix as a JSON-able dict."""
    rate, hits, counted = hit_rate(d, groups)
    c = contrast(d, groups, permutations, seed)
    return {"hit_rate": rate, "hits": hits, "counted": counted, "contrast": c.contrast, "p_value": c.p_value,
            "same_mean": c.same_mean, "cross_mean": c.cross_mean}
