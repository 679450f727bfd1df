"""The premise check's statistics: does a dictionary task's distance to the target predict how well its genotype
does on the target?

Given, for each checked task b, its distance d(b, t) and the target val errors of b's genotype over seeds:
- Kendall τ-b and Spearman ρ between d and the mean error (positive: nearer tasks' genotypes err less), and the
  weighted τ of the transferability literature (nearest ranks weigh most);
- a one-sided permutation p-value for τ (errors permuted over tasks; exact up to 8 tasks, sampled beyond);
- near minus far: per seed, the mean error of the k nearest tasks' genotypes minus that of the k farthest, with a
  paired t interval over seeds (negative: the nearest tasks' genotypes are better).
`supported` is the rule the CLI's exit code follows: τ > 0 and p < 0.05.
"""
from __future__ import annotations

import itertools
import math
import warnings
from typing import Any, Sequence

import numpy as np

EXACT_UP_TO = 8           # 8! = 40,320 orderings: enumerated; beyond, sampled
SAMPLED_PERMUTATIONS = 20_000
ALPHA = 0.05


def _concordance(d: np.ndarray, errors: np.ndarray) -> np.ndarray:
    """S = Σ_{i<j} sign(d_i - d_j) sign(e_i - e_j) per row of `errors` ([m, n]); τ-b is S over a normaliser that
    only depends on the tie counts, which a permutation keeps, so S orders permutations as τ-b does."""
    i, j = np.triu_indices(len(d), 1)
    return np.sign(errors[:, i] - errors[:, j]) @ np.sign(d[i] - d[j])


def permutation_p(d: Sequence[float], errors: Sequence[float], seed: int = 0) -> tuple[float, str]:
    """One-sided p of τ(d, errors) >= the observed one under permuted errors, and "exact" or "sampled"."""
    d, e = np.asarray(d, float), np.asarray(errors, float)
    observed = _concordance(d, e[None, :])[0]
    n = len(e)
    if n <= EXACT_UP_TO:
        perms = np.array(list(itertools.permutations(range(n))))
        s = _concordance(d, e[perms])
        return float(np.mean(s >= observed - 1e-9)), "exact"
    rng = np.random.default_rng(seed)
    perms = np.argsort(rng.random((SAMPLED_PERMUTATIONS, n)), axis=1)
    s = _concordance(d, e[perms])
    return float((1 + np.sum(s >= observed - 1e-9)) / (1 + SAMPLED_PERMUTATIONS)), "sampled"


def _nan_to_none(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def near_minus_far(errors: np.ndarray, near: Sequence[int], far: Sequence[int]) -> dict[str, Any]:
    """`errors` [tasks, seeds]; the per-seed difference of the near and far groups' mean errors, with a paired t
    interval over seeds (None with one seed)."""
    from scipy import stats

    per_seed = errors[list(near)].mean(0) - errors[list(far)].mean(0)
    n = len(per_seed)
    mean = float(per_seed.mean())
    lo = hi = None
    if n >= 2:
        sd = float(per_seed.std(ddof=1))
        half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
        lo, hi = mean - half, mean + half
    return {"mean": mean, "low": lo, "high": hi, "per_seed": per_seed.tolist(), "seeds": n}


def premise_stats(distances: Sequence[float], errors: np.ndarray, near: Sequence[int], far: Sequence[int],
                  seed: int = 0) -> dict[str, Any]:
    """The statistics above for tasks with `distances` [n] and val `errors` [n, seeds] (percent)."""
    from scipy import stats

    d = np.asarray(distances, float)
    errors = np.asarray(errors, float)
    mean = errors.mean(1)
    with warnings.catch_warnings():   # tied errors: the coefficients are NaN, reported as undefined below
        warnings.simplefilter("ignore")
        tau = stats.kendalltau(d, mean).statistic
        rho = stats.spearmanr(d, mean).statistic
        weighted = stats.weightedtau(-d, -mean).statistic   # both descending: nearest and best rank first
    p, kind = permutation_p(d, mean, seed)
    tau = _nan_to_none(tau)   # NaN when every error (or distance) is tied: no evidence either way
    return {
        "tasks": len(d), "kendall_tau": tau, "spearman": _nan_to_none(rho), "weighted_tau": _nan_to_none(weighted),
        "p": p, "p_kind": kind, "near_minus_far": near_minus_far(errors, near, far),
        "supported": bool(tau is not None and tau > 0 and p < ALPHA),
    }


def verdict(stats: dict[str, Any]) -> str:
    """One sentence a user reads under the table."""
    tau, p = stats["kendall_tau"], stats["p"]
    shown = "undefined (all errors tied)" if tau is None else f"{tau:+.2f}"
    if stats["supported"]:
        return f"supported: nearer tasks' genotypes err less on the target (Kendall τ {shown}, p = {p:.3g})"
    why = "τ is not above 0" if tau is None or tau <= 0 else f"p = {p:.3g} is not below {ALPHA}"
    return f"not supported: the distance does not predict which genotypes do well here (τ {shown}; {why})"
