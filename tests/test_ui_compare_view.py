"""The compare view as a full screen (issue 23 item 1, item 12's per-arm plot): it fills the terminal, pins the arm
column, never shows a cut number (whole columns leave by priority; `w` shows all of them, scrolling with the arm
pinned), sorts by any column, and spells out the highlighted arm's verdict on a line that never scrolls away."""
from __future__ import annotations

import re

import pytest
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from result_fixtures import build_compare_store
from tanas_tui.components.compare import ARM_COLUMNS, CompareScreen
from tanas_tui.components.error_strip import error_strips
from ui_fixtures import async_test, cell_text, make_app, settle


def arm_order(arms: DataTable) -> list[str]:
    return [cell_text(arms, arms.coordinate_to_cell_key((i, 0)).row_key.value, "arm") for i in range(arms.row_count)]


@pytest.fixture(scope="module")
def compare_store(tmp_path_factory):
    return build_compare_store(tmp_path_factory.mktemp("cmp") / "c.zarr")


@pytest.mark.parametrize("size", [(60, 20), (80, 24), (120, 40)])
def test_compare_view_fills_the_screen_and_cuts_no_number(compare_store, size):
    @async_test
    async def run():
        app = make_app(compare_store)
        async with app.run_test(size=size) as pilot:
            await settle(app, pilot)
            await pilot.press("c")
            await settle(app, pilot)
            screen = app.screen
            assert isinstance(screen, CompareScreen) and not isinstance(screen, ModalScreen)
            arms = screen.query_one("#compare-arms", DataTable)
            assert arms.region.width == size[0]
            assert arms.fixed_columns == 1 and str(arms.ordered_columns[0].key.value) == "arm"
            # every column shown is whole: the table never scrolls sideways (that cut `100.0` to `10`)
            assert arms.virtual_size.width <= arms.scrollable_content_region.width
            shown = [str(c.key.value) for c in arms.ordered_columns]
            assert "test error %" in shown
            hidden = [c for c in ARM_COLUMNS if c not in shown]
            note = screen.query_one("#compare-hidden", Static).render().plain
            assert all(c in note for c in hidden) if hidden else not screen.query_one("#compare-hidden").display
            # the verdict of the highlighted arm, whatever the width
            rows = {cell_text(arms, arms.coordinate_to_cell_key((i, 0)).row_key.value, "arm"): i
                    for i in range(arms.row_count)}
            arms.move_cursor(row=rows["FUSE, farthest-tasks space (control)"])
            await pilot.pause()
            line = screen.query_one("#compare-verdict", Static)
            text = line.render().plain
            assert "FUSE, farthest-tasks space (control)" in text and "distinguishable from FUSE, task-aware" in text
            assert "p <0.001" in text and line.region.bottom <= size[1] - 1
            arms.move_cursor(row=rows["Random search"])
            await pilot.pause()
            assert "not distinguishable" in line.render().plain

    run()


@async_test
async def test_compare_view_sorts_by_any_column(compare_store):
    app = make_app(compare_store)
    async with app.run_test(size=(200, 45)) as pilot:
        await settle(app, pilot)
        await pilot.press("c")
        await settle(app, pilot)
        arms = app.screen.query_one("#compare-arms", DataTable)
        await pilot.press("o")                      # first sort: test error, ascending
        await pilot.pause()
        assert arm_order(arms)[-1] == "FUSE, farthest-tasks space (control)"
        assert "▲" in str(arms.columns["test error %"].label)
        await pilot.press("O")                      # reversed
        await pilot.pause()
        assert arm_order(arms)[0] == "FUSE, farthest-tasks space (control)"
        assert "▼" in str(arms.columns["test error %"].label)
        app.screen.sort_by("arm")                   # what a click on the arm header does
        await pilot.pause()
        assert arm_order(arms) == sorted(arm_order(arms), key=str.lower)
        await pilot.press("o", "o")                 # the next columns: verdict, then test error again
        await pilot.pause()
        assert arm_order(arms)[-1] == "FUSE, farthest-tasks space (control)"
        # the cursor stays on its arm through a sort
        arms.move_cursor(row=0)
        first = arm_order(arms)[0]
        await pilot.press("O")
        await pilot.pause()
        assert arm_order(arms)[arms.cursor_row] == first


