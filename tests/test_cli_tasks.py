"""`tanas-tui tasks list` and `tasks show` over a small store."""
from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from store import Store
from tanas_tui.cli import app
from tanas_tui.exitcodes import ExitCode

runner = CliRunner()


@pytest.fixture
def store_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./tanas.toml: built-in defaults
    monkeypatch.setenv("COLUMNS", "160")
    path = tmp_path / "s.zarr"
    with Store.open(path, mode="w", create=True) as st:
        st.add_task("a1b2c3d4e5f6", {
            "name": "mnist-3", "source": "mnist-5k", "rule": "is 3", "role": "base", "seed": 0,
            "n_train": 900, "n_val": 100, "n_test": 250, "num_classes": 2, "class_names": ["rest", "3"],
            "probe_arch": "cnn", "val_acc": 0.981, "epochs": 4, "representative": True,
            "best_genotype": {"normal": [["sep_conv_3x3", 0]], "C": 16, "layers": 5},
            "genotype_hash": "9f8e7d6c5b4a3210", "status": "ready",
        })
        st.add_task("ffff0000", {"name": "trouser", "source": "fashion-mnist", "val_acc": 0.91,
                                 "representative": False})
        st.add_task("eeee1111", {"name": "bare"})
        for t in st.task_ids():
            st.add_distance_task("fisher", t)
        st.set_distance("fisher", "ffff0000", "a1b2c3d4e5f6", 0.31, 0.02)
        st.save_fisher("a1b2c3d4e5f6", np.ones(1234))
    return path


def test_tasks_list(store_path):
    result = runner.invoke(app, ["tasks", "list", "--store", str(store_path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    row = next(line for line in lines if "mnist-3" in line)
    for cell in ("a1b2c3d4", "mnist-5k", "is 3", "900/100/250", "98.1%", "yes", "9f8e7d6c", "ready"):
        assert cell in row
    row = next(line for line in lines if "trouser" in line)
    assert "91.0%" in row and "no" in row
    row = next(line for line in lines if "bare" in line)
    assert row.count("–") >= 6
    assert [i for i, line in enumerate(lines) if "mnist-3" in line][0] < \
        [i for i, line in enumerate(lines) if "bare" in line][0]


def test_tasks_list_empty_and_missing_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Store.open(tmp_path / "empty.zarr", mode="w", create=True).close()
    result = runner.invoke(app, ["tasks", "list", "--store", str(tmp_path / "empty.zarr")])
    assert result.exit_code == 0 and "no tasks" in result.output
    result = runner.invoke(app, ["tasks", "list", "--store", str(tmp_path / "missing.zarr")])
    assert result.exit_code == ExitCode.STORE
    assert "missing.zarr" in result.output


def test_tasks_show(store_path):
    result = runner.invoke(app, ["tasks", "show", "mnist-3", "--store", str(store_path)])
    assert result.exit_code == 0, result.output
    out = result.output
    for text in ("a1b2c3d4e5f6", "class_names", "rest, 3", "probe_arch", "98.1%", "genotype_hash",
                 'normal: [["sep_conv_3x3", 0]]', "layers: 5", "1,234 values", "trouser", "0.310 ± 0.020"):
        assert text in out, text
    # by id prefix, and a task with almost nothing stored
    result = runner.invoke(app, ["tasks", "show", "eeee", "--store", str(store_path)])
    assert result.exit_code == 0 and "bare" in result.output


def test_tasks_show_unknown_task(store_path):
    result = runner.invoke(app, ["tasks", "show", "nine", "--store", str(store_path)])
    assert result.exit_code == ExitCode.NOT_FOUND
    assert "no task named 'nine'" in result.output


def test_tasks_app_is_importable_for_other_commands():
    from tanas_tui.commands.tasks import tasks_app

    names = {c.name for c in tasks_app.registered_commands}
    assert {"list", "show"} <= names
