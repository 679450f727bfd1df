"""The Dictionary filter (issue 11 item 21): enter / esc return focus to the table, the detail pane follows the
filter, clearing it restores the dictionary's order."""
from __future__ import annotations

from textual.widgets import DataTable, Input, Static

from ui_fixtures import TASKS, async_test, fixture_store, make_app, settle  # noqa: F401


@async_test
async def test_filter_focus_detail_and_order(fixture_store):
    app = make_app(fixture_store)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        table = app.query_one("#tasks", DataTable)
        order = [k.value for k in table.rows]
        assert order == [t[0] for t in TASKS]
        detail = app.query_one("#task-detail", Static)
        assert "mnist-0" in detail.render().plain
        await pilot.press("slash")
        await pilot.press(*"sketch")
        await pilot.pause()
        assert table.row_count == 3
        # the selected mnist-0 is filtered out: the detail shows the first visible task instead
        plain = detail.render().plain
        assert "mnist-0" not in plain and "circle" in plain
        await pilot.press("enter")
        assert app.focused is table
        await pilot.press("slash")
        await pilot.press(*"zzz")
        await pilot.pause()
        assert table.row_count == 0 and "No task matches" in detail.render().plain
        await pilot.press("escape")
        assert app.focused is table
        app.query_one("#task-filter", Input).value = ""
        await pilot.pause()
        assert [k.value for k in table.rows] == order
