"""The plots' axes (issue 23 item 7): every x tick label is the number of the step drawn in its column (also when
the steps are thinned or uneven, and with round labels that win over a tick they would overlap), and the y axis has
a title."""
from __future__ import annotations

import re

import pytest

from tanas_tui.components.plots import axis_plot


@pytest.mark.parametrize("steps", [list(range(30)), list(range(0, 400, 7)), [0, 1, 2, 5, 9, 14, 20, 27, 35, 44]])
def test_x_tick_labels_are_the_steps_drawn_above_them(steps):
    n = len(steps)
    # one series rising by one per point: the drawn column of point i is where its dot is
    ys = [float(i) for i in range(n)]
    width, height = 70, 12
    text = axis_plot([("s", ys)], width, height, "loss", steps=steps, boundaries=[(steps[n // 3], "R2")],
                     y_label="cross-entropy").plain
    lines = text.split("\n")
    assert lines[0].startswith("cross-entropy ↑ loss")            # the y axis's title
    axis, labels = lines[-2], lines[-1]
    origin = axis.index("└") + 1
    body = lines[1:-2]
    ticks = [c for c, ch in enumerate(axis) if ch == "┬"]
    assert len(ticks) >= 2
    for c in ticks:
        label = next(m for m in re.finditer(r"\d+", labels) if m.start() <= c < m.end() + 1)
        step = int(label.group()) - 1                             # labels are 1-based
        assert step in steps, (label.group(), steps)
        i = steps.index(step)
        # the point drawn in this column is point i: its dot sits in the column, on the row of its value
        rows_with_dot = [r for r, line in enumerate(body) if c < len(line) and "⠀" < line[c] <= "⣿"]
        assert rows_with_dot, (c, i)
        expected = round(i / max(1, n - 1) * ((width - origin) * 2 - 1)) // 2 + origin
        assert abs(expected - c) <= 1, (c, expected, i)
    assert "R2" in labels and labels.rstrip().endswith("step")
    # no two labels run into each other ("R25", "R3 10")
    assert not re.search(r"R\d\d|\dR", labels)
