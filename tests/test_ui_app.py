"""Pilot tests of each panel on the fixture store: live events, pause / stop through a fake client, opening a
run, attaching mid-run."""
from __future__ import annotations

import math

import pytest
from textual.widgets import DataTable, Input, Static, Tree

from engine.service import protocol as P
from ui_fixtures import (async_test, cell_text, event, fixture_store, genotype, make_app,  # noqa: F401
                         pretend_engine, settle)

@async_test
async def test_dictionary_lists_sorts_filters_and_details(fixture_store):
    app = make_app(fixture_store)
    async with app.run_test(size=(140, 30)) as pilot:   # wide enough for every column (narrower leaves some out)
        await settle(app, pilot)
        table = app.query_one("#tasks", DataTable)
        assert table.row_count == 6
        assert cell_text(table, "t-square", "ε").startswith("✗")
        assert cell_text(table, "t-mnist0", "genotype") == app.model.tasks["t-mnist0"].genotype_hash
        detail = app.query_one("#task-detail", Static).render().plain
        assert "mnist-0" in detail and "near (fisher)" in detail
        # sort by val acc ascending via the header, then the key reverses it
        await pilot.click("#tasks", offset=(20, 0))   # the "val acc" header
        await pilot.pause()
        first = table.coordinate_to_cell_key((0, 0)).row_key.value
        assert first == "t-moon"   # lowest val acc
        table.cursor_coordinate = (0, 2)
        await pilot.press("o")
        assert table.coordinate_to_cell_key((0, 0)).row_key.value == "t-mnist0"
        # filter
        await pilot.press("slash")
        await pilot.press(*"sketch")
        await pilot.pause()
        assert table.row_count == 3
        app.query_one("#task-filter", Input).value = ""
        await pilot.pause()
        assert table.row_count == 6


@async_test
async def test_sample_preview_or_inline_unavailable(fixture_store):
    app = make_app(fixture_store)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot, 0.3)
        preview = app.query_one("#task-preview", Static)
        assert "loading" not in str(preview.render())
        bad = {"name": "x", "source": "no-such-source", "positive": ["1"]}
        panel = app.query_one("#dictionary-panel")
        panel._selected = "fake"
        panel.load_preview("fake", bad)
        await settle(app, pilot)
        assert "samples unavailable" in preview.render().plain and "no-such-source" in preview.render().plain


@async_test
async def test_distances_heat_table_live_fill_nearest_and_method(fixture_store):
    app = make_app(fixture_store)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("2")
        await pilot.pause()
        table = app.query_one("#distance-table", DataTable)
        assert (table.row_count, len(table.columns)) == (6, 6)
        assert cell_text(table, "t-circle", "t-moon").split()[0] == "0.093"
        assert table.get_cell("t-circle", "t-moon").style is not None
        # live: a task and its distances arrive
        app.ingest([event(P.TaskAdded, task_id="t-new", name="star", role="base"),
                    event(P.Distance, method="fisher", source="t-new", target="t-moon", value=0.05, std=0.01)])
        await pilot.pause(0.3)
        assert (table.row_count, len(table.columns)) == (7, 7)
        assert cell_text(table, "t-new", "t-moon").split()[0] == "0.050"
        assert cell_text(table, "t-moon", "t-new").strip() == "·"
        # detail line with ± std
        table.cursor_coordinate = (table.get_row_index("t-new"), list(table.columns).index("t-moon"))
        await pilot.pause()
        assert "d(star → moon) = 0.050 ± 0.010" in app.query_one("#dist-detail").render().plain
        # k nearest of the moon column are marked
        await pilot.press("n")
        await pilot.pause()
        marked = [r for r in ("t-new", "t-circle", "t-square", "t-mnist0") if cell_text(table, r, "t-moon").startswith("▶")]
        assert marked == ["t-new", "t-circle", "t-square"]
        await pilot.press("m")
        await pilot.pause()
        assert (table.row_count, len(table.columns)) == (3, 3)
        assert cell_text(table, "t-mnist3", "t-mnist0").strip() == "·"
        assert "transfer" in app.query_one("#dist-header").render().plain


@async_test
async def test_space_tree_goes_down_to_edges(fixture_store):
    app = make_app(fixture_store)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("3")
        await settle(app, pilot)
        tree = app.query_one("#space-tree", Tree)
        target = tree.root.children[0]
        assert "moon" in str(target.label)
        nearest = target.children
        assert [str(n.label).split()[0] for n in nearest] == ["circle", "mnist-0", "mnist-3"]
        geno = nearest[0].children[0]
        normal = geno.children[0]
        node2 = normal.children[0]
        assert str(geno.label).startswith("genotype") and str(normal.label).startswith("normal cell")
        assert str(node2.label).startswith("node 2")
        edge_ops = [str(leaf.label).split()[0] for leaf in node2.children]
        assert edge_ops == [e[0] for e in genotype(3)["normal"]["edges"][0]]
        side = app.query_one("#space-aware", Static).render().plain
        assert "sep_conv_3x3" in side and "24.0%" in side and "channels" in side
        assert "standard space" in app.query_one("#space-standard", Static).render().plain


