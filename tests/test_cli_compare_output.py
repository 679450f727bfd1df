"""`searches compare` and `searches list` as a researcher reads and exports them: configurations kept apart, an error
rate's interval within [0, 100], names and notes printed as written, one cost figure, CSV and JSON ready for pandas
and scripts."""
from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from store import Store
from store.records import BudgetRecord, SearchRunRecord
from tanas_tui.cli import app

runner = CliRunner()
N_TEST = 200


def _config(rounds: int) -> dict:
    """A stored [search] section: only `rounds` differs between the configurations; repeats and arms change no
    result and must not split the table."""
    return {"rounds": rounds, "candidates": 4, "alternations": 5, "w_epochs": 1, "alpha_epochs": 1, "w_lr": 1e-3,
            "alpha_lr": 3e-3, "batch_size": 128, "final_epochs": 10, "alpha_batch_size": 32, "repeats": rounds + 1,
            "arms": ["random", "fuse-task-aware", "fixed"][: rounds % 3 + 1], "compare": True}


def _add(st, run_id, arm, kind, seed, correct, config, *, target="tid", seconds=90.0, cost=None, unit="candidate-epochs",
         config_keys=None):
    record = SearchRunRecord(kind=kind, target=target, target_name=st.task(target)["name"], seed=seed, device="cpu",
                             arm=arm, config=config, status="running",
                             budget=BudgetRecord(epochs=config["rounds"] * 20 if unit == "candidate-epochs" else 10,
                                                 unit=unit, final_epochs=10).to_attrs())
    attrs = record.to_attrs() | ({"config_keys": config_keys} if config_keys else {})
    st.create_search(run_id, attrs, 1).flush()
    st.save_test_outcome(run_id, correct, target)
    st.update_search(run_id, status="done", result={
        "test_error": 100.0 * (1 - correct.mean()), "params": 1000, "params_m": 0.001, "seconds": seconds,
        "cost_device_hours": seconds / 3600 if cost is None else cost, "hash": run_id, "kind": kind})


def _correct(rng, error: float) -> np.ndarray:
    return rng.random(N_TEST) > error


@pytest.fixture
def two_configs(tmp_path):
    return _two_configs(tmp_path / "s.zarr")


def _two_configs(path, name="tgt"):
    """FUSE task-aware and random search at rounds = 2 and rounds = 6 (3 seeds each: random planted 15 points worse
    at rounds = 2, equal at rounds = 6), and ResNet-18 stored once, depending only on its own keys."""
    rng = np.random.default_rng(1)
    with Store.open(path, mode="w", create=True) as st:
        st.add_task("tid", {"name": name, "role": "target"})
        for rounds, worse in ((2, 0.15), (6, 0.0)):
            for seed in range(3):
                aware = _correct(rng, 0.05)
                other = aware & (rng.random(N_TEST) > worse)
                _add(st, f"tgt-task-aware-r{rounds}-{seed}", "fuse-task-aware", "fuse", seed, aware, _config(rounds))
                _add(st, f"tgt-random-r{rounds}-{seed}", "random", "random", seed, other, _config(rounds))
        for seed in range(3):
            _add(st, f"tgt-resnet18-{seed}", "fixed", "fixed:ResNet-18", seed, _correct(rng, 0.05), _config(2),
                 unit="network-epochs", config_keys=["w_lr", "batch_size", "final_epochs"])
    return path


def _compare(store, *args):
    return runner.invoke(app, ["searches", "compare", "--store", str(store), *args], env={"TANAS_CONFIG": ""},
                         catch_exceptions=False)


def test_rows_are_grouped_by_configuration_and_compared_within_it(two_configs, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    out = _compare(two_configs, "--json")
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)["rows"]
    by = {(r["arm"], r["config"]): r for r in rows}
    assert set(by) == {(arm, f"rounds={n}") for arm in ("FUSE, task-aware space", "Random search", "ResNet-18")
                       for n in (2, 6)}
    for (arm, config), r in by.items():
        assert r["repeats"] == 3 and len(r["run_ids"]) == 3, (arm, config)
        if arm != "ResNet-18":
            assert all(f"-r{config[-1]}-" in rid for rid in r["run_ids"]), r["run_ids"]
    assert by[("Random search", "rounds=2")]["verdict"] == "distinguishable"
    assert by[("Random search", "rounds=6")]["verdict"] == "not distinguishable"
    assert by[("FUSE, task-aware space", "rounds=2")]["budget_epochs"] == 40       # never an average of 40 and 120
    assert by[("FUSE, task-aware space", "rounds=6")]["budget_epochs"] == 120
    # the fixed network depends on neither rounds nor repeats: the same runs stand in both groups
    assert by[("ResNet-18", "rounds=2")]["run_ids"] == by[("ResNet-18", "rounds=6")]["run_ids"]
    hashes = {r["config"]: r["config_hash"] for r in rows}
    assert len(set(hashes.values())) == 2 and all(len(h) == 16 for h in hashes.values())


