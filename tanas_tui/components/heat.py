"""The distance heat scale: a colour ramp whose lightness grows with distance (darker is nearer), a text colour
chosen for contrast on every step, and a bar glyph per band so the scale still reads without colour (NO_COLOR)."""
from __future__ import annotations

import math
from typing import Iterable

from rich.color import Color
from rich.style import Style
from rich.text import Text

# viridis at 5 stops: monotone in lightness, readable for the common colour-vision deficiencies
STOPS = ((0.0, (68, 1, 84)), (0.25, (59, 82, 139)), (0.5, (33, 145, 140)), (0.75, (94, 201, 98)),
         (1.0, (253, 231, 37)))
GLYPHS = "▁▂▃▄▅▆▇█"
WHITE, BLACK = (255, 255, 255), (0, 0, 0)


def ramp(fraction: float) -> tuple[int, int, int]:
    f = min(1.0, max(0.0, fraction))
    for (f0, c0), (f1, c1) in zip(STOPS, STOPS[1:]):
        if f <= f1:
            t = 0.0 if f1 == f0 else (f - f0) / (f1 - f0)
            return tuple(round(a + (b - a) * t) for a, b in zip(c0, c1))  # type: ignore[return-value]
    return STOPS[-1][1]


def luminance(rgb: Iterable[int]) -> float:
    """WCAG relative luminance."""
    def channel(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: Iterable[int], b: Iterable[int]) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def text_colour(bg: tuple[int, int, int]) -> tuple[int, int, int]:
    return WHITE if contrast(WHITE, bg) >= contrast(BLACK, bg) else BLACK


def heat_style(fraction: float) -> Style:
    """Background and text for a cell at `fraction` of the scale (0 nearest, 1 farthest)."""
    if math.isnan(fraction):
        return Style(color="grey50")
    bg = ramp(fraction)
    return Style(bgcolor=Color.from_rgb(*bg), color=Color.from_rgb(*text_colour(bg)))


def glyph(fraction: float) -> str:
    f = min(1.0, max(0.0, fraction))
    return GLYPHS[min(len(GLYPHS) - 1, int(f * len(GLYPHS)))]


class Scale:
    """Maps a distance to [0, 1] over the off-diagonal computed values of a matrix (the zero diagonal would squeeze
    every real distance into the top bands)."""

    def __init__(self, values: Iterable[float]) -> None:
        finite = [v for v in values if not math.isnan(v)]
        self.lo = min(finite) if finite else 0.0
        self.hi = max(finite) if finite else 1.0
        self.empty = not finite

    def fraction(self, value: float) -> float:
        if math.isnan(value):
            return float("nan")
        span = self.hi - self.lo
        return 0.5 if span <= 1e-12 else min(1.0, max(0.0, (value - self.lo) / span))

    def legend(self, fmt, steps: int = 8) -> Text:
        t = Text()
        if self.empty:
            t.append("scale: no off-diagonal distance computed yet", style="dim")
            return t
        t.append("near ", style="bold")
        t.append(fmt(self.lo) + " ")
        for k in range(steps):
            f = k / max(1, steps - 1)
            t.append(glyph(f), style=heat_style(f))
        t.append(" " + fmt(self.hi))
        t.append(" far", style="bold")
        t.append("  (darker, lower bar = nearer; off-diagonal scale; · not computed)",
                 style="dim")
        return t
