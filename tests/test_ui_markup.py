"""The UI shows task names with markup and control characters as text: no crash, nothing eaten, no raw ESC."""
from __future__ import annotations

from textual.widgets import DataTable, Static

from store import Store
from ui_fixtures import async_test, cell_text, make_app, settle

NASTY = "[/x] [bold]b\x1b[2J"


@async_test
async def test_the_dictionary_and_distances_show_nasty_names_as_text(tmp_path):
    path = tmp_path / "s.zarr"
    with Store.open(path, "w", create=True) as st:
        st.add_task("t1", {"name": NASTY, "status": "ready", "source": "[red]src", "rule": "is [/b]",
                           "definition": {"name": NASTY, "source": "sketches", "positive": ["circle"]}})
        st.add_task("t2", {"name": "plain", "status": "ready"})
        for t in ("t1", "t2"):
            st.add_distance_task("fisher", t)
        st.set_distance("fisher", "t1", "t2", 0.25)
    app = make_app(path)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        table = app.query_one("#tasks", DataTable)
        assert cell_text(table, "t1", "name") == "[/x] [bold]b\\x1b[2J"
        assert cell_text(table, "t1", "source") == "[red]src"
        detail = app.query_one("#task-detail", Static).render().plain
        assert "[/x] [bold]b\\x1b[2J" in detail and "\x1b" not in detail
        app.notify(f"task {NASTY} removed")
        await pilot.press("2")  # the distances tab
        await settle(app, pilot)
