"""Search orchestration over a hand-made store: genotype inheritance and the task-aware space's inputs."""
from __future__ import annotations

import pytest

from engine.config import Config, DictionarySection, ProjectSection, SearchSection, SpaceSection, TransferSection
from engine.space.genotype import Cell, Genotype
from engine.search.searching import assign_base_genotypes, build_space, run_id_for, space_tasks
from engine.service.context import JobContext
from engine.space.spaces import SpaceError
from store import Store


def genotype(op: str, channels: int = 8) -> Genotype:
    cell = Cell(((( op, 0), ("skip_connect", 1)),))
    return Genotype(normal=cell, reduce=cell, channels=channels, layers=3)


def config(**dictionary) -> Config:
    return Config(file=None, project=ProjectSection(), dictionary=DictionarySection(**dictionary),
                  transfer=TransferSection(), space=SpaceSection(channels=(8, 16), layers=(3,), nodes=(1,)),
                  search=SearchSection(), sources={}, tasks=(), target=None)


@pytest.fixture
def store(tmp_path):
    """Base tasks a, b, c (only a has a genotype) and target t; d(source, target) by hand."""
    with Store.open(tmp_path / "s.zarr", mode="w", create=True) as st:
        for tid, role in (("a", "base"), ("b", "base"), ("c", "base"), ("t", "target")):
            st.add_task(tid, {"name": f"task-{tid}", "role": role, "best_genotype": None, "genotype_hash": None})
            st.add_distance_task("fisher", tid)
        g = genotype("sep_conv_3x3")
        st.update_task("a", best_genotype=g.to_dict(), genotype_hash=g.hash)
        d = {("c", "b"): 0.05, ("a", "b"): 0.1, ("a", "c"): 0.2, ("b", "c"): 0.3, ("b", "a"): 0.4, ("c", "a"): 0.5,
             ("a", "t"): 0.3, ("b", "t"): 0.1, ("c", "t"): 0.2}
        for (src, dst), value in d.items():
            st.set_distance("fisher", src, dst, value)
        yield st


def test_zero_genotype_rounds_inherit_from_the_nearest_task_that_has_one(store):
    hashes = assign_base_genotypes(JobContext(store, config(genotype_rounds=0), "cpu"))
    a = store.task("a")["genotype_hash"]
    assert hashes == {"a": a, "b": a, "c": a}
    b = store.task("b")
    # c is b's nearest task but has no genotype at that point, so b inherits from a (the next nearest)
    assert b["genotype_source"] == {"kind": "inherited", "from": "a", "from_name": "task-a",
                                    "distance": pytest.approx(0.1)}
    assert "t" not in hashes and store.task("t")["best_genotype"] is None


def test_only_the_tasks_a_space_uses_get_genotypes(store):
    ctx = JobContext(store, config(genotype_rounds=0, k=1), "cpu")
    assert space_tasks(ctx, "task-t", ["task-aware"]) == ["b"]
    assert space_tasks(ctx, "task-t", ["standard", "task-aware", "farthest"]) == ["b", "a"]
    assert set(assign_base_genotypes(ctx, only=["b"])) == {"b"}
    assert store.task("b")["genotype_source"]["from"] == "a"
    assert not store.task("c")["best_genotype"]          # no space of t uses c: it gets its genotype when one does


def test_task_aware_space_is_formed_by_the_k_nearest_genotypes(store):
    g_b, g_c = genotype("dil_conv_3x3", 16), genotype("max_pool_3x3")
    store.update_task("b", best_genotype=g_b.to_dict(), genotype_hash=g_b.hash)
    store.update_task("c", best_genotype=g_c.to_dict(), genotype_hash=g_c.hash)
    space = build_space(JobContext(store, config(k=2), "cpu"), "task-t", "task-aware")
    assert space.kind == "task-aware"
    assert [(p["task_id"], p["distance"]) for p in space.provenance] == [("b", pytest.approx(0.1)),
                                                                          ("c", pytest.approx(0.2))]
    assert space.op_weights.get("dil_conv_3x3", 0) > space.op_weights.get("sep_conv_3x3", 0)
    assert build_space(JobContext(store, config(), "cpu"), "task-t", "standard").kind == "standard"


def test_task_aware_space_needs_neighbours_with_genotypes(store):
    store.update_task("a", best_genotype=None, genotype_hash=None)
    with pytest.raises(SpaceError, match="no nearest task of 'task-t' has a best genotype"):
        build_space(JobContext(store, config(k=2), "cpu"), "task-t", "task-aware")


def test_run_ids_are_store_safe():
    assert run_id_for("moon", "task-aware", 0) == "moon-task-aware-0"
    assert run_id_for("is it a 3?", "standard", 2).startswith("is_it_a_3_=")


def test_run_ids_never_collide_and_stay_store_safe():
    from store.layout import check_id

    names = ["a/b", "a_b", "a b", "a=b", "a_b=0", "_a_b", "x" * 190, "x" * 191, "[/x]", "é"]
    ids = [run_id_for(n, "task-aware", 0) for n in names]
    assert len(set(ids)) == len(names)
    for run_id in ids:
        check_id("run id", run_id)
