"""`tanas-tui search`, `searches list|show` and `export` on a tiny sketches config (standard space: no dictionary)."""
from __future__ import annotations

import json
import re

import pytest
import torch
from typer.testing import CliRunner

from tanas_tui.cli import app
from tanas_tui.exitcodes import ExitCode

TINY = """
[project]
store = "store.zarr"
device = "cpu"
seed = 0

[space]
channels = [4]
layers = [3]
nodes = [1]

[search]
rounds = 2
candidates = 2
alternations = 1
alpha_epochs = 2
w_lr = {w_lr}
alpha_lr = 0.05
batch_size = 64
final_epochs = 1
compare = false

[sources.sketches]
per_class = 24
seed = 0

[[tasks]]
name = "circle"
source = "sketches"
positive = ["circle"]

[target]
name = "moon"
source = "sketches"
positive = ["moon"]
"""
runner = CliRunner()


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("searchcli")
    cfg = root / "tanas.toml"
    cfg.write_text(TINY.replace("{w_lr}", "1e-3"))
    result = runner.invoke(app, ["search", "moon", "--space", "standard", "--config", str(cfg), "--seed", "1"])
    return root, cfg, result


def test_search_runs_and_prints_the_result(project):
    _, _, result = project
    assert result.exit_code == 0, result.output
    out = result.output
    assert "search moon-standard-1 round 1: incumbent" in out and "search moon-standard-1 done" in out
    assert "Result: moon" in out and "FUSE, standard" in out and "Test error (%)" in out
    assert "run moon-standard-1: genotype" in out
    # the winner's retraining is a stage of its own, with its epoch counter (issue 23 item 10)
    assert re.search(r"search moon-standard-1 retraining \w+: 0/1", out), out
    assert re.search(r"search moon-standard-1 retraining \w+: 1/1", out), out


def test_rerun_returns_the_stored_result_without_training(project):
    _, cfg, first = project
    again = runner.invoke(app, ["search", "moon", "--space", "standard", "--config", str(cfg), "--seed", "1"])
    assert again.exit_code == 0, again.output
    line = lambda out: next(x for x in out.splitlines() if x.startswith("run moon-standard-1"))  # noqa: E731
    assert line(again.output) == line(first.output)
    assert "alpha" not in again.output.lower() and "α" not in again.output


def test_changed_config_is_refused_naming_the_key(project, tmp_path):
    root, _, _ = project
    other = root / "changed.toml"
    other.write_text(TINY.replace("{w_lr}", "2e-3"))
    refused = runner.invoke(app, ["search", "moon", "--space", "standard", "--config", str(other), "--seed", "1"])
    assert refused.exit_code == ExitCode.USAGE, refused.output
    assert "w_lr" in refused.output and "moon-standard-1" in refused.output
    other_kind = runner.invoke(app, ["search", "moon", "--space", "task-aware", "--run-id", "moon-standard-1",
                                     "--config", str(root / "tanas.toml")])
    assert other_kind.exit_code == ExitCode.USAGE and "space kind" in other_kind.output, other_kind.output


