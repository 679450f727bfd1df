"""The genotype drawn as a DAG (issue 11 item 17) and the FUSE plots with axes, all rounds and a round selector
(item 11)."""
from __future__ import annotations

import math

from textual.widgets import DataTable, Static, Tree

from tanas_tui.components.genotype_view import GenotypeScreen
from tanas_tui.components.plots import axis_plot
from tanas_tui.genotype_art import cell_picture, node_name
from ui_fixtures import async_test, fixture_store, genotype, make_app, settle  # noqa: F401


def test_cell_picture_has_every_node_and_labelled_edge():
    cell = genotype(3)["normal"]
    lines = cell_picture(cell).plain.split("\n")
    for i, inputs in enumerate(cell["edges"]):
        node = i + 2
        rows = [k for k, line in enumerate(lines) if line.startswith(node_name(node))]
        assert len(rows) == 1, node
        # the node's two incoming edges: an arrow into the node, the operation and its source, on consecutive lines
        for offset, (op, src) in enumerate(inputs):
            line = lines[rows[0] + offset]
            assert "◀" in line and line.rstrip().endswith(f"{op} ← {node_name(src)}"), line
    # every lane that ends (┘) was opened (┬ or ┐) at the same column on an earlier line
    for k, line in enumerate(lines):
        for col, ch in enumerate(line):
            if ch == "┘":
                assert any(len(up) > col and up[col] in "┬┐" for up in lines[:k]), (k, col)
    assert lines[-1].startswith("output") and "concat(2, 3, 4, 5)" in lines[-1]


@async_test
async def test_enter_on_a_candidate_and_g_on_the_result_draw_the_genotype(fixture_store):
    app = make_app(fixture_store)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        app.open_run("run-00")
        await settle(app, pilot)
        table = app.query_one("#candidates", DataTable)
        table.focus()
        table.move_cursor(row=1)
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert isinstance(app.screen, GenotypeScreen)
        assert app.screen.genotype == genotype(10 * 1 + 1 + 1)     # round 2's second candidate
        shown = app.screen.query_one("#genotype-picture", Static).render()
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("g")
        await pilot.pause(0.2)
        assert isinstance(app.screen, GenotypeScreen) and "beefcafe01" in app.screen.title_text
        assert shown is not None


@async_test
async def test_space_tree_genotype_opens_its_picture(fixture_store):
    app = make_app(fixture_store)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("3")
        await settle(app, pilot)
        tree = app.query_one("#space-tree", Tree)
        geno = tree.root.children[0].children[0].children[0]
        tree.select_node(geno)          # enter on a genotype node
        await pilot.pause(0.2)
        assert isinstance(app.screen, GenotypeScreen) and app.screen.genotype == genotype(3)
        assert "circle" in app.screen.title_text


def test_axis_plot_has_ticks_and_round_boundaries():
    ys = [math.exp(-0.1 * i) for i in range(30)]
    lines = axis_plot([("train", ys)], 50, 10, "loss", boundaries=[(10, "R2"), (20, "R3")]).plain.split("\n")
    assert lines[0].startswith("loss")
    assert lines[1].split("┤")[0].strip() == "1" and lines[-3].split("┤")[0].strip() == f"{min(ys):.3g}"
    assert lines[-2].lstrip().startswith("└") and lines[-2].count("╫") == 2
    assert "R2" in lines[-1] and "R3" in lines[-1] and lines[-1].split()[0] == "1"


@async_test
async def test_fuse_plots_span_all_rounds_and_the_selector_picks_one(fixture_store):
    app = make_app(fixture_store)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        app.open_run("run-00")
        await settle(app, pilot)
        alpha = app.query_one("#alpha-plot")
        assert alpha.steps == list(range(6)) and alpha.boundaries == [(3, "R2")]
        assert "╫" in alpha.render().plain and "R2" in alpha.render().plain
        await pilot.press("right_square_bracket")     # round 1
        await pilot.pause(0.3)
        assert alpha.steps == [0, 1, 2] and "round 1" in alpha.title
        table = app.query_one("#candidates", DataTable)
        assert str(table.get_row_at(0)[1]).startswith("r0c0")
        assert "%" in str(table.get_row_at(0)[4])
        await pilot.press("left_square_bracket")      # back to all rounds
        await pilot.pause(0.3)
        assert alpha.steps == list(range(6))
