"""One format per quantity, everywhere (panels, CLI tables, headless lines): accuracy in percent, test error in
percent at 2 decimals, distances at 3 decimals (transfer distances, a percentage of weights kept, at 1), α shares at
3, losses at 4, parameter counts in k / M, rounds 1-based, cost as a duration beside device-hours."""
from __future__ import annotations

import math
from typing import Any, Mapping

DASH = "—"


def _real(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def pct(fraction: Any, digits: int = 1) -> str:
    """An accuracy in [0, 1] as "97.3%"."""
    return f"{100 * fraction:.{digits}f}%" if _real(fraction) else DASH


def test_error(percent: Any) -> str:
    """A test error the engine reports in percent: "1.25%"."""
    return f"{percent:.2f}%" if _real(percent) else DASH


def distance(value: Any, method: str = "fisher") -> str:
    """Fisher-type distances in [0, 1] at 3 decimals; transfer distances (a percentage of weights) at 1."""
    if not _real(value):
        return DASH
    return f"{value:.1f}" if method == "transfer" else f"{value:.3f}"


def share(p: Any) -> str:
    """A softmax(α) share or a similar weight in [0, 1]: "0.333"."""
    return f"{p:.3f}" if _real(p) else DASH


def loss(value: Any) -> str:
    return f"{value:.4f}" if _real(value) else DASH


def params(n: Any) -> str:
    """A parameter count: "2.50M", "123.5k"."""
    if not _real(n):
        return DASH
    return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n / 1e3:.1f}k"


def duration(seconds: Any) -> str:
    """3m16s, 1h05m, 42s."""
    if not _real(seconds):
        return DASH
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def device_hours(result: Mapping[str, Any] | None) -> float | None:
    """A run's cost in device-hours: its device seconds / 3600, the figure the result table uses (fixed networks'
    stored `cost_device_hours` was 0 before their training time counted); the stored figure when it has no seconds."""
    if not isinstance(result, Mapping):
        return None
    seconds, hours = result.get("seconds"), result.get("cost_device_hours")
    if _real(seconds):
        return seconds / 3600.0
    return hours if _real(hours) else None


def cost(result: Mapping[str, Any] | None) -> str:
    """A search's cost: "3m16s (0.0544 device-h)" from its result's seconds and device-hours."""
    hours = device_hours(result)
    if hours is None:
        return DASH
    return f"{duration(hours * 3600)} ({hours:.4f} device-h)"


def round_number(index: Any) -> str:
    """Stored rounds count from 0; people count from 1."""
    return str(int(index) + 1) if isinstance(index, int) or (_real(index) and float(index).is_integer()) else "?"
