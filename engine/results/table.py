"""The comparison table as plain data, and its JSON / CSV / Markdown renderings (numpy only, no torch).

`build_table` turns every arm's repeats (`ArmRun`, one per arm and seed) into one row per arm: test error, params and
cost as mean ± std with a 95 % t-interval over seeds, a bootstrap interval of the test error over test samples ×
seeds, the budget the arm got (candidate-epochs or network-epochs, and device time), and its paired comparison with
the reference arm (difference in error, interval, p-value, verdict). The same `ResultTable` feeds the CLI table,
`searches compare --json|--csv|--markdown` and the UI's compare view; `provenance` records what produced it.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import platform
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Sequence

import numpy as np

from engine.results.stats import (
    ERROR_RANGE, NOT_DISTINGUISHABLE, bootstrap_error_interval, compare_paired, compare_seed_errors, summarize,
)

__all__ = ["ArmRun", "ResultTable", "COLUMNS", "build_table", "provenance", "config_hash", "to_json", "to_csv",
           "to_markdown", "export_rows", "budget_text", "duration_text", "format_number", "format_interval",
           "format_p"]

PACKAGES = ("tanas-tui", "torch", "numpy", "torchvision", "zarr")


@dataclass(frozen=True)
class ArmRun:
    """One repeat of one arm. `correct`: per test sample, in the target's fixed test order (None when not kept).
    `budget_epochs` counts candidate-epochs for searches (each candidate's weight epochs, summed) and
    network-epochs for fixed networks; `budget_unit` says which."""

    arm: str
    seed: int
    test_error: float                 # percent
    params: float
    cost_device_hours: float
    budget_epochs: float
    budget_unit: str                  # "candidate-epochs" | "network-epochs"
    device_seconds: float
    correct: Sequence[bool] | None = None
    run_id: str = ""
    final_epochs: int = 0             # the winner's retraining, on top of budget_epochs
    config: str = ""                  # the configuration group (a hash): rows never pool runs of different ones
    config_label: str = ""            # what sets it apart from the table's other configurations ("rounds=6")


# (key, header, kind, export name) in display order. The key is the row's field (what the protocol and the UI read);
# the export name, which carries the unit, is the CSV header and the JSON field of `searches compare`; kind drives
# number formatting in the text renderings.
COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ("arm", "arm", "text", "arm"),
    ("config", "config", "text", "config"),
    ("config_hash", "config hash", "text", "config_hash"),
    ("repeats", "repeats", "int", "repeats"),
    ("seeds", "seeds", "list", "seeds"),
    ("n_test", "test samples", "int", "n_test"),
    ("test_error_mean", "test error %", "pct", "test_error_pct_mean"),
    ("test_error_std", "± std", "pct", "test_error_pct_std"),
    ("test_error_t_lo", "95% t-int lo", "pct", "test_error_pct_t_lo"),
    ("test_error_t_hi", "95% t-int hi", "pct", "test_error_pct_t_hi"),
    ("test_error_boot_lo", "95% boot lo", "pct", "test_error_pct_boot_lo"),
    ("test_error_boot_hi", "95% boot hi", "pct", "test_error_pct_boot_hi"),
    ("params_m_mean", "params M", "m", "params_millions_mean"),
    ("params_m_std", "± std", "m", "params_millions_std"),
    ("params_m_lo", "95% lo", "m", "params_millions_lo"),
    ("params_m_hi", "95% hi", "m", "params_millions_hi"),
    ("cost_device_hours_mean", "cost device-h", "h", "cost_device_hours_mean"),
    ("cost_device_hours_std", "± std", "h", "cost_device_hours_std"),
    ("cost_device_hours_lo", "95% lo", "h", "cost_device_hours_lo"),
    ("cost_device_hours_hi", "95% hi", "h", "cost_device_hours_hi"),
    ("budget_epochs", "budget", "num", "budget_epochs"),
    ("budget_unit", "budget unit", "text", "budget_unit"),
    ("final_epochs", "final epochs", "num", "final_epochs"),
    ("device_seconds", "device s", "num", "device_seconds"),
    ("diff_vs_reference", "Δ error vs ref (pp)", "pct", "diff_vs_reference_pp"),
    ("diff_lo", "Δ 95% lo", "pct", "diff_vs_reference_pp_lo"),
    ("diff_hi", "Δ 95% hi", "pct", "diff_vs_reference_pp_hi"),
    ("p_value", "p", "p", "p_value"),
    ("test", "test", "text", "test"),
    ("verdict", "verdict", "text", "verdict"),
)
# a comparison's own fields (PairedComparison.to_dict) under their exported, unit-carrying names
COMPARISON_EXPORT = {"diff": "diff_pp", "lo": "diff_pp_lo", "hi": "diff_pp_hi"}


@dataclass
class ResultTable:
    reference: str
    alpha: float
    rows: list[dict[str, Any]]
    provenance: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        return [c[0] for c in COLUMNS]

    def to_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "alpha": self.alpha, "columns": self.columns,
                "rows": [{**{k: _plain(r.get(k)) for k in self.columns}, "run_ids": list(r.get("run_ids", [])),
                          **({"comparison": _plain(r["comparison"])} if "comparison" in r else {})}
                         for r in self.rows],
                "provenance": _plain(self.provenance), "notes": list(self.notes)}


def config_hash(config: Any) -> str:
    """sha256 of the config's canonical JSON (sorted keys), the first 16 hex digits."""
    text = json.dumps(_plain(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def provenance(config: Any, seeds: Sequence[int], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """What produced a table: config hash (and the config), seeds, Python and package versions."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"config_hash": config_hash(config), "seeds": sorted({int(s) for s in seeds}), "packages": versions,
            "platform": platform.platform(), **(extra or {}), "config": _plain(config)}


def build_table(runs: Sequence[ArmRun], reference: str, *, prov: dict[str, Any] | None = None, alpha: float = 0.05,
                n_boot: int = 2000, seed: int = 0) -> ResultTable:
    """One row per configuration and arm (both in first-seen order), each compared with the reference arm of its own
    configuration (`ArmRun.config`: runs of different configurations are never pooled); the reference's own
    comparison columns stay empty."""
    groups: dict[str, dict[str, list[ArmRun]]] = {}
    for r in runs:
        groups.setdefault(r.config, {}).setdefault(r.arm, []).append(r)
    if not any(reference in by_arm for by_arm in groups.values()):
        arms = dict.fromkeys(r.arm for r in runs)
        raise ValueError(f"reference arm {reference!r} has no runs (arms: {', '.join(arms) or 'none'})")
    notes: list[str] = []
    rows = []
    for by_arm in groups.values():
        for arm, rs in by_arm.items():
            seeds = [r.seed for r in rs]
            if len(set(seeds)) != len(seeds):
                raise ValueError(f"arm {arm!r} has repeated seeds {sorted(seeds)}: one run per arm and seed")
            if len({r.budget_unit for r in rs}) != 1:
                raise ValueError(f"arm {arm!r} mixes budget units {sorted({r.budget_unit for r in rs})}")
        ref = by_arm.get(reference)
        if ref is None:
            label = next(iter(by_arm.values()))[0].config_label or "another configuration"
            notes.append(f"{label}: no {reference!r} runs, so its rows are not compared")
        for arm, rs in by_arm.items():
            row, cmp_notes = _row(arm, sorted(rs, key=lambda r: r.seed), reference, ref, alpha, n_boot, seed)
            rows.append(row)
            notes += cmp_notes
    units = {r["budget_unit"] for r in rows}
    if len(units) > 1:
        notes.append("budgets are in different units (" + ", ".join(sorted(units)) + "): compare device time too")
    if any(r["verdict"] == NOT_DISTINGUISHABLE for r in rows):
        notes.append(f"'{NOT_DISTINGUISHABLE}': not separated from {reference!r} at α={alpha}: distinguishable needs "
                     f"both the pooled McNemar p (the p column) < α and the paired bootstrap interval over seeds and "
                     f"test samples (the Δ interval) excluding 0")
    return ResultTable(reference=reference, alpha=alpha, rows=rows, provenance=dict(prov or {}), notes=notes)


def _row(arm: str, rs: list[ArmRun], reference: str, ref: list[ArmRun] | None, alpha: float, n_boot: int,
         seed: int) -> tuple[dict[str, Any], list[str]]:
    """One arm's row of one configuration, and the notes of its comparison with `ref` (None: not compared)."""
    err = summarize([r.test_error for r in rs], bounds=ERROR_RANGE)
    params = summarize([r.params / 1e6 for r in rs], bounds=(0.0, math.inf))
    cost = summarize([r.cost_device_hours for r in rs], bounds=(0.0, math.inf))
    has_samples = all(r.correct is not None for r in rs)
    row: dict[str, Any] = {
        "arm": arm, "config": rs[0].config_label, "config_hash": rs[0].config, "repeats": len(rs),
        "seeds": [r.seed for r in rs], "n_test": len(rs[0].correct) if has_samples else None,
        "test_error_mean": err.mean, "test_error_std": err.std, "test_error_t_lo": err.lo, "test_error_t_hi": err.hi,
        "test_error_boot_lo": None, "test_error_boot_hi": None,
        "params_m_mean": params.mean, "params_m_std": params.std, "params_m_lo": params.lo, "params_m_hi": params.hi,
        "cost_device_hours_mean": cost.mean, "cost_device_hours_std": cost.std, "cost_device_hours_lo": cost.lo,
        "cost_device_hours_hi": cost.hi,
        "budget_epochs": float(np.mean([r.budget_epochs for r in rs])), "budget_unit": rs[0].budget_unit,
        "final_epochs": float(np.mean([r.final_epochs for r in rs])),
        "device_seconds": float(np.mean([r.device_seconds for r in rs])),
        "diff_vs_reference": None, "diff_lo": None, "diff_hi": None, "p_value": None, "test": None,
        "verdict": "reference" if arm == reference else None,
        "run_ids": [r.run_id for r in rs],
    }
    if has_samples:
        lengths = {len(r.correct) for r in rs}
        if len(lengths) != 1:
            raise ValueError(f"arm {arm!r}: per-sample results differ in length across seeds {sorted(lengths)}")
        row["test_error_boot_lo"], row["test_error_boot_hi"] = bootstrap_error_interval(
            [r.correct for r in rs], level=1 - alpha, n_boot=n_boot, seed=seed)
    if arm == reference or ref is None:
        return row, []
    if has_samples and all(r.correct is not None for r in ref):
        cmp = compare_paired(arm, {r.seed: r.correct for r in rs}, reference, {r.seed: r.correct for r in ref},
                             alpha=alpha, n_boot=n_boot, seed=seed)
    else:
        cmp = compare_seed_errors(arm, {r.seed: r.test_error for r in rs}, reference,
                                  {r.seed: r.test_error for r in ref}, alpha=alpha)
    row.update(diff_vs_reference=cmp.diff, diff_lo=cmp.lo, diff_hi=cmp.hi, p_value=cmp.p_value, test=cmp.method,
               verdict=cmp.verdict, comparison=cmp.to_dict())
    return row, [f"{arm}: {n}" for n in cmp.notes]


# -- renderings -------------------------------------------------------------------------------------------------------
def export_rows(table: ResultTable) -> list[dict[str, Any]]:
    """The rows under their export names (units in the names: `test_error_pct_mean`, `diff_vs_reference_pp`...)."""
    out = []
    for r in table.rows:
        row = {name: _plain(r.get(key)) for key, _, _, name in COLUMNS}
        row["run_ids"] = list(r.get("run_ids", []))
        if "comparison" in r:
            row["comparison"] = {COMPARISON_EXPORT.get(k, k): v for k, v in _plain(r["comparison"]).items()}
        out.append(row)
    return out


def to_json(table: ResultTable) -> str:
    """The full table (rows with every comparison detail, provenance, notes) under the export names; NaN becomes
    null. `alpha` is the significance level of the verdicts."""
    data = {"reference": table.reference, "alpha": table.alpha, "columns": [c[3] for c in COLUMNS],
            "rows": export_rows(table), "provenance": _plain(table.provenance), "notes": list(table.notes)}
    return json.dumps(data, indent=2, allow_nan=False)


def to_csv(table: ResultTable) -> str:
    """The provenance first, as `# key: value` comment lines, then one header line of export names and one line per
    row (full precision): `pandas.read_csv(f, comment="#")` reads exactly the rows (a cell holding "#" is quoted)."""
    buf = io.StringIO()
    for key, value in _provenance_lines(table):
        buf.write(f"# {_one_line(key)}: {_one_line(value)}\n")
    for note in table.notes:
        buf.write(f"# note: {_one_line(note)}\n")
    w = csv.writer(buf, lineterminator="\n")
    quoted = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL)
    w.writerow([c[3] for c in COLUMNS])
    for row in table.rows:
        cells = [_csv_cell(row.get(c[0])) for c in COLUMNS]
        (quoted if any("#" in c for c in cells) else w).writerow(cells)
    return buf.getvalue()


def _one_line(value: Any) -> str:
    return " ".join(str(value).splitlines())


def to_markdown(table: ResultTable) -> str:
    """A paper-ready table: error mean ± std [t-interval], params, cost, budget, Δ vs reference [interval], p, verdict;
    provenance below it."""
    grouped = any(r.get("config") for r in table.rows)
    headers = ["arm"] + (["config"] if grouped else []) + [
        "n", "test error % (mean ± std)", "95% CI", "params M", "cost device-h", "budget", "device s",
        f"Δ vs {table.reference} (pp)", "p", "verdict"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(["---"] * len(headers)) + "|"]
    for r in table.rows:
        ci = _interval(r["test_error_t_lo"], r["test_error_t_hi"])
        if r.get("test_error_boot_lo") is not None:
            ci += f" (boot {_interval(r['test_error_boot_lo'], r['test_error_boot_hi'])})"
        diff = "–" if r["diff_vs_reference"] is None else (
            f"{_num(r['diff_vs_reference'], 2, signed=True)} {_interval(r['diff_lo'], r['diff_hi'], signed=True)}")
        cells = [r["arm"]] + ([r.get("config") or ""] if grouped else []) + [str(r["repeats"]), f"{_num(r['test_error_mean'], 2)} ± {_num(r['test_error_std'], 2)}", ci,
                 f"{_num(r['params_m_mean'], 3)} ± {_num(r['params_m_std'], 3)}",
                 f"{_num(r['cost_device_hours_mean'], 4)} ± {_num(r['cost_device_hours_std'], 4)}",
                 budget_text(r), _num(r["device_seconds"], 1),
                 diff, _p(r["p_value"]), r["verdict"] or "–"]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines.append("")
    for key, value in _provenance_lines(table):
        lines.append(f"- {key}: {value}")
    for note in table.notes:
        lines.append(f"- note: {note}")
    return "\n".join(lines) + "\n"


def budget_text(row: dict[str, Any]) -> str:
    """'18 candidate-epochs + 10 final' : what an arm was allowed to train."""
    text = f"{_num(row.get('budget_epochs'), 0)} {row.get('budget_unit') or ''}".strip()
    final = _plain(row.get("final_epochs"))
    if final and row.get("budget_unit") != "network-epochs":
        text += f" + {_num(final, 0)} final"
    return text


def duration_text(seconds: Any) -> str:
    """Seconds as '42 s', '3 min 05 s' or '1 h 02 min'."""
    seconds = _plain(seconds)
    if seconds is None:
        return "–"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def _provenance_lines(table: ResultTable) -> list[tuple[str, str]]:
    p = table.provenance
    out = [("reference arm", table.reference), ("alpha", str(table.alpha))]
    if "config_hash" in p:
        out.append(("config hash", p["config_hash"]))
    if "seeds" in p:
        out.append(("seeds", ", ".join(str(s) for s in p["seeds"])))
    if "packages" in p:
        out.append(("packages", ", ".join(f"{k} {v}" for k, v in p["packages"].items() if v)))
    for key, value in p.items():
        if key not in ("config_hash", "seeds", "packages", "config"):
            out.append((key, json.dumps(_plain(value)) if not isinstance(value, str) else value))
    return out


def format_number(value: Any, digits: int, signed: bool = False) -> str:
    return _num(value, digits, signed)


def format_interval(lo: Any, hi: Any, signed: bool = False) -> str:
    return _interval(lo, hi, signed)


def format_p(value: Any) -> str:
    return _p(value)


def _plain(value: Any) -> Any:
    """JSON-safe plain data: NaN/inf -> None, numpy scalars and arrays -> Python, tuples -> lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "__dataclass_fields__"):
        from dataclasses import asdict
        return _plain(asdict(value))
    return value


def _csv_cell(value: Any) -> str:
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _num(value: Any, digits: int, signed: bool = False) -> str:
    value = _plain(value)
    if value is None:
        return "–"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _interval(lo: Any, hi: Any, signed: bool = False) -> str:
    if _plain(lo) is None or _plain(hi) is None:
        return "–"
    return f"[{_num(lo, 2, signed)}, {_num(hi, 2, signed)}]"


def _p(value: Any) -> str:
    value = _plain(value)
    if value is None:
        return "–"
    return "<0.001" if value < 1e-3 else f"{value:.3f}"
