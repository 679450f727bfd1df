"""Text graphics: sparklines, horizontal bars, heat colours and a braille line plot (2×4 dots per character)."""
from __future__ import annotations

import math
from typing import Sequence

from rich.color import Color
from rich.style import Style
from rich.text import Text

SPARK = "▁▂▃▄▅▆▇█"
PALETTE = ("#4fc3f7", "#ffb74d", "#81c784", "#e57373", "#ba68c8", "#fff176", "#4db6ac", "#f06292")
# Braille dot bits by (column, row) inside one character cell.
_DOTS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))


def sparkline(values: Sequence[float], width: int = 12, lo: float | None = None, hi: float | None = None) -> str:
    vals = [v for v in values if not math.isnan(v)]
    if not vals:
        return ""
    if len(vals) > width:
        # keep the most recent `width` points so a live series scrolls
        vals = vals[-width:]
    lo = min(vals) if lo is None else lo
    hi = max(vals) if hi is None else hi
    span = hi - lo
    if span <= 1e-12:
        return SPARK[len(SPARK) // 2] * len(vals)
    return "".join(SPARK[min(len(SPARK) - 1, max(0, int((v - lo) / span * (len(SPARK) - 1) + 0.5)))] for v in vals)


def bar(fraction: float, width: int = 20) -> str:
    """A horizontal bar with eighth-block resolution."""
    fraction = 0.0 if math.isnan(fraction) else min(1.0, max(0.0, fraction))
    eighths = int(round(fraction * width * 8))
    full, rest = divmod(eighths, 8)
    partial = " ▏▎▍▌▋▊▉"[rest] if rest else ""
    return ("█" * full + partial).ljust(width)


def heat_style(fraction: float) -> Style:
    """Background for a matrix cell: dark blue (near) through teal and yellow to red (far)."""
    if math.isnan(fraction):
        return Style(color="grey50")
    f = min(1.0, max(0.0, fraction))
    stops = ((0.0, (20, 40, 110)), (0.35, (20, 130, 140)), (0.7, (210, 190, 60)), (1.0, (200, 50, 40)))
    for (f0, c0), (f1, c1) in zip(stops, stops[1:]):
        if f <= f1:
            t = 0.0 if f1 == f0 else (f - f0) / (f1 - f0)
            rgb = tuple(int(a + (b - a) * t) for a, b in zip(c0, c1))
            break
    brightness = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    fg = "black" if brightness > 140 else "white"
    return Style(bgcolor=Color.from_rgb(*rgb), color=fg)


class BrailleCanvas:
    """A width×height character canvas with 2×4 sub-pixels per character; each cell keeps its last colour."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = max(1, width), max(1, height)
        self.bits = [[0] * self.width for _ in range(self.height)]
        self.colors: list[list[str | None]] = [[None] * self.width for _ in range(self.height)]

    def dot(self, x: int, y: int, color: str) -> None:
        if 0 <= x < self.width * 2 and 0 <= y < self.height * 4:
            cx, cy = x // 2, y // 4
            self.bits[cy][cx] |= _DOTS[x % 2][y % 4]
            self.colors[cy][cx] = color

    def line(self, x0: int, y0: int, x1: int, y1: int, color: str) -> None:
        steps = max(abs(x1 - x0), abs(y1 - y0), 1)
        for i in range(steps + 1):
            self.dot(round(x0 + (x1 - x0) * i / steps), round(y0 + (y1 - y0) * i / steps), color)

    def render(self) -> Text:
        text = Text()
        for r in range(self.height):
            bits, colors = self.bits[r], self.colors[r]
            c = 0
            while c < self.width:
                # one span per run of a colour keeps the Text small
                color, start = colors[c] if bits[c] else None, c
                while c < self.width and (colors[c] if bits[c] else None) == color:
                    c += 1
                text.append("".join(chr(0x2800 + b) if b else " " for b in bits[start:c]), style=color or "")
            if r < self.height - 1:
                text.append("\n")
        return text


def _tick(v: float) -> str:
    if v == 0:
        return "0"
    return f"{v:.3g}" if 1e-3 <= abs(v) < 1e4 else f"{v:.1e}"


def axis_plot(series: Sequence[tuple[str, Sequence[float]]], width: int, height: int, title: str = "", *,
              steps: Sequence[int] | None = None, boundaries: Sequence[tuple[int, str]] = (),
              x_label: str = "step", y_label: str = "") -> Text:
    """A braille line plot with a y axis (ticks at the bottom, middle and top of the range; its title `y_label`
    heads line 1), an x axis (round 1-based step numbers, each written under the column where that step is drawn:
    point i is step `steps[i]`, default i) and dotted vertical lines at `boundaries` (step index, label), e.g. the
    starts of search rounds, whose labels win over a step number they would overlap. Line 1 holds the y axis's title,
    the plot's title and the legend."""
    import bisect

    width, height = max(20, width), max(5, height)
    finite = [v for _, ys in series for v in ys if not math.isnan(v)]
    head = Text(f"{y_label} ↑ " if y_label else "", style="dim")
    head.append(title + " " if title else "", style="bold")
    if not finite:
        head.append("(no data yet)", style="dim")
        return head
    lo, hi = min(finite), max(finite)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    n = max(len(ys) for _, ys in series)
    rows = height - 3
    ticks = {0: _tick(hi), rows - 1: _tick(lo)}
    if rows >= 5:
        ticks[(rows - 1) // 2] = _tick(lo + (hi - lo) * (1 - ((rows - 1) // 2) / (rows - 1)))
    yw = max(len(t) for t in ticks.values())
    cw = width - yw - 1
    canvas = BrailleCanvas(cw, rows)
    px_w, px_h = canvas.width * 2 - 1, canvas.height * 4 - 1

    def px(i: float) -> int:
        return round(i / max(1, n - 1) * px_w)

    points = list(steps) if steps is not None else list(range(n))
    marks = []
    for b, label in boundaries:
        pos = bisect.bisect_left(points, b)
        if 0 < pos < n:
            x = px(pos)
            marks.append((x // 2, label))
            for y in range(0, px_h + 1, 2):
                canvas.dot(x, y, "grey42")
    for k, (label, ys) in enumerate(series):
        color = PALETTE[k % len(PALETTE)]
        prev = None
        for i, v in enumerate(ys):
            if math.isnan(v):
                prev = None
                continue
            x, y = px(i), px_h - round((v - lo) / (hi - lo) * px_h)
            if prev is None:
                canvas.dot(x, y, color)
            else:
                canvas.line(prev[0], prev[1], x, y, color)
            prev = (x, y)
        head.append(f"━ {label} ", style=color)
    head.truncate(width, overflow="ellipsis")
    lines = [head]
    body = canvas.render().split("\n")
    for r, line in enumerate(body):
        t = Text(ticks.get(r, "").rjust(yw), style="dim")
        t.append("┤" if r in ticks else "│", style="dim")
        t.append_text(line)
        lines.append(t)
    # x axis: the boundaries' labels first, then round step numbers (1-based) in the free room, each under its point
    axis = ["─"] * cw
    labels = [" "] * cw

    def free(start: int, end: int) -> bool:
        return 0 <= start and end <= cw and all(c == " " for c in labels[max(0, start - 1):end + 1])

    for c, label in marks:
        if c < cw:
            axis[c] = "╫"
            start = max(0, min(cw - len(label), c))
            if free(start, start + len(label)):
                labels[start:start + len(label)] = label
    if x_label and free(cw - len(x_label) - 1, cw):
        labels[cw - len(x_label):] = x_label   # the axis's title, at its right end
    first, last = points[0] + 1, points[min(n, len(points)) - 1] + 1
    for value in [first] + (nice_ticks(first, last, max(2, cw // 8)) if last > first else []):
        # the drawn point nearest that round number, labelled with its own step (a thinned plot's steps are not
        # round): the label is always the step drawn above it
        pos = min(bisect.bisect_left(points, int(value) - 1), n - 1)
        if pos > 0 and abs(points[pos - 1] + 1 - value) <= abs(points[pos] + 1 - value):
            pos -= 1
        c = px(pos) // 2
        text = str(points[pos] + 1)
        start = min(max(0, c - len(text) // 2), cw - len(text))
        if axis[c] == "─" and free(start, start + len(text)):
            axis[c] = "┬"
            labels[start:start + len(text)] = text
    lines.append(Text(" " * yw + "└" + "".join(axis), style="dim"))
    lines.append(Text(" " * (yw + 1) + "".join(labels).rstrip(), style="dim"))
    return Text("\n").join(lines)


def nice_ticks(lo: float, hi: float, most: int = 6) -> list[float]:
    """Round tick values (1, 2 or 5 × 10^k apart) inside [lo, hi], at most `most` of them."""
    span = hi - lo
    if not span > 0 or math.isnan(span):
        return [lo]
    raw = span / max(1, most - 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    out, v = [], first
    while v <= hi + step * 1e-9:
        out.append(round(v, 10))
        v += step
    return out