@async_test
async def test_w_shows_every_column_with_the_arm_pinned(compare_store):
    app = make_app(compare_store)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("c")
        await settle(app, pilot)
        arms = app.screen.query_one("#compare-arms", DataTable)
        assert len(arms.ordered_columns) < len(ARM_COLUMNS)
        await pilot.press("w")
        await settle(app, pilot)
        assert [str(c.key.value) for c in arms.ordered_columns] == list(ARM_COLUMNS)
        assert arms.fixed_columns == 1
        arms.scroll_to(x=arms.max_scroll_x, animate=False)
        await pilot.pause()
        assert arms.scroll_x > 0
        assert cell_text(arms, "0", "budget").endswith("5 final")


def test_error_plot_ticks_sit_at_their_values():
    rows = [{"arm": "A", "run_ids": ["a0", "a1"], "test_error_mean": 15.0, "test_error_t_lo": 10.0,
             "test_error_t_hi": 20.0},
            {"arm": "B", "run_ids": ["b0", "b1"], "test_error_mean": 35.0, "test_error_t_lo": 30.0,
             "test_error_t_hi": 40.0}]
    runs = {"a0": {"test_error": 10.0}, "a1": {"test_error": 20.0}, "b0": {"test_error": 30.0},
            "b1": {"test_error": 40.0}}
    lines = error_strips(rows, runs, 70).plain.splitlines()
    a, b, axis, labels = lines[1], lines[2], lines[-2], lines[-1]
    assert a.startswith("A ") and b.startswith("B ")
    points = {10: a.index("●"), 20: a.rindex("●"), 30: b.index("●"), 40: b.rindex("●")}
    for value, column in points.items():
        # a tick labelled with the point's value is drawn in the point's column
        match = [m for m in re.finditer(r"\d+", labels) if int(m.group()) == value]
        assert match and axis[column] == "┬", (value, column, axis, labels)
        assert match[0].start() <= column < match[0].end() + 1
    assert lines[0].startswith("test error % per arm")   # the axis's title


@async_test
async def test_compare_view_draws_each_seed_of_each_arm(compare_store):
    app = make_app(compare_store)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("c")
        await settle(app, pilot)
        plot = app.screen.query_one("#compare-plot", Static).render().plain
        assert plot.split("\n", 1)[1].count("●") == 12 and "farthest-tasks space (control)" in plot


@async_test
async def test_two_marked_runs_open_side_by_side(compare_store):
    from tanas_tui.components.run_pair import RunPairScreen

    app = make_app(compare_store)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("c")
        await settle(app, pilot)
        screen = app.screen
        arms = screen.query_one("#compare-arms", DataTable)
        runs = screen.query_one("#compare-runs", DataTable)
        rows = {cell_text(arms, arms.coordinate_to_cell_key((i, 0)).row_key.value, "arm"): i
                for i in range(arms.row_count)}
        for arm in ("FUSE, task-aware space", "FUSE, farthest-tasks space (control)"):
            arms.focus()
            arms.move_cursor(row=rows[arm])
            await pilot.pause()
            runs.focus()
            runs.move_cursor(row=0)
            await pilot.press("space")
            await pilot.pause()
        assert screen.marked == ["tgt-task-aware-0", "tgt-farthest-0"]
        assert cell_text(runs, "tgt-farthest-0", "✓") == "✓"
        await pilot.press("v")
        await settle(app, pilot)
        assert isinstance(app.screen, RunPairScreen)
        diff = app.screen.query_one("#pair-diff", Static).render().plain
        assert "tgt-task-aware-0 10.50 %" in diff and "tgt-farthest-0 32.50 %" in diff and "Δ (right − left) +22.00 pp" in diff


@async_test
async def test_side_by_side_draws_genotypes_and_alpha_trajectories(tmp_path):
    from rich.console import Console

    from tanas_tui.components.run_pair import RunPairScreen
    from ui_fixtures import build_fixture_store

    store = build_fixture_store(tmp_path / "s.zarr", searches=2, running=False)
    app = make_app(store)
    async with app.run_test(size=(160, 60)) as pilot:
        await settle(app, pilot)
        app.push_screen(RunPairScreen(store, "run-00", "run-01"))
        await settle(app, pilot)
        for side in ("left", "right"):
            console = Console(width=80, record=True)
            console.print(app.screen.query_one(f"#pair-{side}-body", Static).content)
            text = console.export_text()
            assert "share ↑ softmax(α)" in text and "╫" in text        # the trajectory, its rounds marked
            assert "normal cell" in text and "reduction cell" in text   # the genotype drawn
            assert "test error 1.25 %" in text
