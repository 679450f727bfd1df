"""The result table as plain rows, its provenance, and its JSON / CSV / Markdown renderings."""
from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from engine.results.table import ArmRun, COLUMNS, build_table, config_hash, provenance, to_csv, to_json, to_markdown

N_TEST = 300


def _correct(error: float, seed: int) -> list[bool]:
    rng = np.random.default_rng(seed)
    c = np.ones(N_TEST, dtype=bool)
    c[rng.choice(N_TEST, int(round(error * N_TEST)), replace=False)] = False
    return c.tolist()


def _runs(per_sample: bool = True) -> list[ArmRun]:
    runs = []
    arms = {"task-aware": 0.05, "standard": 0.05, "random": 0.20}
    for i, (arm, err) in enumerate(arms.items()):
        for seed in (0, 1, 2):
            c = _correct(err, 10 * i + seed)
            if arm == "standard":
                c = _correct(arms["task-aware"], seed)   # same mistakes as the reference: identical arm
            runs.append(ArmRun(arm=arm, seed=seed, test_error=100 * (1 - np.mean(c)), params=2.5e6 + 1e4 * seed,
                               cost_device_hours=0.01 * (seed + 1), budget_epochs=60, budget_unit="candidate-epochs",
                               device_seconds=36.0 * (seed + 1), correct=c if per_sample else None,
                               run_id=f"{arm}-{seed}"))
    runs.append(ArmRun(arm="resnet18", seed=0, test_error=4.0, params=11.2e6, cost_device_hours=0.02,
                       budget_epochs=10, budget_unit="network-epochs", device_seconds=72.0, run_id="resnet18-0"))
    return runs




def test_rows_summaries_comparisons_and_budgets():
    prov = provenance({"search": {"rounds": 3}}, seeds=[2, 0, 1])
    table = build_table(_runs(), "task-aware", prov=prov, n_boot=300)
    rows = {r["arm"]: r for r in table.rows}
    assert list(rows) == ["task-aware", "standard", "random", "resnet18"]
    ta = rows["task-aware"]
    assert ta["verdict"] == "reference" and ta["diff_vs_reference"] is None
    assert ta["repeats"] == 3 and ta["seeds"] == [0, 1, 2] and ta["n_test"] == N_TEST
    assert ta["test_error_mean"] == pytest.approx(5.0)
    assert ta["test_error_boot_lo"] < 5.0 < ta["test_error_boot_hi"]
    assert ta["params_m_mean"] == pytest.approx(2.51) and ta["params_m_lo"] < 2.51 < ta["params_m_hi"]
    assert ta["budget_epochs"] == 60 and ta["budget_unit"] == "candidate-epochs" and ta["device_seconds"] == 72.0
    assert rows["standard"]["verdict"] == "not distinguishable" and rows["standard"]["p_value"] == 1.0
    assert rows["random"]["verdict"] == "distinguishable" and rows["random"]["diff_vs_reference"] == pytest.approx(15)
    assert rows["random"]["test"] == "mcnemar+bootstrap" and rows["random"]["p_value"] < 1e-6
    # one seed, no per-sample results: reported, never judged
    r18 = rows["resnet18"]
    assert r18["verdict"] == "not distinguishable" and r18["test"] == "paired t over seeds" and r18["p_value"] != r18["p_value"]
    assert any("different units" in n for n in table.notes)


def test_without_per_sample_results_the_seed_errors_are_compared():
    table = build_table(_runs(per_sample=False), "task-aware", n_boot=100)
    random_row = next(r for r in table.rows if r["arm"] == "random")
    assert random_row["test"] == "paired t over seeds" and random_row["test_error_boot_lo"] is None


def test_bad_input_names_the_arm():
    with pytest.raises(ValueError, match="reference arm 'nope'"):
        build_table(_runs(), "nope")
    dup = _runs() + [ArmRun("random", 0, 1.0, 1, 0.1, 1, "candidate-epochs", 1.0)]
    with pytest.raises(ValueError, match="arm 'random' has repeated seeds"):
        build_table(dup, "task-aware")


def test_provenance_hash_is_stable_and_names_seeds_and_versions():
    a = provenance({"b": 1, "a": [1, 2]}, seeds=[3, 1, 3])
    b = provenance({"a": [1, 2], "b": 1}, seeds=[1, 3])
    assert a["config_hash"] == b["config_hash"] == config_hash({"a": (1, 2), "b": 1})
    assert config_hash({"a": [1, 2], "b": 2}) != a["config_hash"]
    assert a["seeds"] == [1, 3]
    assert a["packages"]["numpy"] == np.__version__ and a["packages"]["python"]


