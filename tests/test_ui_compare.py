"""The UI's compare view (`c`): the arms side by side from the store, verdicts marked, enter opens a run."""
from __future__ import annotations

from textual.widgets import DataTable, Static

from result_fixtures import build_compare_store
from ui_fixtures import async_test, cell_text, make_app, settle


@async_test
async def test_compare_view_shows_the_arms_and_opens_a_run(tmp_path):
    app = make_app(build_compare_store(tmp_path / "c.zarr"))
    async with app.run_test(size=(200, 45)) as pilot:
        await settle(app, pilot)
        await pilot.press("c")
        await settle(app, pilot)
        arms = app.screen.query_one("#compare-arms", DataTable)
        assert arms.row_count == 4
        rows = {cell_text(arms, str(i), "arm"): str(i) for i in range(arms.row_count)}
        control, random_row = rows["FUSE, farthest-tasks space (control)"], rows["Random search"]
        assert cell_text(arms, control, "verdict") == "distinguishable"
        assert cell_text(arms, random_row, "verdict") == "not distinguishable"
        assert cell_text(arms, rows["FUSE, task-aware space"], "verdict") == "reference"
        assert cell_text(arms, control, "budget") == "12 candidate-epochs + 5 final"
        assert cell_text(arms, rows["ResNet-18"], "budget") == "5 network-epochs"
        assert cell_text(arms, control, "cost") == "1 min 31 s"
        assert cell_text(arms, control, "p") == "<0.001"
        title = app.screen.query_one("#compare-title", Static).render().plain
        assert "Result: tgt" in title and "seeds [0, 1, 2]" in title
        # the highlighted arm's runs, one per seed; enter on one opens it in the FUSE tab
        arms.move_cursor(row=arms.get_row_index(control))
        await pilot.pause()
        runs = app.screen.query_one("#compare-runs", DataTable)
        assert [runs.coordinate_to_cell_key((i, 0)).row_key.value for i in range(runs.row_count)] == [
            "tgt-farthest-0", "tgt-farthest-1", "tgt-farthest-2"]
        runs.focus()
        runs.move_cursor(row=1)
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.query_one("#tabs").active == "fuse"
        assert app.query_one("#fuse-panel").run_id == "tgt-farthest-1"


@async_test
async def test_compare_view_says_why_there_is_no_table(tmp_path):
    from store import Store

    with Store.open(tmp_path / "e.zarr", mode="w", create=True):
        pass
    app = make_app(tmp_path / "e.zarr")
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("c")
        await settle(app, pilot)
        assert "no finished search" in app.screen.query_one("#compare-title", Static).render().plain
        await pilot.press("escape")
        await pilot.pause()
        assert not app.screen.query("#compare-arms")