def test_searches_list_and_show(project):
    _, cfg, _ = project
    listed = runner.invoke(app, ["searches", "list", "--config", str(cfg)])
    assert listed.exit_code == 0, listed.output
    assert "moon-standard-1" in listed.output and "done" in listed.output
    shown = runner.invoke(app, ["searches", "show", "moon-standard-1", "--config", str(cfg)])
    assert shown.exit_code == 0, shown.output
    for expected in ("search moon-standard-1", "status done", "  created: ", "  finished: ", "  config: rounds=",
                     "rounds", "incumbent", "α trajectory: 4 steps × 2 candidates", "test error", "normal cell"):
        assert expected in shown.output, expected
    missing = runner.invoke(app, ["searches", "show", "nope", "--config", str(cfg)])
    assert missing.exit_code != 0 and "nope" in missing.output


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_export_genotype_and_torchscript(project, tmp_path):
    _, cfg, _ = project
    gpath, tpath = tmp_path / "g.json", tmp_path / "m.pt"
    ok = runner.invoke(app, ["export", "moon-standard-1", "--format", "genotype", "-o", str(gpath), "--config", str(cfg)])
    assert ok.exit_code == 0, ok.output
    doc = json.loads(gpath.read_text())
    assert doc["channels"] == 4 and doc["layers"] == 3
    ok = runner.invoke(app, ["export", "moon-standard-1", "--format", "torchscript", "-o", str(tpath),
                             "--config", str(cfg)])
    assert ok.exit_code == 0, ok.output
    model = torch.jit.load(str(tpath))
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 2)
    bad = runner.invoke(app, ["export", "moon-standard-1", "--format", "pickle", "-o", str(tpath), "--config", str(cfg)])
    assert bad.exit_code == ExitCode.USAGE and "genotype, torchscript, onnx" in bad.output
    # an existing file is kept unless --force; a missing directory is not created
    again = runner.invoke(app, ["export", "moon-standard-1", "-o", str(gpath), "--config", str(cfg)])
    assert again.exit_code == ExitCode.USAGE and "already exists" in again.output and "--force" in again.output
    forced = runner.invoke(app, ["export", "moon-standard-1", "-o", str(gpath), "--force", "--config", str(cfg)])
    assert forced.exit_code == 0, forced.output
    missing = tmp_path / "no-such-dir" / "g.json"
    nodir = runner.invoke(app, ["export", "moon-standard-1", "-o", str(missing), "--config", str(cfg)])
    assert nodir.exit_code == ExitCode.USAGE and "does not exist" in nodir.output and not missing.parent.exists()


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_export_prints_and_writes_the_input_spec_beside_the_model(project, tmp_path):
    _, cfg, _ = project
    path = tmp_path / "moon.pt"
    ok = runner.invoke(app, ["export", "moon-standard-1", "--format", "torchscript", "-o", str(path),
                             "--config", str(cfg)], env={"COLUMNS": "200"})
    assert ok.exit_code == 0, ok.output
    spec_path = tmp_path / "moon.pt.input.json"
    spec = json.loads(spec_path.read_text())
    assert spec["input"]["shape"] == ["batch", 1, 28, 28] and spec["input"]["dtype"] == "float32"
    assert "pixel / 255" in spec["input"]["normalisation"]
    assert spec["classes"] == ["rest", "moon"]          # index i of the logits is classes[i]
    assert spec["task"]["name"] == "moon" and spec["task"]["run"] == "moon-standard-1"
    assert "[batch, 1, 28, 28]" in ok.output and "pixel / 255" in ok.output
    assert "0 rest, 1 moon" in ok.output and str(spec_path) in ok.output
    model = torch.jit.load(str(path))
    assert model(torch.zeros(1, *spec["input"]["shape"][1:])).shape == (1, len(spec["classes"]))
    # the spec is not overwritten unasked either, even when the model file itself is gone
    path.unlink()
    again = runner.invoke(app, ["export", "moon-standard-1", "--format", "torchscript", "-o", str(path),
                                "--config", str(cfg)])
    assert again.exit_code == ExitCode.USAGE and "moon.pt.input.json already exists" in again.output
    genotype = runner.invoke(app, ["export", "moon-standard-1", "-o", str(tmp_path / "g.json"), "--config", str(cfg)])
    assert genotype.exit_code == 0 and not (tmp_path / "g.json.input.json").exists()


def test_unknown_target_and_space(project):
    _, cfg, _ = project
    r = runner.invoke(app, ["search", "nothing", "--config", str(cfg)], env={"COLUMNS": "300"})
    assert r.exit_code == ExitCode.NOT_FOUND and "nothing" in r.output
    assert "the config's target is moon" in r.output and "circle" in r.output
    assert "stored runs: moon-standard-1 (target moon)" in r.output and "--run-id RUN" in r.output
    r = runner.invoke(app, ["search", "moon", "--space", "huge", "--config", str(cfg)])
    assert r.exit_code == ExitCode.USAGE and "--space" in r.output
