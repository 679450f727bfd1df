"""Narrow and wide terminals (issue 23 item 4): a table too narrow for all its columns leaves whole columns out by
priority and never scrolls sideways (which cut 100.0 % to `10`); task names show whole where the width allows, in
the Dictionary and in the distance matrix (`sk…rcle` even at 200 columns)."""
from __future__ import annotations

import pytest
from textual.widgets import DataTable

from tanas_tui.components.dictionary import COLUMNS
from ui_fixtures import async_test, build_fixture_store, cell_text, fixture_store, make_app, settle, task_attrs  # noqa: F401

LONG = "sketches-circle-against-every-other-shape"   # 41 characters
MEDIUM = "sketch-circle"


def with_task(path, name):
    from store import Store

    build_fixture_store(path, searches=1, running=False)
    with Store.open(path, mode="w") as st:
        st.add_task("t-long", task_attrs(6, name, "sketches", ["circle"], "base"))
        st.add_distance_task("fisher", "t-long")
        for other in ("t-mnist0", "t-circle", "t-moon"):
            st.set_distance("fisher", "t-long", other, 0.2)
            st.set_distance("fisher", other, "t-long", 0.2)
    return path


@pytest.fixture(scope="module")
def long_names(tmp_path_factory):
    return with_task(tmp_path_factory.mktemp("long") / "l.zarr", LONG)


@pytest.fixture(scope="module")
def medium_names(tmp_path_factory):
    return with_task(tmp_path_factory.mktemp("medium") / "m.zarr", MEDIUM)


def whole(table: DataTable) -> bool:
    return table.virtual_size.width <= table.scrollable_content_region.width


@pytest.mark.parametrize("width, height", [(60, 20), (80, 24), (120, 40)])
def test_dictionary_leaves_whole_columns_out(fixture_store, width, height):
    @async_test
    async def run():
        app = make_app(fixture_store)
        async with app.run_test(size=(width, height)) as pilot:
            await settle(app, pilot)
            table = app.query_one("#tasks", DataTable)
            shown = [str(c.key.value) for c in table.ordered_columns]
            assert whole(table), (table.virtual_size, table.scrollable_content_region)
            assert shown[:3] == ["name", "status", "val acc"] and set(shown) <= set(COLUMNS)
            assert cell_text(table, "t-mnist0", "val acc") == "99.0%"
            if width >= 120:
                assert "source" in shown and "rule" in shown

    run()


@async_test
async def test_dictionary_columns_come_back_when_the_terminal_widens(fixture_store):
    app = make_app(fixture_store)
    async with app.run_test(size=(60, 20)) as pilot:
        await settle(app, pilot)
        table = app.query_one("#tasks", DataTable)
        narrow = [str(c.key.value) for c in table.ordered_columns]
        await pilot.resize_terminal(200, 40)
        await settle(app, pilot)
        wide = [str(c.key.value) for c in table.ordered_columns]
        assert len(narrow) < len(wide) == len(COLUMNS) and whole(table)
        assert table.row_count == 6 and cell_text(table, "t-circle", "genotype") != "—"


@async_test
async def test_long_task_names_show_whole_at_wide_widths(long_names):
    app = make_app(long_names)
    async with app.run_test(size=(200, 50)) as pilot:
        await settle(app, pilot)
        table = app.query_one("#tasks", DataTable)
        assert cell_text(table, "t-long", "name") == LONG
        await pilot.press("2")
        await settle(app, pilot)
        matrix = app.query_one("#distance-table", DataTable)
        assert matrix.rows["t-long"].label.plain == LONG
        # seven columns of 41 cells do not fit 200: the column labels keep the family prefix and the end
        assert matrix.columns["t-long"].label.plain == "sk…hape"


@async_test
async def test_distance_matrix_names_whole_when_they_fit(medium_names):
    app = make_app(medium_names)
    async with app.run_test(size=(200, 50)) as pilot:
        await settle(app, pilot)
        await pilot.press("2")
        await settle(app, pilot)
        matrix = app.query_one("#distance-table", DataTable)
        assert matrix.rows["t-long"].label.plain == MEDIUM
        assert matrix.columns["t-long"].label.plain == MEDIUM
        assert whole(matrix)
        await pilot.resize_terminal(80, 24)    # too narrow for whole names: shortened
        await settle(app, pilot)
        assert matrix.columns["t-long"].label.plain == "sk…rcle"
