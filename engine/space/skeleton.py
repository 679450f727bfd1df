"""Skeleton values (channels, layers, nodes) of a space built from dictionary tasks, by rule.

For one skeleton field, `allowed` are the configured values and `seen` the neighbours' values with their weights
w_g (as the operations use them):

    span      the allowed values within [min, max] of the neighbours' values (the neighbours' own when none is);
              drawn uniformly. A target harder than its neighbours is capped at what they needed.
    floor     the allowed values >= the neighbours' smallest value (the neighbours' own when none is); uniformly.
    smoothed  every allowed value and every neighbour's value; the neighbours' values share 1 - s by their weights,
              the values no neighbour used share s equally (s = skeleton_smoothing), as `smoothing` does for the
              operations. With no unused value, the neighbours' values take it all.

A rule returns (values, weights): weights is None for a uniform draw, else one weight per value summing to 1.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Sequence

__all__ = ["skeleton_values"]


def skeleton_values(rule: str, allowed: Sequence[int], seen: Sequence[tuple[int, float]],
                    smoothing: float = 0.0) -> tuple[tuple[int, ...], tuple[float, ...] | None]:
    if not seen:
        raise ValueError("skeleton values need at least one neighbour's value")
    values = [v for v, _ in seen]
    lo, hi = min(values), max(values)
    if rule == "span":
        return tuple(sorted({v for v in allowed if lo <= v <= hi})) or tuple(sorted(set(values))), None
    if rule == "floor":
        return tuple(sorted({v for v in allowed if v >= lo})) or tuple(sorted(set(values))), None
    if rule != "smoothed":
        raise ValueError(f"unknown skeleton rule {rule!r}; use span, floor or smoothed")
    mass: dict[int, float] = defaultdict(float)
    for v, w in seen:
        mass[v] += w
    if sum(mass.values()) <= 0:          # every neighbour at weight 0: they count equally
        mass = defaultdict(float, {v: 1.0 for v in mass})
    unused = sorted(set(allowed) - set(mass))
    share = 1.0 - smoothing if unused and smoothing > 0 else 1.0
    total = sum(mass.values())
    weights = {v: share * m / total for v, m in mass.items()}
    if share < 1.0:
        weights.update({v: smoothing / len(unused) for v in unused})
    out = tuple(sorted(weights))
    return out, tuple(weights[v] for v in out)
