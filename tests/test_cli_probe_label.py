"""A shared-body probe's epochs are the shared body's `shared_epochs`, not the task's own training (issue 23 item 5):
the CLI says so wherever it shows them (`tasks show`, the headless probe line); `distances --help` says when d is
symmetric."""
from __future__ import annotations

from typer.testing import CliRunner

from engine.service import protocol as P
from store import Store
from tanas_tui.cli import app
from tanas_tui.headless import EventText

runner = CliRunner()


def _store(path, body):
    with Store.open(path, mode="w", create=True) as st:
        st.add_task("t1", {"name": "mnist-0", "role": "base", "probe_arch": "cnn", "epochs": 3, "val_acc": 0.99,
                           **({"probe_body": body} if body else {})})
    return path


def test_tasks_show_names_the_shared_bodys_epochs(tmp_path):
    shared = runner.invoke(app, ["tasks", "show", "mnist-0", "--store", str(_store(tmp_path / "a.zarr", "shared"))],
                           env={"COLUMNS": "200", "TANAS_CONFIG": ""})
    assert shared.exit_code == 0, shared.output
    line = next(ln for ln in shared.output.splitlines() if " epochs " in ln)
    assert "3 (the shared body's shared_epochs; min_epochs does not apply to it)" in line
    own = runner.invoke(app, ["tasks", "show", "mnist-0", "--store", str(_store(tmp_path / "b.zarr", "per-task"))],
                        env={"COLUMNS": "200", "TANAS_CONFIG": ""})
    assert "shared_epochs" not in own.output


def test_headless_probe_line_says_shared_body():
    text = EventText()
    common = dict(seq=1, task_id="t1", name="mnist-0", val_acc=0.99, epochs=3, seconds=1.0, representative=True)
    assert "a head on the shared body (its shared_epochs = 3)" in text(P.ProbeDone(shared_body=True, **common))
    assert "in 3 epochs" in text(P.ProbeDone(**common)) and "shared" not in text(P.ProbeDone(**common))


def test_distances_help_says_when_d_is_symmetric():
    out = runner.invoke(app, ["distances", "--help"], env={"COLUMNS": "200"}, terminal_width=200).output
    assert "Symmetric" in out and "domain" in out and "pair" in out