@async_test
async def test_fuse_live_steps_pause_stop_and_result(fixture_store):
    log: list = []
    app = make_app(fixture_store, log)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("4")
        await settle(app, pilot)
        fuse = app.query_one("#fuse-panel")
        assert fuse.run_id == "run-01"
        s = app.model.searches["run-01"]
        assert s.loaded and s.steps == 2
        table = app.query_one("#candidates", DataTable)
        assert table.row_count == 3
        # stream steps: the candidates table and progress follow
        app.ingest([event(P.JobStarted, job="j7", kind="start_search", params={"run_id": "run-01"})])
        app.ingest([event(P.AlphaStep, run_id="run-01", step=2, round=0, alternation=2, alpha=[0.0, 0.0, 2.0], loss_train=0.4, loss_val=0.5, val_acc=[0.7, 0.8, 0.95])])
        await pilot.pause(0.3)
        row = next(k for k in table.rows if k.value.startswith("2:"))
        assert cell_text(table, row.value, "val acc") == "95.0%"
        assert float(cell_text(table, row.value, "softmax(α)")) == pytest.approx(math.exp(2) / (2 + math.exp(2)),
                                                                                   abs=1e-3)
        assert "alt 3/3" in str(app.query_one("#alt-label").render())
        assert "job" in app.query_one("#status").render().plain
        # the engine is "connected" (a fake one): p and s send pause / stop for the search's job
        await pretend_engine(app, pilot)
        table.focus()
        await pilot.press("p")
        await settle(app, pilot)
        assert "pausing…" in app.query_one("#fuse-header").render().plain    # until the job reaches its pause
        app.ingest([event(P.JobState, job="j7", state="paused")])
        await settle(app, pilot)
        assert "paused" in app.query_one("#fuse-header").render().plain
        await pilot.press("s")                   # stop asks first
        await pilot.pause()
        await pilot.press("y")
        await settle(app, pilot)
        assert log == [("pause", {"job": "j7"}), ("stop", {"job": "j7"})]
        # a finished run shows its result
        app.ingest([event(P.SearchDone, run_id="run-01", result={"hash": "feed", "test_error": 1.5,
                                                                    "params": 2_500_000, "genotype": genotype(1)})])
        await pilot.pause(0.3)
        result = app.query_one("#fuse-result", Static)
        assert result.display and "test error 1.50%" in result.render().plain and "2.50M" in result.render().plain
        await pilot.press("p")
        await pilot.pause()
        assert len(log) == 2        # nothing to pause any more


@async_test
async def test_runs_panel_opens_a_replayed_run(fixture_store):
    app = make_app(fixture_store)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("5")
        await pilot.pause()
        table = app.query_one("#runs-table", DataTable)
        assert table.row_count == 2
        assert cell_text(table, "run-00", "status") == "done"
        assert cell_text(table, "run-00", "updated") == "1h ago"
        assert cell_text(table, "run-00", "result") == "beefcafe01  err 1.25%"
        table.move_cursor(row=table.get_row_index("run-00"))
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.query_one("#tabs").active == "fuse"
        fuse = app.query_one("#fuse-panel")
        assert fuse.run_id == "run-00"
        s = app.model.searches["run-00"]
        assert s.steps == 6 and s.current_round == 1
        assert "round 2/2" in str(app.query_one("#round-label").render())
        assert app.query_one("#fuse-result", Static).display


@async_test
async def test_attach_mid_run_replays_history_then_follows(fixture_store):
    """Events for a run the UI has not read yet: the history is read from the store, then live steps continue."""
    app = make_app(fixture_store)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        s = app.model.searches["run-01"]
        # the FUSE panel read the running run at startup; forget it to simulate a window that attaches now
        s.loaded, s.alpha, s.probs, s.round, s.round_start = False, [], [], [], {}
        s.alternation, s.loss_train, s.loss_val, s.val_acc = [], [], [], []
        app.ingest([event(P.AlphaStep, run_id="run-01", step=2, round=0, alternation=2, alpha=[0.0, 1.0, 0.0], loss_train=0.3, loss_val=0.35, val_acc=[0.7, 0.9, 0.8])])
        await settle(app, pilot, 0.3)
        assert s.loaded and s.steps == 3
        assert s.alpha[2] == (0.0, 1.0, 0.0) and s.loss_train[0] == pytest.approx(0.9)


