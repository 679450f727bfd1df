"""The budget sweep of a result table as text: each arm's test error against its search budget (a plot with axes),
and the table's verdict at each budget. Plain strings (no Rich, no markup), for `searches compare --plot` and the
app's compare view; the input is `ResultTable.to_dict()`."""
from __future__ import annotations

from typing import Any

__all__ = ["budgets", "sweep_plot", "sweep_verdicts"]

MARKERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"


def budgets(table: dict[str, Any]) -> list[tuple[str, float]]:
    """(config label, FUSE budget in candidate-epochs) per configuration group, by budget: the x axis."""
    out: dict[str, float] = {}
    for r in table["rows"]:
        if r.get("budget_unit") == "candidate-epochs" and r.get("budget_epochs") is not None:
            out.setdefault(r.get("config") or "", float(r["budget_epochs"]))
    return sorted(out.items(), key=lambda kv: kv[1])


def _arms(table: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(r["arm"] for r in table["rows"]))


def sweep_plot(table: dict[str, Any], width: int = 64, height: int = 16) -> str:
    """Test error (mean and 95 % t-interval, per arm) against the search budget, one column band per budget."""
    xs = budgets(table)
    if not xs:
        return "no searched arm has a budget in candidate-epochs: nothing to plot"
    arms = _arms(table)
    marker = {arm: MARKERS[i % len(MARKERS)] for i, arm in enumerate(arms)}
    points = []   # (x index, arm, mean, lo, hi)
    for r in table["rows"]:
        label = r.get("config") or ""
        idx = next((i for i, (name, _) in enumerate(xs) if name == label), None)
        if idx is None or r.get("test_error_mean") is None:
            continue
        mean = float(r["test_error_mean"])
        lo = float(r["test_error_t_lo"]) if r.get("test_error_t_lo") is not None else mean
        hi = float(r["test_error_t_hi"]) if r.get("test_error_t_hi") is not None else mean
        points.append((idx, r["arm"], mean, lo, hi))
    if not points:
        return "no row has a test error: nothing to plot"
    y_lo = min(p[3] for p in points)
    y_hi = max(p[4] for p in points)
    if y_hi - y_lo < 1e-9:
        y_lo, y_hi = y_lo - 0.5, y_hi + 0.5
    pad = (y_hi - y_lo) * 0.05
    y_lo, y_hi = max(0.0, y_lo - pad), min(100.0, y_hi + pad)
    tick_w = max(len(f"{y_hi:.1f}"), len(f"{y_lo:.1f}"))
    plot_w = max(width - tick_w - 3, 8 * len(xs))
    band = plot_w // len(xs)
    grid = [[" "] * plot_w for _ in range(height)]

    def row_of(y: float) -> int:
        return min(height - 1, max(0, round((y_hi - y) / (y_hi - y_lo) * (height - 1))))

    per_band: dict[int, int] = {}
    for idx, arm, mean, lo, hi in points:
        slot = per_band.get(idx, 0)
        per_band[idx] = slot + 1
        n_here = sum(1 for p in points if p[0] == idx)
        col = idx * band + (slot + 1) * band // (n_here + 1)
        for rr in range(row_of(hi), row_of(lo) + 1):
            grid[rr][col] = "│" if grid[rr][col] == " " else grid[rr][col]
        grid[row_of(mean)][col] = marker[arm]
    lines = ["test error % (mean │ 95 % t-interval)"]
    for i, cells in enumerate(grid):
        y = y_hi - i * (y_hi - y_lo) / (height - 1)
        tick = f"{y:.1f}" if i in (0, height // 2, height - 1) else ""
        lines.append(f"{tick:>{tick_w}} ┤" + "".join(cells))
    lines.append(" " * tick_w + " └" + "┴".join("─" * (band - 1) for _ in xs) + "─" * (plot_w - band * len(xs) + 1))
    labels = "".join(f"{_budget_label(v):^{band}}" for _, v in xs)
    lines.append(" " * (tick_w + 2) + labels)
    lines.append(" " * (tick_w + 2) + "search budget (candidate-epochs of the FUSE arms; "
                 + ", ".join(f"{_budget_label(v)} = {name or 'the config'}" for name, v in xs) + ")")
    lines.append("arms: " + "   ".join(f"{marker[a]} {a}" for a in arms))
    return "\n".join(lines)


def _budget_label(value: float) -> str:
    return f"{value:g}"


def sweep_verdicts(table: dict[str, Any]) -> list[str]:
    """One line per budget: each arm's verdict against the reference arm at that budget."""
    out = []
    for name, value in budgets(table):
        rows = [r for r in table["rows"] if (r.get("config") or "") == name and r.get("verdict") != "reference"]
        parts = [f"{r['arm']}: {r.get('verdict') or 'not compared'}"
                 + (f" ({r['diff_vs_reference']:+.2f} pp)" if r.get("diff_vs_reference") is not None else "")
                 for r in rows]
        out.append(f"budget {_budget_label(value)} ({name or 'the config'}), against {table['reference']}: "
                   + ("; ".join(parts) or "no other arm"))
    return out
