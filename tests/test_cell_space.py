"""The cell-level task-aware space: candidates built from the neighbours' own cells up to the stated mutations, the
neighbours' genotypes first in FUSE's first round; the skeleton rules; the size every space reports."""
from __future__ import annotations

import math

import pytest
from typer.testing import CliRunner

from engine.config import SpaceSection, load_config
from engine.runtime.reporting import RecordingReporter
from engine.service.context import JobContext
from engine.service.jobs import execute
from engine.space.genotype import Cell, Genotype
from engine.space.skeleton import skeleton_values
from engine.space.spaces import SAMPLED_OPS, SearchSpace, standard_space, task_aware_space
from store import Store
from tanas_tui.cli import app
from tests.synthetic import tiny_project


def _genotype(normal, reduce, channels=8, layers=3) -> Genotype:
    return Genotype.from_dict({"normal": {"edges": normal}, "reduce": {"edges": reduce}, "channels": channels,
                               "layers": layers})


A = _genotype([[["sep_conv_3x3", 0], ["skip_connect", 1]], [["max_pool_3x3", 0], ["sep_conv_5x5", 2]]],
              [[["dil_conv_3x3", 1], ["avg_pool_3x3", 0]], [["sep_conv_3x3", 2], ["skip_connect", 1]]],
              channels=8, layers=3)
B = _genotype([[["conv_7x1_1x7", 1], ["sep_conv_7x7", 0]], [["dil_conv_5x5", 2], ["max_pool_3x3", 1]]],
              [[["skip_connect", 0], ["sep_conv_5x5", 1]], [["avg_pool_3x3", 1], ["dil_conv_3x3", 0]]],
              channels=16, layers=5)
NEIGHBOURS = [("ta", "a", 0.2, A), ("tb", "b", 0.4, B)]


def _shape(cell: Cell):
    return tuple(tuple(src for _, src in node) for node in cell.edges), cell.concat


def test_without_mutation_every_candidate_is_made_of_the_neighbours_cells():
    space = task_aware_space(NEIGHBOURS, SpaceSection(form="cells", smoothing=0.0, channels=(8, 16), layers=(3, 5)))
    assert space.form == "cells" and space.mutation == 0.0
    normals, reduces = {A.normal, B.normal}, {A.reduce, B.reduce}
    drawn = space.sample_many(16, seed=0)
    for g in drawn:
        assert g.normal in normals and g.reduce in reduces
        assert g.channels in (8, 16) and g.layers in (3, 5)
    # normal and reduction cells are drawn separately: a mix of two neighbours appears
    assert any((g.normal == A.normal) != (g.reduce == A.reduce) for g in drawn)
    # 2 normal × 2 reduce cells × 2 channels × 2 layers, and the sampler reaches each of them
    assert space.size() == 16 and len({g.hash for g in space.sample_many(16, seed=1)}) == 16


def test_mutations_change_only_operations_at_the_stated_rate():
    rate = 0.25
    space = task_aware_space(NEIGHBOURS, SpaceSection(form="cells", smoothing=rate))
    sources = [A.normal, B.normal, A.reduce, B.reduce]
    edges = changed = 0
    for seed in range(300):
        g = space.sample(seed)
        for which, pool in (("normal", sources[:2]), ("reduce", sources[2:])):
            cell = getattr(g, which)
            origin = next(c for c in pool if _shape(c) == _shape(cell))   # same inputs and concat as a neighbour's
            edges += len(cell.ops())
            changed += sum(a != b for a, b in zip(cell.ops(), origin.ops()))
            assert all(op in SAMPLED_OPS for op, s in zip(cell.ops(), origin.ops()) if op != s)
    # each edge mutates with probability 0.25 (a mutation always changes the op): 2,400 edges, ±4.5 sd
    sd = math.sqrt(edges * rate * (1 - rate))
    assert abs(changed - rate * edges) < 4.5 * sd


def test_the_operation_form_is_kept_as_an_option_and_stores_as_before():
    ops = task_aware_space(NEIGHBOURS, SpaceSection())
    assert ops.form == "operations" and ops.first_candidates() == []
    # a space stored before the cell form existed has exactly these keys, so stored runs still resume
    assert set(ops.to_dict()) == {"kind", "op_weights", "nodes", "channels", "layers", "provenance", "notes"}
    cells = task_aware_space(NEIGHBOURS, SpaceSection(form="cells", skeleton="smoothed"))
    again = SearchSpace.from_dict(cells.to_dict())
    assert again.to_dict() == cells.to_dict()
    assert [g.hash for g in again.sample_many(5, seed=3)] == [g.hash for g in cells.sample_many(5, seed=3)]
    # the nearer neighbour's genotype first
    assert [g.hash for g in cells.first_candidates()] == [A.hash, B.hash]


