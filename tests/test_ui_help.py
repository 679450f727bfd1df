"""The `?` screen (issue 11 item 13): the key column never wraps and 80×24 shows most keys without scrolling."""
from __future__ import annotations

from rich.console import Console
from textual.containers import VerticalScroll

from tanas_tui.components.help_screen import KEYS, HelpScreen, help_table
from ui_fixtures import async_test, fixture_store, make_app, settle  # noqa: F401


@async_test
async def test_help_fits_80x24(fixture_store):
    app = make_app(fixture_store)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("question_mark")
        await pilot.pause(0.2)
        assert isinstance(app.screen, HelpScreen)
        scroll = app.screen.query_one(VerticalScroll)
        width, height = scroll.content_size.width, scroll.content_size.height
        console = Console(width=width, record=True)
        console.print(help_table())
        lines = console.export_text().splitlines()
        for key, where, _ in KEYS:
            assert any(line.split(where)[0].strip() == key for line in lines if where in line), key
        # rows of the table (after the title and the header line) that show without scrolling
        visible = [line for line in lines[1:height - 1] if line.strip() and not line.startswith("    ")]
        assert len(visible) >= 12, (height, lines)
