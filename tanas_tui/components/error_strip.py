"""The compare view's per-arm error plot: each arm's test errors, one point per seed, with its 95 % interval and
mean, on one shared x axis (test error %) whose ticks sit at their values."""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from rich.text import Text

from tanas_tui.components.plots import PALETTE, nice_ticks

LEGEND = "● one seed  ├─┤ 95 % interval  ┃ mean"
SHORT_LEGEND = "● seed  ├┤ 95 % CI  ┃ mean"


def _finite(values: Sequence[Any]) -> list[float]:
    return [float(v) for v in values if isinstance(v, (int, float)) and not math.isnan(float(v))]


def arm_errors(row: Mapping[str, Any], runs: Mapping[str, Mapping[str, Any]]) -> list[float]:
    return _finite([runs.get(rid, {}).get("test_error") for rid in row.get("run_ids") or []])


def error_strips(rows: Sequence[Mapping[str, Any]], runs: Mapping[str, Mapping[str, Any]], width: int) -> Text:
    """The plot as text, `width` cells wide. Arm names go on a line of their own when a label column would leave
    the strips less than half the width."""
    width = max(24, width)
    values = []
    for row in rows:
        values += arm_errors(row, runs) + _finite([row.get("test_error_t_lo"), row.get("test_error_t_hi"),
                                                  row.get("test_error_mean")])
    head = Text("test error % per arm", style="bold")
    if not values:
        return head + Text("  (no finished runs)", style="dim")
    lo, hi = max(0.0, min(values)), min(100.0, max(values))
    if hi - lo < 1e-9:
        lo, hi = max(0.0, lo - 1), min(100.0, hi + 1)
    pad = (hi - lo) * 0.05
    lo, hi = max(0.0, lo - pad), min(100.0, hi + pad)
    label_w = max(len(str(r["arm"])) for r in rows) + 1
    inline = label_w <= width // 2
    lead = label_w if inline else 0
    cols = width - lead

    def x(v: float) -> int:
        return max(0, min(cols - 1, round((v - lo) / (hi - lo) * (cols - 1))))

    legend = LEGEND if head.cell_len + 3 + len(LEGEND) <= width else SHORT_LEGEND
    lines = [head + Text(f"   {legend}", style="dim")]
    for k, row in enumerate(rows):
        color = PALETTE[k % len(PALETTE)]
        cells = [" "] * cols
        t_lo, t_hi = row.get("test_error_t_lo"), row.get("test_error_t_hi")
        if isinstance(t_lo, (int, float)) and isinstance(t_hi, (int, float)) and not math.isnan(t_lo + t_hi):
            a, b = x(max(0.0, t_lo)), x(min(100.0, t_hi))
            for c in range(a, b + 1):
                cells[c] = "─"
            cells[a], cells[b] = "├", "┤"
        mean = row.get("test_error_mean")
        if isinstance(mean, (int, float)) and not math.isnan(mean):
            cells[x(mean)] = "┃"
        for v in arm_errors(row, runs):
            cells[x(v)] = "●"
        strip = Text("".join(cells), style=color)
        name = Text(str(row["arm"]), style=f"bold {color}")
        if inline:
            lines.append(Text.assemble(name, " " * (label_w - name.cell_len), strip))
        else:
            lines += [name, strip]
    axis, labels = ["─"] * cols, [" "] * cols
    for v in nice_ticks(lo, hi, max(2, min(6, cols // 10))):
        c = x(v)
        text = f"{v:g}"
        start = min(max(0, c - len(text) // 2), cols - len(text))
        if all(ch == " " for ch in labels[max(0, start - 1):start + len(text) + 1]):
            axis[c] = "┬"
            labels[start:start + len(text)] = text
    lines.append(Text(" " * lead + "".join(axis), style="dim"))
    tail = "".join(labels).rstrip()
    lines.append(Text(" " * lead + tail + ("  test error %" if len(tail) + 13 <= cols else ""), style="dim"))
    return Text("\n").join(lines)
