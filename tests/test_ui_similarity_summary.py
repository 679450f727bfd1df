"""The Distances panel's similarity summary line (tanas_tui/components/similarity_summary.py)."""
from __future__ import annotations

from ui_fixtures import async_test, fixture_store, make_app, settle  # noqa: F401


@async_test
async def test_distances_panel_shows_the_check_summary(fixture_store):
    app = make_app(fixture_store)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("2")
        await pilot.pause()
        line = app.query_one("#dist-quality").render().plain
        assert line.startswith("fisher: nearest same group ") and "contrast" in line and "(p " in line
        assert "noise floor not measured" in line
        await pilot.press("m")        # transfer: 3 tasks, one entry missing -> too few complete tasks
        await pilot.pause()
        assert app.query_one("#dist-quality").render().plain.startswith("transfer: not checked")
