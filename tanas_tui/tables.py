"""Rich tables the CLI prints from plain result rows."""
from __future__ import annotations

import statistics
from typing import Any, Iterable, Mapping

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tanas_tui.safe_text import SafeConsole, plain


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
    table.add_column("Architecture", no_wrap=True)
    table.add_column("Test error (%)", justify="right")
    table.add_column("Params (M)", justify="right")
    table.add_column("Search cost (device-hours)", justify="right")
    table.add_column("Seeds", justify="right")
    for name, group in groups.items():
        table.add_row(plain(name), _fmt([r["test_error"] for r in group], 2), _fmt([r["params_m"] for r in group], 3),
                      _fmt_cost([r.get("cost_device_hours") for r in group]), str(len(group)))
    return table


# The arms' table has ten columns: below this width (a log file, a pipe: 80 columns) it is printed this wide instead
# of squeezing every cell into several lines.
WIDE_TABLE = 210


def wide_console(console: Console) -> Console:
    """`console` itself on a terminal; otherwise a console like it that is at least WIDE_TABLE columns wide."""
    if console.is_terminal or console.width >= WIDE_TABLE:
        return console
    # like the CLI's console: no markup, so "[search]" in a note and "[/red]" in a task name print as written
    return SafeConsole(highlight=False, soft_wrap=False, markup=False, width=WIDE_TABLE, file=console.file)


def result_table(table: Mapping[str, Any], title: str | None = None) -> Table:
    """The arms side by side (a `ResultTable.to_dict()`): test error mean ± std with its 95 % t-interval (and the
    bootstrap interval over test samples × seeds), params, cost as a duration and device-hours, budget, and the
    paired difference from the reference arm with its p-value and verdict."""
    from engine.results.stats import NOT_DISTINGUISHABLE
    from engine.results.table import budget_text, duration_text, format_interval, format_number, format_p

    caption = [f"Δ: test error minus {table['reference']}'s, in points, paired over seeds and test samples"]
    grouped = any(r.get("config") for r in table["rows"])
    out = Table(title=None if title is None else plain(title),
                caption=plain("\n".join(caption + list(table.get("notes") or []))), caption_justify="left")
    for header, justify in (("Arm", "left"),) + ((("Config", "left"),) if grouped else ()) + (
            ("n", "right"), ("Test error %", "right"), ("95 % CI", "right"), ("Params (M)", "right"),
            ("Cost", "right"), ("Budget", "left"), ("Δ (pp)", "right"), ("p", "right"), ("Verdict", "left")):
        out.add_column(header, justify=justify, no_wrap=True)
    for r in table["rows"]:
        ci = format_interval(r.get("test_error_t_lo"), r.get("test_error_t_hi"))
        if r.get("test_error_boot_lo") is not None:
            ci += f"\nboot {format_interval(r['test_error_boot_lo'], r['test_error_boot_hi'])}"
        diff = "–" if r.get("diff_vs_reference") is None else (
            f"{format_number(r['diff_vs_reference'], 2, signed=True)} "
            f"{format_interval(r.get('diff_lo'), r.get('diff_hi'), signed=True)}")
        hours = r.get("cost_device_hours_mean")
        cost = f"{duration_text(r.get('device_seconds'))}\n{format_number(hours, 4)} dev-h"
        verdict = r.get("verdict") or "–"
        style = "bold yellow" if verdict == NOT_DISTINGUISHABLE else None
        out.add_row(plain(r["arm"]), *([plain(r.get("config") or "")] if grouped else []), str(r.get("repeats", "")),
                    f"{format_number(r.get('test_error_mean'), 2)} ± {format_number(r.get('test_error_std'), 2)}",
                    ci, f"{format_number(r.get('params_m_mean'), 3)} ± {format_number(r.get('params_m_std'), 3)}",
                    cost, budget_text(r), diff, format_p(r.get("p_value")), Text(verdict, style=style or ""))
    return out
