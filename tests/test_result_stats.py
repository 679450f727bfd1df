"""Result statistics on planted differences: a real difference is detected, identical or tiny ones are not."""
from __future__ import annotations

import math

import numpy as np
import pytest

from engine.results.stats import (
    DISTINGUISHABLE, ERROR_RANGE, NOT_DISTINGUISHABLE, bootstrap_error_interval, compare_paired, compare_seed_errors,
    mcnemar_exact, summarize,
)


def _correct(n: int, error: float, seed: int) -> np.ndarray:
    """Exactly round(error * n) wrong samples at random positions."""
    rng = np.random.default_rng(seed)
    c = np.ones(n, dtype=bool)
    c[rng.choice(n, int(round(error * n)), replace=False)] = False
    return c


@pytest.mark.parametrize("df,expected", [(1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (30, 2.042)])
def test_t_intervals_use_the_published_quantiles(df, expected):
    values = np.arange(df + 1, dtype=float)
    s = summarize(values)
    assert (s.hi - s.mean) * math.sqrt(df + 1) / s.std == pytest.approx(expected, abs=1e-3)
    # a paired shift of exactly that many standard errors over df + 1 seeds has p = 0.05
    d = values - values.mean()
    shift = expected * d.std(ddof=1) / math.sqrt(df + 1)
    cmp = compare_seed_errors("a", dict(enumerate(d + shift)), "ref", dict(enumerate(np.zeros(df + 1))))
    assert cmp.p_value == pytest.approx(0.05, abs=1e-4)


def test_an_error_rates_interval_stays_within_0_and_100():
    low = summarize([0.0, 0.0, 2.4, 0.0, 4.8], bounds=ERROR_RANGE)
    assert low.lo == 0.0 and low.hi > low.mean > 0
    high = summarize([100.0, 97.0, 100.0], bounds=ERROR_RANGE)
    assert high.hi == 100.0 and high.lo < high.mean
    free = summarize([0.0, 0.0, 2.4, 0.0, 4.8])
    assert free.lo < 0 and free.hi == low.hi


def test_summary_mean_std_and_t_interval():
    s = summarize([1.0, 2.0, 3.0, 4.0])
    assert s.n == 4 and s.mean == 2.5 and s.std == pytest.approx(math.sqrt(5 / 3))
    half = 3.182446 * math.sqrt(5 / 3) / 2
    assert (s.lo, s.hi) == (pytest.approx(2.5 - half, abs=1e-5), pytest.approx(2.5 + half, abs=1e-5))
    one = summarize([7.0])
    assert one.mean == 7.0 and math.isnan(one.std) and math.isnan(one.lo)
    with pytest.raises(ValueError, match="non-finite"):
        summarize([1.0, float("nan")])


def test_mcnemar_exact_by_hand():
    # 2 * P(X <= 2), X ~ Bin(12, 1/2) = 2 * (1 + 12 + 66) / 4096
    assert mcnemar_exact(10, 2) == pytest.approx(2 * 79 / 4096)
    assert mcnemar_exact(2, 10) == mcnemar_exact(10, 2)
    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(5, 5) == 1.0
    assert 0 < mcnemar_exact(2000, 2300) < 0.01    # large counts stay finite (log space)


def test_bootstrap_interval_covers_the_planted_error():
    correct = np.stack([_correct(500, 0.10, s) for s in range(3)])
    lo, hi = bootstrap_error_interval(correct, n_boot=500)
    assert lo < 10.0 < hi and hi - lo < 8


def test_real_difference_is_detected():
    ref = {s: _correct(400, 0.05, s) for s in range(3)}
    arm = {s: _correct(400, 0.15, 100 + s) for s in range(3)}
    cmp = compare_paired("standard", arm, "task-aware", ref, n_boot=500)
    assert cmp.verdict == DISTINGUISHABLE
    assert cmp.diff == pytest.approx(10.0) and cmp.lo > 0 and cmp.hi > cmp.diff
    assert cmp.p_value < 1e-6 and cmp.p_bootstrap < 0.05
    b, c = cmp.discordant
    assert b > c and len(cmp.per_seed_p) == 3 and cmp.seeds == (0, 1, 2) and cmp.n_test == 400


def test_identical_arms_are_not_distinguishable():
    ref = {s: _correct(400, 0.10, s) for s in range(3)}
    cmp = compare_paired("same", {s: v.copy() for s, v in ref.items()}, "ref", ref, n_boot=300)
    assert cmp.verdict == NOT_DISTINGUISHABLE
    assert cmp.diff == 0 and cmp.p_value == 1.0 and cmp.discordant == (0, 0) and cmp.lo == cmp.hi == 0


def test_same_error_rate_with_different_mistakes_is_not_distinguishable():
    ref = {s: _correct(400, 0.10, s) for s in range(3)}
    arm = {s: _correct(400, 0.10, 50 + s) for s in range(3)}
    cmp = compare_paired("other", arm, "ref", ref, n_boot=500)
    assert cmp.verdict == NOT_DISTINGUISHABLE and cmp.diff == 0 and cmp.lo < 0 < cmp.hi and cmp.p_value > 0.5


def test_tiny_difference_on_few_samples_is_not_distinguishable():
    # 110 test samples, one seed: the arm is wrong on two more samples (the default preset's old situation)
    ref = _correct(110, 0.05, 0)
    arm = ref.copy()
    arm[np.flatnonzero(ref)[:2]] = False
    cmp = compare_paired("random", {0: arm}, "task-aware", {0: ref}, n_boot=500)
    assert cmp.diff == pytest.approx(200 / 110)
    assert cmp.discordant == (2, 0) and cmp.p_value == 0.5
    assert cmp.verdict == NOT_DISTINGUISHABLE


def test_only_shared_seeds_are_paired_and_mismatches_are_named():
    ref = {0: _correct(50, 0.1, 0), 1: _correct(50, 0.1, 1)}
    cmp = compare_paired("a", {1: _correct(50, 0.1, 2), 2: _correct(50, 0.1, 3)}, "ref", ref, n_boot=100)
    assert cmp.seeds == (1,) and "seeds [0, 2]" in cmp.notes[0]
    with pytest.raises(ValueError, match="share no seed"):
        compare_paired("a", {5: ref[0]}, "ref", ref)
    with pytest.raises(ValueError, match="same .*test samples"):
        compare_paired("a", {0: ref[0][:40]}, "ref", ref)


def test_seed_error_fallback_detects_a_consistent_shift_and_refuses_to_judge_one_seed():
    ref = {s: e for s, e in enumerate([2.0, 2.5, 1.8, 2.2, 2.1])}
    worse = {s: e + 3.0 + 0.1 * s for s, e in ref.items()}
    cmp = compare_seed_errors("worse", worse, "ref", ref)
    assert cmp.verdict == DISTINGUISHABLE and cmp.p_value < 1e-3 and cmp.lo > 0
    same = compare_seed_errors("same", dict(ref), "ref", ref)
    assert same.verdict == NOT_DISTINGUISHABLE and same.p_value == 1.0
    single = compare_seed_errors("one", {0: 9.0}, "ref", {0: 1.0})
    assert single.verdict == NOT_DISTINGUISHABLE and math.isnan(single.p_value) and single.notes
