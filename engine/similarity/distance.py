"""Fisher task distance (METHOD.md section 3a).

    d(b, t) = (1/√2) · ‖ √F̂(b, t) − √F̂(t, t) ‖₂ ∈ [0, 1]

where F̂ is a diagonal Fisher normalised to unit sum: the Hellinger distance between the two normalised diagonals.
F(b, t) is the Fisher of b's probe on t's samples, F(t, t) that of t's own probe on the same samples, so
d(b, t) ≠ d(t, b) in general, and d(t, t) = 0.
"""
from __future__ import annotations

import math

import numpy as np
import torch


def _as_array(f, name: str) -> np.ndarray:
    if isinstance(f, torch.Tensor):
        f = f.detach().cpu().numpy()
    a = np.asarray(f, dtype=np.float64).reshape(-1)
    if a.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} has non-finite entries")
    if np.any(a < 0):
        raise ValueError(f"{name} has negative entries: not a diagonal Fisher")
    total = a.sum()
    if total <= 0:
        raise ValueError(f"{name} sums to zero: the network's log-likelihood has no gradient on these samples")
    return a / total


def fisher_distance(f_bt, f_tt) -> float:
    """Distance between a base network's Fisher F(b, t) and the target's own F(t, t) on the same samples."""
    p, q = _as_array(f_bt, "F(b, t)"), _as_array(f_tt, "F(t, t)")
    if p.shape != q.shape:
        raise ValueError(f"Fisher vectors differ in length ({p.size} vs {q.size}): the probes' architectures differ")
    d = math.sqrt(0.5) * float(np.linalg.norm(np.sqrt(p) - np.sqrt(q)))
    return min(max(d, 0.0), 1.0)


def per_layer_unit_trace(f, layout: list[tuple[str, int]]):
    """Each layer's block (a module's parameters, e.g. one conv or one batch-norm) scaled to sum 1 / #layers.

    With one unit trace over all parameters the largest layers dominate the distance; this gives every layer an
    equal say (`[dictionary] fisher_norm = "layer"`, docs/SIMILARITY.md). Returns a float64 numpy vector summing to
    1 over the layers that carry any Fisher mass."""
    a = np.asarray(f.detach().cpu().numpy() if isinstance(f, torch.Tensor) else f, dtype=np.float64).reshape(-1)
    if sum(n for _, n in layout) != a.size:
        raise ValueError(f"Fisher vector has {a.size} entries, the layout {sum(n for _, n in layout)}")
    blocks: list[list[int]] = []
    modules: list[str] = []
    start = 0
    for name, n in layout:
        module = name.rsplit(".", 1)[0]
        if modules and modules[-1] == module:
            blocks[-1][1] = start + n
        else:
            modules.append(module)
            blocks.append([start, start + n])
        start += n
    out = np.zeros_like(a)
    live = [(s, e) for s, e in blocks if a[s:e].sum() > 0]
    for s, e in live:
        out[s:e] = a[s:e] / a[s:e].sum() / len(live)
    return out


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1) over seeds; std 0 for a single seed."""
    if not values:
        raise ValueError("no values")
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0
