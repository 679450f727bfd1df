import json
import math
import random
from collections import Counter

import pytest
import torch

from engine.config import SpaceSection
from engine.space.genotype import Cell, Genotype
from engine.space.ops import PRIMITIVES
from engine.space.spaces import SAMPLED_OPS, SearchSpace, SpaceError, standard_space, task_aware_space


def _uniform_cell(ops):
    """4 nodes, edges reading (0, 1), ops taken in order (8 of them)."""
    it = iter(ops)
    return Cell(tuple(((next(it), 0), (next(it), 1)) for _ in range(4)))


# A: 6 x sep_conv_3x3 + 2 x skip_connect (normal), 8 x max_pool_3x3 (reduce); B: 8 x sep_conv_5x5, 8 x sep_conv_3x3
A = Genotype(_uniform_cell(["sep_conv_3x3"] * 6 + ["skip_connect"] * 2), _uniform_cell(["max_pool_3x3"] * 8),
             channels=8, layers=3)
B = Genotype(_uniform_cell(["sep_conv_5x5"] * 8), _uniform_cell(["sep_conv_3x3"] * 8), channels=32, layers=8)


def test_standard_space_is_uniform_over_all_ops():
    space = standard_space(SpaceSection())
    assert space.kind == "standard"
    assert list(space.op_weights) == list(PRIMITIVES)
    assert all(w == pytest.approx(0.1) for w in space.op_weights.values())
    assert (space.channels, space.layers, space.nodes) == ((8, 16, 32), (3, 5, 8), (4,))
    assert space.provenance == []


def test_sampling_is_deterministic_and_valid():
    space = standard_space(SpaceSection())
    a = [space.sample(seed).hash for seed in range(5)]
    assert a == [space.sample(seed).hash for seed in range(5)]
    assert len(set(a)) == 5
    g1 = space.sample(torch.Generator().manual_seed(7))
    g2 = space.sample(torch.Generator().manual_seed(7))
    assert g1 == g2
    assert space.sample(random.Random(7)) == space.sample(random.Random(7))
    many = space.sample_many(6, seed=11)
    assert [g.hash for g in many] == [g.hash for g in space.sample_many(6, seed=11)]
    assert len({g.hash for g in many}) == 6
    for g in many:
        g.validate()
        assert "none" not in g.ops_used()
        assert g.channels in space.channels and g.layers in space.layers and g.nodes in space.nodes
        for cell in (g.normal, g.reduce):
            assert all(node[0][1] != node[1][1] for node in cell.edges)  # two distinct inputs


def test_sample_many_honours_exclude():
    space = standard_space(SpaceSection())
    first = space.sample_many(1, seed=3)[0]
    again = space.sample_many(2, seed=3, exclude=[first.hash])
    assert first.hash not in {g.hash for g in again}


def test_sampling_follows_the_weights():
    space = SearchSpace("task-aware", {"sep_conv_3x3": 3.0, "max_pool_3x3": 1.0, "none": 5.0}, (2,), (8,), (3,))
    counts = Counter()
    for g in space.sample_many(200, seed=0):
        counts.update(g.ops_used())
    assert set(counts) == {"sep_conv_3x3", "max_pool_3x3"}  # none is never sampled
    share = counts["sep_conv_3x3"] / sum(counts.values())
    assert 0.70 < share < 0.80


def test_task_aware_weights_hand_example():
    cfg = SpaceSection(smoothing=0.05)
    space = task_aware_space([("ta", "digit 0", 0.2, A), ("tb", "trouser", 0.5, B)], cfg)
    # raw: sep3 0.8*6 + 0.5*8 = 8.8, skip 0.8*2 = 1.6, max 0.8*8 = 6.4, sep5 0.5*8 = 4.0; total 20.8
    # 5 sampleable ops are absent and share the smoothing 0.05 equally
    expected = {"skip_connect": 0.95 * 1.6 / 20.8, "max_pool_3x3": 0.95 * 6.4 / 20.8,
                "sep_conv_3x3": 0.95 * 8.8 / 20.8, "sep_conv_5x5": 0.95 * 4.0 / 20.8,
                "avg_pool_3x3": 0.01, "sep_conv_7x7": 0.01, "dil_conv_3x3": 0.01, "dil_conv_5x5": 0.01,
                "conv_7x1_1x7": 0.01}
    assert space.op_weights == pytest.approx(expected)
    assert "none" not in space.op_weights
    assert sum(space.op_weights.values()) == pytest.approx(1.0)
    assert space.channels == (8, 16, 32) and space.layers == (3, 5, 8) and space.nodes == (4,)
    # transfer distances are percents: the same space with scale=100
    percent = task_aware_space([("ta", "digit 0", 20.0, A), ("tb", "trouser", 50.0, B)], cfg, scale=100.0)
    assert percent.op_weights == pytest.approx(expected)


