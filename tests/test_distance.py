"""Fisher task distance: range, identity, asymmetry, invariances."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.similarity.distance import fisher_distance, mean_std


def _rand(n=50, seed=0):
    return np.random.default_rng(seed).random(n) ** 3


def test_zero_on_self_and_scale_invariant():
    f = _rand()
    assert fisher_distance(f, f) == 0.0
    assert fisher_distance(f, 7.5 * f) == pytest.approx(0.0, abs=1e-12)


def test_range_and_disjoint_support_is_one():
    a = np.array([1.0, 2.0, 0.0, 0.0])
    b = np.array([0.0, 0.0, 3.0, 1.0])
    assert fisher_distance(a, b) == pytest.approx(1.0)
    for s in range(20):
        d = fisher_distance(_rand(seed=s), _rand(seed=100 + s))
        assert 0.0 < d < 1.0


def test_matches_formula():
    p, q = _rand(seed=1), _rand(seed=2)
    expected = math.sqrt(0.5) * np.linalg.norm(np.sqrt(p / p.sum()) - np.sqrt(q / q.sum()))
    assert fisher_distance(p, q) == pytest.approx(expected, rel=1e-12)
    assert fisher_distance(torch.tensor(p, dtype=torch.float32), q) == pytest.approx(expected, rel=1e-6)


def test_triangle_inequality_and_monotone_in_mixing():
    # Hellinger on normalised diagonals is a metric on the simplex; the asymmetry of d(b, t) comes from
    # evaluating on t's samples, not from this function.
    p, q, r = _rand(seed=3), _rand(seed=4), _rand(seed=5)
    assert fisher_distance(p, r) <= fisher_distance(p, q) + fisher_distance(q, r) + 1e-12
    pn, qn = p / p.sum(), q / q.sum()
    ds = [fisher_distance((1 - w) * pn + w * qn, pn) for w in (0.0, 0.25, 0.5, 1.0)]
    assert ds == sorted(ds) and ds[0] == 0.0


def test_bad_vectors_are_named():
    with pytest.raises(ValueError, match="differ in length"):
        fisher_distance(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match=r"F\(b, t\) sums to zero"):
        fisher_distance(np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="negative"):
        fisher_distance(np.ones(3), -np.ones(3))
    with pytest.raises(ValueError, match="non-finite"):
        fisher_distance(np.array([1.0, np.nan]), np.ones(2))


def test_mean_std_over_seeds():
    assert mean_std([0.25]) == (0.25, 0.0)
    m, s = mean_std([0.1, 0.2, 0.3])
    assert m == pytest.approx(0.2) and s == pytest.approx(0.1)


def test_per_layer_unit_trace_gives_every_layer_an_equal_share():
    from engine.similarity.distance import per_layer_unit_trace

    layout = [("body.0.weight", 3), ("body.1.weight", 1), ("body.1.bias", 1), ("body.4.weight", 2)]
    f = np.array([1.0, 1.0, 2.0, 3.0, 1.0, 100.0, 300.0])
    out = per_layer_unit_trace(f, layout)
    np.testing.assert_allclose(out, [1 / 12, 1 / 12, 2 / 12, 3 / 12, 1 / 12, 1 / 12, 3 / 12])
    # A layer without Fisher mass gets no share; the rest still sum to 1.
    zero = per_layer_unit_trace(np.array([0, 0, 0, 1.0, 1.0, 1.0, 1.0]), layout)
    assert zero[:3].sum() == 0 and zero.sum() == pytest.approx(1.0)
    # Global normalisation lets the big last layer dominate; per layer, a change in the small first layer counts.
    g = f.copy()
    g[:3] = [3.0, 1.0, 0.0]
    assert fisher_distance(per_layer_unit_trace(f, layout), per_layer_unit_trace(g, layout)) > 2 * fisher_distance(f, g)
    with pytest.raises(ValueError, match="layout"):
        per_layer_unit_trace(f[:-1], layout)
