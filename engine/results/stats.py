"""Statistics for the result table: per-arm summaries over repeats and paired comparisons against a reference arm.

numpy and scipy.stats (no torch; scipy is imported on first use, it takes seconds to import on a loaded machine and
the UI imports this module at start). Inputs are plain arrays:
- per-seed values of one arm (test error %, params, cost) for mean ± std and a t-interval over seeds
  (`scipy.stats.t`), clipped to the quantity's range (an error rate lies in [0, 100]);
- per-sample correctness matrices [seeds, test samples] (bool) for a bootstrap over test samples and seeds, and for
  the paired comparison of an arm with the reference arm on the same seeds and the same test samples.

The verdict of a paired comparison is "distinguishable" only when both tests agree at level α: the pooled exact
McNemar test (discordant counts summed over seeds; `scipy.stats.binomtest`) has p < α AND the paired bootstrap's
1 − α interval of the error difference excludes 0. Summing discordant counts over seeds treats the seeds' pairs as
independent; they share the test samples, so the pooled p-value is optimistic when the same samples fail under every
seed. The paired bootstrap, which resamples test samples (shared across seeds) and seeds together, does not assume
this, hence both are required. That two-way resampling is written here: `scipy.stats.bootstrap` resamples
observations along one axis only, which is this bootstrap's one-seed case but not its crossed seeds × samples one.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "Summary", "PairedComparison", "summarize", "bootstrap_error_interval", "mcnemar_exact", "compare_paired",
    "compare_seed_errors", "DISTINGUISHABLE", "NOT_DISTINGUISHABLE", "ERROR_RANGE",
]

DISTINGUISHABLE = "distinguishable"
NOT_DISTINGUISHABLE = "not distinguishable"
DEFAULT_BOOTSTRAP = 2000
ERROR_RANGE = (0.0, 100.0)     # percent


# -- per-arm summaries ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Summary:
    """mean ± std over n repeats and a t-interval of the mean (NaN where n < 2)."""

    n: int
    mean: float
    std: float
    lo: float
    hi: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(values, level: float = 0.95, bounds: tuple[float, float] = (-math.inf, math.inf)) -> Summary:
    """mean ± sample std and the t-interval of the mean, clipped to `bounds` (the range the quantity can take)."""
    from scipy import stats

    v = np.asarray(values, dtype=float).ravel()
    if v.size == 0:
        raise ValueError("summarize needs at least one value")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"summarize got non-finite values: {v.tolist()}")
    mean = float(v.mean())
    if v.size < 2:
        return Summary(1, mean, float("nan"), float("nan"), float("nan"))
    std = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, v.size - 1)) * std / math.sqrt(v.size)
    lo, hi = bounds
    return Summary(int(v.size), mean, std, max(lo, mean - half), min(hi, mean + half))


def _as_matrix(correct, name: str = "correct") -> np.ndarray:
    m = np.asarray(correct)
    if m.ndim == 1:
        m = m[None, :]
    if m.ndim != 2 or m.shape[1] == 0:
        raise ValueError(f"{name} must be [seeds, test samples] with at least one sample, got shape {m.shape}")
    return m.astype(bool)


def _bootstrap_means(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Means of `values` [S, N] under resampling of seeds (rows) and, shared by every seed, test samples (columns)."""
    s, n = values.shape
    out = np.empty(n_boot)
    for b in range(n_boot):
        ws = np.bincount(rng.integers(0, s, s), minlength=s).astype(float)
        wn = np.bincount(rng.integers(0, n, n), minlength=n).astype(float)
        out[b] = ws @ values @ wn / (s * n)
    return out


def bootstrap_error_interval(correct, level: float = 0.95, n_boot: int = DEFAULT_BOOTSTRAP,
                             seed: int = 0) -> tuple[float, float]:
    """Percentile interval of the test error (percent) over test samples × seeds."""
    wrong = (~_as_matrix(correct)).astype(float)
    draws = 100.0 * _bootstrap_means(wrong, n_boot, np.random.default_rng(seed))
    q = (1 - level) / 2
    return float(np.quantile(draws, q)), float(np.quantile(draws, 1 - q))