def test_the_rich_table_prints_notes_and_names_as_written(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    out = _compare(_two_configs(tmp_path / "s.zarr", name="t[/red]3 [bold]x"))
    assert out.exit_code == 0, out.output
    text = " ".join(out.output.split())
    assert "Result: t[/red]3 [bold]x" in text
    assert "the runs used 2 different [search] configurations" in text
    assert "rounds=2" in text and "rounds=6" in text


def test_an_error_rates_interval_never_leaves_0_to_100(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "s.zarr"
    with Store.open(path, mode="w", create=True) as st:
        st.add_task("tid", {"name": "tgt", "role": "target"})
        for seed, wrong in enumerate((0, 0, 1)):        # 0 %, 0 %, 0.5 %: the t-interval reaches below 0
            correct = np.ones(N_TEST, bool)
            correct[:wrong] = False
            _add(st, f"tgt-task-aware-{seed}", "fuse-task-aware", "fuse", seed, correct, _config(2))
    out = _compare(path, "--json")
    [row] = json.loads(out.output)["rows"]
    assert row["test_error_pct_t_lo"] == 0.0 and row["test_error_pct_t_hi"] > row["test_error_pct_mean"] > 0
    md = _compare(path, "--markdown")
    assert "[0.00, " in md.output and "[-" not in md.output


def test_a_fixed_networks_cost_is_one_figure_in_list_and_compare(tmp_path, monkeypatch):
    """A run stored with cost 0.0 device-hours and 121.7 s (fixed networks before their training time counted) reads
    0.0338 device-hours in both places."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "s.zarr"
    with Store.open(path, mode="w", create=True) as st:
        st.add_task("tid", {"name": "tgt", "role": "target"})
        _add(st, "tgt-task-aware-0", "fuse-task-aware", "fuse", 0, np.ones(N_TEST, bool), _config(2), seconds=360.0)
        _add(st, "tgt-resnet18-0", "fixed", "fixed:ResNet-18", 0, np.ones(N_TEST, bool), _config(2), seconds=121.7,
             cost=0.0, unit="network-epochs")
    listed = runner.invoke(app, ["searches", "list", "--store", str(path)], env={"TANAS_CONFIG": "", "COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    line = next(ln for ln in listed.output.splitlines() if "tgt-resnet18-0" in ln)
    assert "0.0338" in line and "0.0000" not in line
    as_json = runner.invoke(app, ["searches", "list", "--json", "--store", str(path)], env={"TANAS_CONFIG": ""})
    listed_hours = next(r["cost_device_hours"] for r in json.loads(as_json.output) if r["id"] == "tgt-resnet18-0")
    compared = json.loads(_compare(path, "--json").output)["rows"]
    table_hours = next(r["cost_device_hours_mean"] for r in compared if r["arm"] == "ResNet-18")
    assert listed_hours == pytest.approx(table_hours) == pytest.approx(121.7 / 3600)
    rich = _compare(path)
    assert "0.0338 dev-h" in rich.output


def test_csv_starts_with_its_provenance_and_reads_back_as_exactly_the_rows(two_configs, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    out = _compare(two_configs, "--csv", "-o", str(tmp_path / "t.csv"))
    assert out.exit_code == 0, out.output
    text = (tmp_path / "t.csv").read_text()
    lines = text.splitlines()
    assert lines[0].startswith("# ") and any(ln.startswith("# config hash: ") for ln in lines)
    body = [ln for ln in lines if not ln.startswith("#")]
    assert all(ln.startswith("#") for ln in lines[: len(lines) - len(body)])       # every comment before the data
    rows = list(csv.DictReader(io.StringIO("\n".join(body))))
    assert len(rows) == 6 and float(rows[0]["test_error_pct_mean"]) >= 0
    pandas = pytest.importorskip("pandas")
    frame = pandas.read_csv(tmp_path / "t.csv", comment="#")
    assert len(frame) == 6 and list(frame.columns) == list(rows[0])
    assert "diff_vs_reference_pp" in frame.columns and "test_error_mean" not in frame.columns


def test_json_fields_carry_their_unit(two_configs, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    data = json.loads(_compare(two_configs, "--json").output)
    row = next(r for r in data["rows"] if r["arm"] == "Random search" and r["config"] == "rounds=2")
    for name in ("test_error_pct_mean", "test_error_pct_boot_lo", "params_millions_mean", "cost_device_hours_mean",
                 "diff_vs_reference_pp", "diff_vs_reference_pp_lo", "device_seconds", "budget_epochs"):
        assert name in row, name
    assert "test_error_mean" not in row and "diff_vs_reference" not in row
    assert row["comparison"]["diff_pp"] == pytest.approx(row["diff_vs_reference_pp"])
    assert data["columns"][:3] == ["arm", "config", "config_hash"]


def test_a_budget_sweep_is_drawn_with_axes_and_a_verdict_per_budget(two_configs):
    out = _compare(two_configs, "--plot")
    assert out.exit_code == 0, out.output
    text = out.output
    assert "test error % (mean │ 95 % t-interval)" in text and "search budget (candidate-epochs" in text
    assert "40 = rounds=2" in text and "120 = rounds=6" in text          # x axis: the budgets, labelled
    assert "A Random search" in text and "B FUSE, task-aware space" in text
    # random search is planted 15 points worse at rounds = 2 and equal at rounds = 6: the verdict differs by budget
    lines = [line for line in text.splitlines() if line.startswith("budget ")]
    assert len(lines) == 2
    assert "budget 40 (rounds=2)" in lines[0] and "Random search: distinguishable (+" in lines[0]
    assert "budget 120 (rounds=6)" in lines[1] and "Random search: not distinguishable" in lines[1]
    assert _compare(two_configs, "--plot", "--json").exit_code == 2


def test_another_reference_arm_can_be_chosen(two_configs):
    out = json.loads(_compare(two_configs, "--json", "--reference", "random").stdout)
    assert out["reference"] == "Random search"
    assert {r["arm"]: r["verdict"] for r in out["rows"]}["Random search"] == "reference"
    missing = _compare(two_configs, "--reference", "fuse-farthest-cells")
    assert missing.exit_code == 6 and "fuse-farthest-cells" in missing.output
    bad = _compare(two_configs, "--reference", "nope")
    assert bad.exit_code == 2 and "--reference must be one of" in bad.output