def test_json_rendering_is_strict_json_with_provenance():
    table = build_table(_runs(), "task-aware", prov=provenance({"x": 1}, [0, 1, 2]), n_boot=100)
    data = json.loads(to_json(table))                      # allow_nan=False: NaN became null
    assert data["columns"] == [c[3] for c in COLUMNS] and data["reference"] == "task-aware"
    r18 = next(r for r in data["rows"] if r["arm"] == "resnet18")
    assert r18["test_error_pct_std"] is None and r18["p_value"] is None
    rnd = next(r for r in data["rows"] if r["arm"] == "random")
    assert rnd["comparison"]["discordant"][0] > rnd["comparison"]["discordant"][1]
    assert rnd["run_ids"] == ["random-0", "random-1", "random-2"]
    assert data["provenance"]["config_hash"] == config_hash({"x": 1}) and data["provenance"]["seeds"] == [0, 1, 2]


def test_csv_rendering_parses_back():
    table = build_table(_runs(), "task-aware", prov=provenance({"x": 1}, [0, 1, 2]), n_boot=100)
    text = to_csv(table)
    body = [ln for ln in text.splitlines() if not ln.startswith("#")]
    assert text.startswith("# ") and text.splitlines()[len(text.splitlines()) - len(body)] == body[0]
    rows = list(csv.DictReader(io.StringIO("\n".join(body))))
    assert [r["arm"] for r in rows] == ["task-aware", "standard", "random", "resnet18"]
    assert float(rows[2]["test_error_pct_mean"]) == pytest.approx(20.0) and rows[2]["verdict"] == "distinguishable"
    assert rows[0]["seeds"] == "0 1 2" and rows[3]["test_error_pct_std"] == ""
    assert f"# config hash: {config_hash({'x': 1})}" in text and "# seeds: 0, 1, 2" in text


def test_markdown_rendering_is_a_table_with_verdicts_and_provenance():
    table = build_table(_runs(), "task-aware", prov=provenance({"x": 1}, [0, 1, 2]), n_boot=100)
    md = to_markdown(table)
    lines = md.splitlines()
    assert lines[0].startswith("| arm |") and set(lines[1]) <= set("|-")
    body = [ln for ln in lines[2:] if ln.startswith("|")]
    assert len(body) == 4 and all(ln.count("|") == lines[0].count("|") for ln in body)
    assert "| distinguishable |" in body[2] and "| not distinguishable |" in body[1] and "| reference |" in body[0]
    assert "+15.00" in body[2] and "candidate-epochs" in body[0] and "network-epochs" in body[3]
    assert f"- config hash: {config_hash({'x': 1})}" in md


def test_runs_of_different_configurations_are_separate_rows_compared_within_their_own():
    runs = _runs()
    worse = {s: _correct(0.5, 90 + s) for s in (0, 1, 2)}     # the reference at rounds=6 errs on half the samples
    other = [ArmRun(**{**r.__dict__, "config": "b" * 16, "config_label": "rounds=6",
                       **({"test_error": 50.0, "correct": worse[r.seed]} if r.arm == "task-aware" else {})})
             for r in runs if r.arm != "resnet18"]
    table = build_table(runs + other, "task-aware", n_boot=100)
    rows = [(r["arm"], r["config"]) for r in table.rows]
    assert rows == [("task-aware", ""), ("standard", ""), ("random", ""), ("resnet18", ""),
                    ("task-aware", "rounds=6"), ("standard", "rounds=6"), ("random", "rounds=6")]
    six = {r["arm"]: r for r in table.rows if r["config"] == "rounds=6"}
    assert six["task-aware"]["repeats"] == 3 and six["task-aware"]["test_error_mean"] == 50.0   # never pooled
    assert six["standard"]["verdict"] == "distinguishable"   # compared with the rounds=6 reference
    only = build_table([r for r in other if r.arm != "task-aware"] + [r for r in runs if r.arm == "task-aware"],
                       "task-aware", n_boot=100)
    assert any("rounds=6: no 'task-aware' runs" in n for n in only.notes)
    assert all(r["verdict"] is None for r in only.rows if r["config"] == "rounds=6")