# -- paired comparisons -----------------------------------------------------------------------------------------------
def mcnemar_exact(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value from the discordant counts b (only the reference right) and c (only the arm
    right): the binomial test of b against Binomial(b + c, 1/2)."""
    from scipy import stats

    n = int(b) + int(c)
    if n == 0:
        return 1.0
    return float(stats.binomtest(int(b), n, 0.5).pvalue)


@dataclass(frozen=True)
class PairedComparison:
    """arm − reference test error, in percentage points, with its interval, p-values and verdict."""

    arm: str
    reference: str
    method: str                 # "mcnemar+bootstrap" (per-sample) or "paired t over seeds" (per-seed errors only)
    seeds: tuple[int, ...]
    n_test: int | None
    diff: float                 # percentage points; > 0: the arm has the larger error
    lo: float
    hi: float
    p_value: float              # the pooled McNemar p (or the paired t p)
    p_bootstrap: float | None = None
    discordant: tuple[int, int] | None = None   # (only reference right, only arm right), summed over seeds
    per_seed_p: tuple[float, ...] = ()
    alpha: float = 0.05
    verdict: str = NOT_DISTINGUISHABLE
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["seeds"], d["per_seed_p"] = list(self.seeds), list(self.per_seed_p)
        d["discordant"] = None if self.discordant is None else list(self.discordant)
        return d


def _aligned(arm_correct: dict[int, Any], ref_correct: dict[int, Any], arm: str, reference: str):
    seeds = sorted(set(arm_correct) & set(ref_correct))
    if not seeds:
        raise ValueError(f"arm {arm!r} and reference {reference!r} share no seed "
                         f"({sorted(arm_correct)} vs {sorted(ref_correct)}): a paired comparison needs the same seeds")
    a_rows = [np.asarray(arm_correct[s], dtype=bool).ravel() for s in seeds]
    r_rows = [np.asarray(ref_correct[s], dtype=bool).ravel() for s in seeds]
    lengths = {len(row) for row in a_rows + r_rows}
    if len(lengths) != 1 or 0 in lengths:
        raise ValueError(f"arm {arm!r} and reference {reference!r}: per-sample results have lengths "
                         f"{sorted(lengths)}; a paired comparison needs the same (non-empty) test samples")
    return seeds, np.stack(a_rows), np.stack(r_rows)


def compare_paired(arm: str, arm_correct: dict[int, Any], reference: str, ref_correct: dict[int, Any], *,
                   alpha: float = 0.05, n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0) -> PairedComparison:
    """Paired comparison on per-sample correctness, {seed: bool[n_test]} for both arms (same test samples, in the
    same order). Pairs only the seeds both arms ran."""
    seeds, a, r = _aligned(arm_correct, ref_correct, arm, reference)
    notes = []
    missing = sorted(set(arm_correct) ^ set(ref_correct))
    if missing:
        notes.append(f"seeds {missing} ran in only one of the two arms and are not compared")
    diff_mat = (~a).astype(float) - (~r).astype(float)           # +1: only the arm wrong; −1: only the reference
    diff = 100.0 * float(diff_mat.mean())
    draws = 100.0 * _bootstrap_means(diff_mat, n_boot, np.random.default_rng(seed))
    q = alpha / 2
    lo, hi = float(np.quantile(draws, q)), float(np.quantile(draws, 1 - q))
    p_boot = float(min(1.0, 2.0 * min((draws <= 0).mean(), (draws >= 0).mean())))
    b_s = ((~a) & r).sum(1)                                       # reference right, arm wrong
    c_s = (a & ~r).sum(1)                                         # arm right, reference wrong
    per_seed = tuple(mcnemar_exact(int(b), int(c)) for b, c in zip(b_s, c_s))
    b, c = int(b_s.sum()), int(c_s.sum())
    p = mcnemar_exact(b, c)
    excludes_zero = lo > 0 or hi < 0
    verdict = DISTINGUISHABLE if (p < alpha and excludes_zero) else NOT_DISTINGUISHABLE
    return PairedComparison(arm=arm, reference=reference, method="mcnemar+bootstrap", seeds=tuple(seeds),
                            n_test=int(a.shape[1]), diff=diff, lo=lo, hi=hi, p_value=p, p_bootstrap=p_boot,
                            discordant=(b, c), per_seed_p=per_seed, alpha=alpha, verdict=verdict, notes=notes)


def compare_seed_errors(arm: str, arm_errors: dict[int, float], reference: str, ref_errors: dict[int, float], *,
                        alpha: float = 0.05) -> PairedComparison:
    """Fallback without per-sample results: a paired t-test on the per-seed test errors (percent). Needs 2 seeds;
    with fewer the comparison is reported as not distinguishable, with a note saying why."""
    seeds = sorted(set(arm_errors) & set(ref_errors))
    if not seeds:
        raise ValueError(f"arm {arm!r} and reference {reference!r} share no seed: a paired comparison needs the "
                         f"same seeds")
    d = np.array([float(arm_errors[s]) - float(ref_errors[s]) for s in seeds])
    diff = float(d.mean())
    if len(d) < 2:
        return PairedComparison(arm=arm, reference=reference, method="paired t over seeds", seeds=tuple(seeds),
                                n_test=None, diff=diff, lo=float("nan"), hi=float("nan"), p_value=float("nan"),
                                alpha=alpha, notes=["one seed and no per-sample results: no test possible"])
    if float(d.std(ddof=1)) == 0:   # every seed moved by the same amount: no spread for a t statistic
        p = 1.0 if diff == 0 else 0.0
        lo = hi = diff
    else:
        from scipy import stats

        test = stats.ttest_1samp(d, 0.0)
        p = float(test.pvalue)
        ci = test.confidence_interval(1 - alpha)
        lo, hi = float(ci.low), float(ci.high)
    verdict = DISTINGUISHABLE if p < alpha else NOT_DISTINGUISHABLE
    return PairedComparison(arm=arm, reference=reference, method="paired t over seeds", seeds=tuple(seeds),
                            n_test=None, diff=diff, lo=lo, hi=hi, p_value=p, alpha=alpha, verdict=verdict)