def test_skeleton_rules():
    allowed = (8, 16, 32)
    small = [(8, 1.0)]     # an easier neighbour that needed only 8 channels
    assert skeleton_values("span", allowed, small) == ((8,), None)
    assert skeleton_values("floor", allowed, small) == ((8, 16, 32), None)
    values, weights = skeleton_values("smoothed", allowed, small, 0.2)
    assert values == (8, 16, 32) and weights == pytest.approx((0.8, 0.1, 0.1))
    values, weights = skeleton_values("smoothed", allowed, [(8, 0.75), (16, 0.25)], 0.2)
    assert weights == pytest.approx((0.6, 0.2, 0.2))
    # the weights reach the sampler: with smoothing 0.2 about a tenth of the draws take 32 channels
    space = task_aware_space([("ta", "a", 0.0, A)], SpaceSection(skeleton="smoothed", skeleton_smoothing=0.2,
                                                                 channels=(8, 16, 32), layers=(3,)))
    share = sum(space.sample(s).channels == 32 for s in range(2000)) / 2000
    assert 0.07 < share < 0.13
    assert "32 (0.10)" in space.describe()


def test_the_size_counts_what_the_sampler_can_draw():
    # one node, two sampleable operations, one skeleton: 2 ordered input pairs × 2² ops per cell, squared: 64
    tiny = SearchSpace(kind="standard", op_weights={"skip_connect": 1, "max_pool_3x3": 1}, nodes=(1,), channels=(4,),
                       layers=(1,))
    assert tiny.size() == 64
    assert len({g.hash for g in tiny.sample_many(64, seed=0)}) == 64
    big = standard_space(SpaceSection(channels=(8, 16), layers=(3, 5), nodes=(4,)))
    assert big.size_log10() == pytest.approx(math.log10(4 * (2 * 6 * 12 * 20 * 9 ** 8) ** 2))
    cells = task_aware_space(NEIGHBOURS, SpaceSection(form="cells", smoothing=0.05))
    assert cells.size_log10() < big.size_log10()
    assert "size: 10^" in cells.describe()


def test_config_names_a_bad_form(tmp_path):
    path = tmp_path / "tanas.toml"
    path.write_text(tiny_project().replace("[space]\n", '[space]\nform = "cell"\n'))
    result = CliRunner().invoke(app, ["tasks", "list", "--config", str(path)])
    assert result.exit_code == 2 and "space.form" in result.output and "operations, cells" in result.output


def test_fuse_starts_from_the_neighbours_genotypes(tmp_path):
    path = tmp_path / "tanas.toml"
    text = tiny_project(store="s.zarr", tasks=("circle", "square"), k=2).replace(
        "[space]\n", '[space]\nform = "cells"\nskeleton = "floor"\n').replace("candidates = 2", "candidates = 3")
    path.write_text(text)
    cfg = load_config(path, {})
    small = _genotype([[["sep_conv_3x3", 0], ["skip_connect", 1]], [["max_pool_3x3", 0], ["sep_conv_3x3", 2]]],
                      [[["skip_connect", 0], ["sep_conv_3x3", 1]], [["avg_pool_3x3", 1], ["sep_conv_3x3", 0]]],
                      channels=4, layers=3)
    with Store.open(cfg.store_path, "w", create=True) as st:
        ctx = JobContext(st, cfg, "cpu", RecordingReporter(), "setup")
        ctx.dictionary.ensure(list(cfg.tasks), "base")
        for task in cfg.tasks:
            st.update_task(st.find_task(task.name), best_genotype=small.to_dict(), genotype_hash=small.hash,
                           genotype_source={"kind": "given"})
        rep = RecordingReporter()
        result = execute("start_search", {"target": "moon"}, JobContext(st, cfg, "cpu", rep, "search"))
        first = next(d for name, d in rep.events if name == "search_candidates" and d["round"] == 0)
        stored = st.search(result["run_id"])
    # both neighbours hold the same genotype: it is the first candidate once, two draws beside it
    assert first["candidates"][0] == small.hash and len(set(first["candidates"])) == 3
    assert result["space_form"] == "cells" and result["space_size_log10"] > 0
    assert stored["space"]["form"] == "cells" and stored["space_size_log10"] == result["space_size_log10"]
    built = next(d for name, d in rep.events if name == "space_built")
    assert built["size_log10"] == result["space_size_log10"]
    shown = CliRunner().invoke(app, ["searches", "show", result["run_id"], "--config", str(path)])
    assert shown.exit_code == 0 and "cells form, 10^" in shown.output
