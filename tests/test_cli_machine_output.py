"""`tasks list --json/--csv` and `searches list --json/--csv` (issue 11 item 16): rows for scripts."""
from __future__ import annotations

import csv
import io
import json

import pytest
from typer.testing import CliRunner

from tanas_tui.cli import app
from tanas_tui.exitcodes import ExitCode
from test_cli_tasks import store_path  # noqa: F401
from ui_fixtures import build_fixture_store

runner = CliRunner()


def test_tasks_list_json_and_csv(store_path):  # noqa: F811
    out = runner.invoke(app, ["tasks", "list", "--json", "--store", str(store_path)])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert [r["name"] for r in rows] == ["mnist-3", "trouser", "bare"]
    assert rows[0]["val_acc"] == 0.981 and rows[0]["representative"] is True and rows[0]["n_train"] == 900
    assert rows[0]["genotype_hash"] == "9f8e7d6c5b4a3210" and rows[2]["val_acc"] is None
    out = runner.invoke(app, ["tasks", "list", "--csv", "--store", str(store_path)])
    assert out.exit_code == 0, out.output
    table = list(csv.DictReader(io.StringIO(out.output)))
    assert [r["name"] for r in table] == ["mnist-3", "trouser", "bare"] and table[1]["val_acc"] == "0.91"
    both = runner.invoke(app, ["tasks", "list", "--csv", "--json", "--store", str(store_path)])
    assert both.exit_code == ExitCode.USAGE and "exclusive" in both.output


def test_searches_list_json_and_csv(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = build_fixture_store(tmp_path / "s.zarr")
    out = runner.invoke(app, ["searches", "list", "--json", "--store", str(store)])
    assert out.exit_code == 0, out.output
    rows = {r["id"]: r for r in json.loads(out.output)}
    assert rows["run-00"]["status"] == "done" and rows["run-00"]["test_error"] == 1.25
    assert rows["run-00"]["hash"] == "beefcafe01" and rows["run-00"]["steps"] == 6 and rows["run-00"]["seconds"] == 15.1
    assert rows["run-01"]["status"] == "running" and rows["run-01"]["test_error"] is None
    out = runner.invoke(app, ["searches", "list", "--csv", "--store", str(store)])
    table = {r["id"]: r for r in csv.DictReader(io.StringIO(out.output))}
    # the cost is the run's device seconds / 3600, the figure the result table shows
    assert float(table["run-00"]["cost_device_hours"]) == pytest.approx(15.1 / 3600) and table["run-01"]["hash"] == ""
