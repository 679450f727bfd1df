"""The Space tab tells the space forms apart and gives each space's size; the Dictionary's task detail shows a stored
premise check, a given genotype and a task from a source the shared body never learned (issue 19)."""
from __future__ import annotations

import pytest
from textual.widgets import Static, Tree

from ui_fixtures import CREATED, _space, async_test, build_fixture_store, make_app, settle


@pytest.fixture(scope="module")
def forms_store(tmp_path_factory):
    from store import Store

    path = build_fixture_store(tmp_path_factory.mktemp("forms") / "s.zarr", searches=1, running=False)
    with Store.open(path, mode="w") as st:
        ids = [t["id"] for t in st.list_tasks()]
        cells = dict(_space(ids), form="cells", mutation=0.05)
        st.create_search("a-cells", {"kind": "fuse", "target": "t-moon", "target_name": "moon",
                                     "space_kind": "task-aware", "space": cells, "space_size_log10": 9.25,
                                     "config": {}, "seed": 0, "status": "done", "device": "cpu",
                                     "created": CREATED}, 3).flush()
        st.update_task(ids[0], genotype_source={"kind": "given"}, unseen_source=True, body_sources=["sketches"],
                       premise={"stats": {"supported": False, "kendall_tau": 0.357, "p": 0.138,
                                          "near_minus_far": {"mean": -2.58}}, "settings": {"seeds": 3}})
    return path


@async_test
async def test_the_space_tree_keeps_the_cell_form_apart_and_shows_its_size(forms_store):
    app = make_app(forms_store)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("3")
        await settle(app, pilot)
        tree = app.query_one("#space-tree", Tree)
        kinds = [node.data[1] for node in tree.root.children]
        assert "task-aware" in kinds and "task-aware-cells" in kinds, kinds
        node = next(n for n in tree.root.children if n.data[1] == "task-aware-cells")
        tree.move_cursor(node)
        await settle(app, pilot)
        side = app.query_one("#space-aware", Static).render().plain
        assert "cells, 10^9.2 genotypes" in " ".join(side.split()), side
        standard = app.query_one("#space-standard", Static).render().plain
        assert "operations, 10^" in standard


@async_test
async def test_task_detail_shows_the_premise_a_given_genotype_and_an_unseen_source(forms_store):
    app = make_app(forms_store)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        detail = " ".join(app.query_one("#task-detail", Static).render().plain.split())
        assert "genotype from given in the config (not searched)" in detail, detail
        assert "premise not supported: τ +0.36 (p 0.14), near − far -2.58 points" in detail, detail
        assert "not among the shared body's training sources (sketches)" in detail, detail
