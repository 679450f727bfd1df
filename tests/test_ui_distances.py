"""The distance heat map (issue 11 item 10): scale over off-diagonal values, a legend, readable text on every colour
and without colour, target column first, rows sorted by distance to a target, full names in the detail line."""
from __future__ import annotations

import re

from textual.widgets import DataTable

from tanas_tui.components.heat import GLYPHS, Scale, contrast, heat_style, ramp, text_colour
from ui_fixtures import async_test, cell_text, fisher_value, fixture_store, make_app, settle  # noqa: F401


def test_every_heat_colour_has_readable_text():
    for k in range(101):
        bg = ramp(k / 100)
        assert contrast(text_colour(bg), bg) >= 4.5, (k, bg)
        style = heat_style(k / 100)
        assert style.bgcolor is not None and style.color is not None


def test_darker_is_nearer_and_the_scale_ignores_the_diagonal():
    from tanas_tui.components.heat import luminance

    lums = [luminance(ramp(k / 10)) for k in range(11)]
    assert lums == sorted(lums)
    scale = Scale([0.08, 0.31, 0.12, float("nan")])
    assert (scale.lo, scale.hi) == (0.08, 0.31)
    assert scale.fraction(0.08) == 0.0 and scale.fraction(0.31) == 1.0


@async_test
async def test_heat_cells_use_the_whole_scale_and_carry_a_glyph(fixture_store):
    app = make_app(fixture_store)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("2")
        await pilot.pause()
        table = app.query_one("#distance-table", DataTable)
        glyphs = set()
        for row in table.rows:
            for col in table.columns:
                text = cell_text(table, row.value, col.value)
                if row.value == col.value:
                    assert text.strip() == "—"
                else:
                    glyphs.add(text.strip()[-1])
        # the nearest off-diagonal cell has the lowest band, the farthest the highest
        assert GLYPHS[0] in glyphs and GLYPHS[-1] in glyphs
        legend = app.query_one("#dist-legend").render().plain
        off = [fisher_value(i, j) for i in range(6) for j in range(6) if i != j]
        assert f"near {min(off):.3f}" in legend and f"{max(off):.3f} far" in legend and GLYPHS in legend


@async_test
async def test_target_first_sort_by_target_and_full_names(fixture_store):
    app = make_app(fixture_store)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("2")
        await pilot.pause()
        table = app.query_one("#distance-table", DataTable)
        table.cursor_coordinate = (0, list(table.columns).index("t-moon"))
        await pilot.pause()
        await pilot.press("n", "f", "o")
        await pilot.pause()
        assert [c.value for c in table.columns][0] == "t-moon"
        assert table.fixed_columns == 1
        rows = [r.value for r in table.rows]
        values = [float(re.search(r"[0-9.]+", cell_text(table, r, "t-moon")).group()) for r in rows[:-1]]
        assert values == sorted(values) and rows[-1] == "t-moon"
        # the cursor stays on its cell (mnist-0 → moon) and the detail line names both tasks in full, with the rank
        detail = app.query_one("#dist-detail").render().plain
        assert "d(mnist-0 → moon)" in detail and "rank" in detail
        await pilot.press("o", "f")
        await pilot.pause()
        assert [r.value for r in table.rows][0] == "t-mnist0"
        assert [c.value for c in table.columns][0] == "t-mnist0"
