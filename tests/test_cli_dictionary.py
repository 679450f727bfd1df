"""`tasks add`, `tasks remove`, `distances`, `nearest` on a tiny embedded-data dictionary, in-process."""
from __future__ import annotations

import csv

import pytest
from typer.testing import CliRunner

from tanas_tui.cli import app

CONFIG = """
[project]
store = "s.zarr"
device = "cpu"

[dictionary]
max_epochs = 1
batch_size = 64
fisher_samples = 32

[[tasks]]
name = "m0"
source = "mnist-5k"
positive = ["0"]
limit = 160

[[tasks]]
name = "m1"
source = "mnist-5k"
positive = ["1"]
limit = 160

[target]
name = "u3"
source = "uci-digits"
positive = ["3"]
limit = 160
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "tanas.toml").write_text(CONFIG)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(*args, input=None):
    return CliRunner().invoke(app, list(args), input=input, catch_exceptions=False)


def test_add_distances_nearest_remove(project):
    r = _run("tasks", "add", "m0")
    assert r.exit_code == 0, r.output
    assert "m0" in r.output and "1 distances computed" in r.output
    r = _run("tasks", "add", "m1")
    assert r.exit_code == 0 and "3 distances computed" in r.output, r.output
    r = _run("tasks", "add", "sk", "--source", "sketches", "--positive", "circle", "--limit", "160")
    assert r.exit_code == 0 and "5 distances computed" in r.output, r.output
    r = _run("tasks", "add", "u3")
    assert r.exit_code == 0 and "7 distances computed" in r.output, r.output
    # adding again is a no-op that continues (nothing left to compute)
    r = _run("tasks", "add", "u3")
    assert r.exit_code == 0 and "0 distances computed" in r.output, r.output

    r = _run("distances", "--csv", "d.csv")
    assert r.exit_code == 0, r.output
    for name in ("m0", "m1", "sk", "u3"):
        assert name in r.output
    rows = list(csv.reader(open(project / "d.csv")))
    assert rows[0] == ["source", "m0", "m1", "sk", "u3"]
    assert [row[0] for row in rows[1:]] == ["m0", "m1", "sk", "u3"]
    assert float(rows[1][1]) == 0.0 and 0 < float(rows[1][2]) <= 1

    r = _run("nearest", "u3", "-k", "2")
    assert r.exit_code == 0, r.output
    rows = [line.split("│")[2].strip() for line in r.output.splitlines() if line.startswith("│")]
    assert len(rows) == 2 and set(rows) <= {"m0", "m1", "sk"}

    r = _run("tasks", "remove", "sk", input="n\n")
    assert r.exit_code == 2
    r = _run("tasks", "remove", "sk", "--yes")
    assert r.exit_code == 0 and "removed task sk" in r.output
    r = _run("distances")
    assert r.exit_code == 0 and "│ sk " not in r.output and "│ m0 " in r.output


def test_errors_are_one_line_with_exit_codes(project):
    r = _run("tasks", "add", "nope")
    assert r.exit_code == 6 and "no task named 'nope'" in r.output   # no such task: as `search nope`
    r = _run("tasks", "add", "x", "--source", "mnist-5k")
    assert r.exit_code == 2 and "exactly one of --positive" in r.output
    r = _run("tasks", "add", "x", "--positive", "3")
    assert r.exit_code == 2 and "need --source" in r.output
    r = _run("distances")
    assert r.exit_code == 4 and "store" in r.output            # no store yet
    r = _run("distances", "--method", "bogus")
    assert r.exit_code != 0
    r = _run("nearest", "u3", "-k", "0")
    assert r.exit_code == 2 and "-k must be at least 1" in r.output
