"""Quality measures of a task-distance matrix on tiny planted and shuffled group structures."""
from __future__ import annotations

import numpy as np
import pytest

from engine.similarity import quality as sq

GROUPS = ["a"] * 4 + ["b"] * 4 + ["c"] * 4


def planted(seed: int = 0, gap: float = 0.3, noise: float = 0.02) -> np.ndarray:
    """Same-group distances near 0.4, cross-group near 0.4 + gap, asymmetric noise, zero diagonal."""
    rng = np.random.default_rng(seed)
    g = np.asarray(GROUPS)
    d = np.where(g[:, None] == g[None, :], 0.4, 0.4 + gap) + rng.normal(0, noise, (len(g), len(g)))
    np.fill_diagonal(d, 0.0)
    return d


def shuffled(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    d = rng.uniform(0.3, 0.7, (len(GROUPS), len(GROUPS)))
    np.fill_diagonal(d, 0.0)
    return d


def test_planted_structure_is_detected():
    d = planted()
    rate, hits, counted = sq.hit_rate(d, GROUPS)
    assert (rate, hits, counted) == (1.0, 12, 12)
    c = sq.contrast(d, GROUPS, permutations=500)
    assert c.contrast > 5
    assert c.p_value < 0.01
    assert c.cross_mean > c.same_mean


def test_two_groups_of_five_get_the_exact_permutation_p_value():
    """252 distinct relabellings: a perfect split is beaten by none and tied only by its mirror image, p = 2/252
    (Monte Carlo over 1,000 random permutations could not go reliably below 0.01 here)."""
    g = ["x"] * 5 + ["y"] * 5
    d = np.where(np.equal.outer(g, g), 0.2, 0.6) + np.random.default_rng(0).normal(0, 0.01, (10, 10))
    np.fill_diagonal(d, 0.0)
    c = sq.contrast(d, g, permutations=1000)
    assert c.exact and c.permutations == 252 and c.p_value == pytest.approx(2 / 252)
    mc = sq.contrast(d, g, permutations=100)          # more relabellings than asked for: Monte Carlo as before
    assert not mc.exact and mc.p_value >= 1 / 101 > c.p_value
    rng = np.random.default_rng(1)
    noise = rng.uniform(0.3, 0.7, (10, 10))
    np.fill_diagonal(noise, 0.0)
    assert sq.contrast(noise, g, permutations=1000).p_value > 0.05


def test_shuffled_structure_is_not_detected():
    ps = [sq.contrast(shuffled(s), GROUPS, permutations=300, seed=s).p_value for s in range(5)]
    assert min(ps) > 0.01
    rates = [sq.hit_rate(shuffled(s), GROUPS)[0] for s in range(5)]
    assert np.mean(rates) < 0.7


def test_structure_under_shuffled_labels_is_not_detected():
    d = planted()
    labels = list(np.random.default_rng(3).permutation(GROUPS))
    assert labels != GROUPS
    assert sq.contrast(d, labels, permutations=300).p_value > 0.01


def test_singleton_groups_are_skipped_by_the_hit_rate():
    d = planted()
    groups = GROUPS[:-1] + ["alone"]
    rate, hits, counted = sq.hit_rate(d, groups)
    assert counted == 11
    assert rate == hits / counted


def test_rows_are_queries():
    d = np.array([[0, 0.1, 0.9, 0.9],
                  [0.9, 0, 0.1, 0.9],
                  [0.9, 0.9, 0, 0.1],
                  [0.1, 0.9, 0.9, 0]])
    # Row 0's nearest is task 1 (same group), row 1's is task 2 (other group), ...
    rate, hits, counted = sq.hit_rate(d, ["x", "x", "y", "y"])
    assert (hits, counted) == (2, 4)


def test_seed_stability_of_identical_and_of_unrelated_matrices():
    same = sq.seed_stability([planted(0), planted(1), planted(2)])
    assert same.r_mean > 0.9
    assert same.mean.shape == same.std.shape == (12, 12)
    np.testing.assert_allclose(same.mean, np.mean([planted(0), planted(1), planted(2)], axis=0))
    exact = sq.seed_stability([planted(0), planted(0)])
    assert exact.r_mean == pytest.approx(1.0)
    assert exact.nearest_unchanged == 1.0
    np.testing.assert_allclose(exact.std, 0.0)
    noise = sq.seed_stability([shuffled(0), shuffled(1), shuffled(2)])
    assert abs(noise.r_mean) < 0.3
    assert noise.nearest_unchanged < 0.5
    assert len(noise.r_pairs) == 3


def test_noise_floor_against_the_smallest_between_group_distance():
    d = planted()
    low = sq.noise_floor([0.05, 0.1], d, GROUPS)
    assert low.below and low.between_above_floor == 1.0
    assert low.min_between == pytest.approx(d[~np.equal.outer(GROUPS, GROUPS)].min())
    high = sq.noise_floor([0.05, 0.69], d, GROUPS)
    assert not high.below and 0.0 < high.between_above_floor < 1.0


def test_ties_within_noise():
    dist = [0.0, 0.50, 0.52, 0.70, 0.71]
    std = [0.0, 0.03, 0.03, 0.02, 0.005]
    out = sq.nearest_with_ties(dist, std, exclude=0)
    assert [n.index for n in out] == [1, 2, 3, 4]
    assert [n.tied for n in out] == [False, True, False, True]
    scalar = sq.nearest_with_ties(dist, noise=0.001, exclude=0, k=2)
    assert [(n.index, n.tied) for n in scalar] == [(1, False), (2, False)]
    with pytest.raises(ValueError, match="stds or a scalar noise"):
        sq.nearest_with_ties(dist)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((3, 2)), "square"),
    (np.array([[0, np.nan], [0.1, 0]]), "NaN"),
])
def test_bad_matrices_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        sq.hit_rate(bad, ["a"] * bad.shape[0])


def test_wrong_label_count_and_single_group_are_refused():
    with pytest.raises(ValueError, match="3 group labels for 12 tasks"):
        sq.hit_rate(planted(), ["a", "b", "c"])
    with pytest.raises(ValueError, match="two groups"):
        sq.contrast(planted(), ["a"] * 12)
    with pytest.raises(ValueError, match="at least two seeds"):
        sq.seed_stability([planted()])
