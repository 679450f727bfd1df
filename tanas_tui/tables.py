"""Rich tables the CLI prints from plain result rows."""
from __future__ import annotations

import statistics
from typing import Any, Iterable, Mapping

from rich.table import Table

from tanas_tui.safe_text import plain


def _fmt(values: list[float], digits: int) -> str:
    mean = statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def _fmt_cost(values: list[float | None]) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return "–"
    mean = statistics.fmean(vals)
    digits = 2 if mean >= 0.1 else 4
    if len(vals) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {statistics.stdev(vals):.{digits}f}"


def comparison_table(rows: Iterable[Mapping[str, Any]], title: str | None = None) -> Table:
    """The paper's table: architecture, test error %, params (M), search cost (device-hours).

    Rows with the same architecture (one per seed) are merged into mean ± sample standard deviation.
    """
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["architecture"], []).append(row)
    devices = sorted({str(r.get("device")) for g in groups.values() for r in g if r.get("device")})
    table = Table(title=title, caption=f"device: {', '.join(devices)}" if devices else None)
    table.add_column("Architecture")
    table.add_column("Test error (%)", justify="right")
    table.add_column("Params (M)", justify="right")
    table.add_column("Search cost (device-hours)", justify="right")
    table.add_column("Seeds", justify="right")
    for name, group in groups.items():
        table.add_row(plain(name), _fmt([r["test_error"] for r in group], 2), _fmt([r["params_m"] for r in group], 3),
                      _fmt_cost([r.get("cost_device_hours") for r in group]), str(len(group)))
    return table
