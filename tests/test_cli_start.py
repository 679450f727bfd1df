"""Starting from an empty directory: `run` without a config says how to start, `init` writes one, `tasks list`
shows the configured tasks before anything is built (issue 11 item 7)."""
from __future__ import annotations

import tomllib
from pathlib import Path

from typer.testing import CliRunner

from tanas_tui.cli import app
from tanas_tui.exitcodes import ExitCode

runner = CliRunner()
REPO_CONFIG = Path(__file__).resolve().parents[1] / "tanas.toml"


def test_run_without_a_config_is_an_error_that_says_how_to_start(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TANAS_CONFIG", raising=False)
    for args in (["run"], ["run", "--detach"]):
        result = runner.invoke(app, args)
        assert result.exit_code == ExitCode.USAGE, result.output
        assert "no tanas.toml" in result.output and "tanas-tui init" in result.output
    assert not (tmp_path / "tanas-store.zarr").exists()
    assert not (tmp_path / "tanas-store.zarr" / "runs").exists()   # no engine was started either


def test_init_writes_the_commented_preset_and_refuses_to_overwrite(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    written = (tmp_path / "tanas.toml").read_text()
    assert written == REPO_CONFIG.read_text()
    assert written.lstrip().startswith("#")
    assert tomllib.loads(written)["target"]["name"]
    again = runner.invoke(app, ["init"])
    assert again.exit_code == ExitCode.USAGE and "--force" in again.output
    assert runner.invoke(app, ["init", "--force"]).exit_code == 0
    missing = runner.invoke(app, ["init", str(tmp_path / "nowhere" / "tanas.toml")])
    assert missing.exit_code == ExitCode.USAGE and "does not exist" in missing.output


def test_tasks_list_on_a_fresh_directory_lists_the_configured_tasks_as_not_built(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "160")
    assert runner.invoke(app, ["init"]).exit_code == 0
    config = tomllib.loads((tmp_path / "tanas.toml").read_text())
    result = runner.invoke(app, ["tasks", "list"])
    assert result.exit_code == 0, result.output
    assert "Store.open" not in result.output
    for task in config["tasks"] + [config["target"]]:
        assert task["name"] in result.output
    rows = [line for line in result.output.splitlines() if line.startswith("│")]
    assert sum("not built" in row for row in rows) == len(config["tasks"]) + 1
    assert not (tmp_path / "tanas-store.zarr").exists()   # listing never creates the store