def test_task_aware_without_smoothing_keeps_only_neighbour_ops():
    space = task_aware_space([("ta", "a", 0.0, A)], SpaceSection(smoothing=0.0))
    assert space.op_weights == pytest.approx({"skip_connect": 2 / 16, "max_pool_3x3": 8 / 16, "sep_conv_3x3": 6 / 16})
    assert space.channels == (8,) and space.layers == (3,)
    for g in space.sample_many(5, seed=1):
        assert set(g.ops_used()) <= {"skip_connect", "max_pool_3x3", "sep_conv_3x3"}


def test_skeleton_span_uses_configured_values_or_the_neighbours_own():
    mid = Genotype(A.normal, A.reduce, channels=16, layers=5)
    space = task_aware_space([("a", "a", 0.1, mid), ("b", "b", 0.3, B)], SpaceSection())
    assert space.channels == (16, 32) and space.layers == (5, 8)
    odd = Genotype(A.normal, A.reduce, channels=12, layers=4)
    space = task_aware_space([("a", "a", 0.1, odd)], SpaceSection())
    assert space.channels == (12,) and space.layers == (4,)


def test_all_neighbours_at_maximal_distance_count_equally():
    space = task_aware_space([("a", "a", 1.0, A), ("b", "b", 1.0, B)], SpaceSection(smoothing=0.0))
    assert space.op_weights["sep_conv_3x3"] == pytest.approx(14 / 32)
    assert space.notes and "counted equally" in space.notes[0]


def test_provenance_is_recorded_and_round_trips():
    space = task_aware_space([("ta", "digit 0", 0.2, A), ("tb", "trouser", 0.5, B)], SpaceSection())
    assert [(p["task_id"], p["name"], p["distance"], p["hash"]) for p in space.provenance] == [
        ("ta", "digit 0", 0.2, A.hash), ("tb", "trouser", 0.5, B.hash)]
    assert [p["weight"] for p in space.provenance] == pytest.approx([0.8, 0.5])
    back = SearchSpace.from_dict(json.loads(json.dumps(space.to_dict())))
    assert back == space
    assert back.provenance_genotypes() == [A, B]
    assert back.sample(5) == space.sample(5)
    text = space.describe()
    assert "digit 0 (ta): distance 0.2" in text and A.hash in text and "task-aware" in text


@pytest.mark.parametrize("neighbors, scale, message", [
    ([], 1.0, "needs at least one neighbouring task"),
    ([("ta", "digit 0", 1.5, A)], 1.0, "neighbour digit 0 (ta): distance 1.5 is outside [0, 1]; transfer distances"),
    ([("ta", "digit 0", -0.1, A)], 1.0, "distance -0.1 is outside [0, 1]"),
    ([("ta", "digit 0", math.nan, A)], 1.0, "distance nan is outside"),
    ([("ta", "digit 0", 120.0, A)], 100.0, "distance 120.0 is outside [0, 100]"),
    ([("ta", "digit 0", 0.1, A.to_dict())], 1.0, "expected a Genotype, got dict"),
    ([("ta", "digit 0", 0.1)], 1.0, "each neighbour must be (task_id, name, distance, genotype)"),
])
def test_task_aware_errors(neighbors, scale, message):
    with pytest.raises(SpaceError) as info:
        task_aware_space(neighbors, SpaceSection(), scale=scale)
    assert message in str(info.value)


@pytest.mark.parametrize("kwargs, message", [
    ({"kind": "weird"}, "space kind must be one of"),
    ({"op_weights": {"sep_conv_9x9": 1.0}}, "unknown operation(s) in op_weights: sep_conv_9x9"),
    ({"op_weights": {"none": 1.0}}, "no weight to any sampleable operation"),
    ({"op_weights": {"skip_connect": -1.0}}, "must be a finite number >= 0"),
    ({"channels": ()}, "channels must be a non-empty list"),
    ({"layers": (0,)}, "layers must hold positive integers, got 0"),
])
def test_invalid_spaces(kwargs, message):
    base = dict(kind="standard", op_weights={op: 1.0 for op in SAMPLED_OPS}, nodes=(4,), channels=(8,), layers=(3,))
    with pytest.raises(SpaceError) as info:
        SearchSpace(**{**base, **kwargs})
    assert message in str(info.value)


def test_from_dict_rejects_bad_documents():
    doc = standard_space().to_dict()
    with pytest.raises(SpaceError, match="missing key"):
        SearchSpace.from_dict({k: v for k, v in doc.items() if k != "layers"})
    with pytest.raises(SpaceError, match="unknown key"):
        SearchSpace.from_dict({**doc, "colour": 1})
    bad = {"task_id": "x", "name": "x", "distance": 0.1, "weight": 0.9, "hash": "0", "genotype": {"channels": 8}}
    with pytest.raises(SpaceError, match=r"provenance\[0\] \(x\): genotype is missing"):
        SearchSpace.from_dict({**doc, "provenance": [bad]})
