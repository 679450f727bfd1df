"""An interrupted operation that `store check` recognises is finished or undone by the next writer's open, in one
logged line counted by `store check`, and re-running the interrupted command succeeds: a killed `tasks remove`
(each of its windows), a `tasks add` killed while its probe or Fisher vector was written, a `run` killed while a
search was being created. Each kill is a forked child dying with os._exit at a fault point (TANAS_FAULT)."""
from __future__ import annotations

import os
import shutil

import pytest
from typer.testing import CliRunner

from store import Store
from store.faults import FAULT_ENV, FAULT_EXIT
from tanas_tui.cli import app
from tests.synthetic import tiny_project

runner = CliRunner()


def _killed_at(point: str, args: list[str]) -> None:
    pid = os.fork()
    if pid == 0:
        os.environ[FAULT_ENV] = point
        try:
            runner.invoke(app, args)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == FAULT_EXIT, f"not killed at {point!r} ({status})"


def _check(path) -> str:
    result = runner.invoke(app, ["store", "check", "--store", str(path)], terminal_width=200)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


@pytest.fixture(scope="module")
def two_tasks(tmp_path_factory):
    root = tmp_path_factory.mktemp("two")
    (root / "tanas.toml").write_text(tiny_project(tasks=("circle", "square")))
    for name in ("circle", "square"):
        result = runner.invoke(app, ["tasks", "add", name, "--config", str(root / "tanas.toml")])
        assert result.exit_code == 0, result.output
    return root


def _copy(src, tmp_path):
    dst = tmp_path / "p"
    shutil.copytree(src, dst)
    return dst, str(dst / "tanas.toml"), dst / "store.zarr"


@pytest.mark.parametrize("point", ["remove-marked", "remove-dropped", "remove-deleted"])
def test_a_killed_tasks_remove_is_finished_and_its_rerun_succeeds(tmp_path, two_tasks, point):
    root, cfg, store = _copy(two_tasks, tmp_path)
    _killed_at(point, ["tasks", "remove", "circle", "--yes", "--config", cfg])
    again = runner.invoke(app, ["tasks", "remove", "circle", "--yes", "--config", cfg])
    assert again.exit_code == 0, again.output
    assert "finished its interrupted removal" in again.output, again.output
    with Store.open(store) as st:
        assert [t["name"] for t in st.list_tasks()] == ["square"]
        assert st.distances("fisher").ids == st.task_ids()
    out = _check(store)
    assert "1 interrupted operation(s) recovered automatically" in out and "circle" in out, out


@pytest.mark.parametrize("point,undone", [("probe-arrays", "deleted probe 0, whose training was interrupted"),
                                          ("fisher-created", "deleted Fisher vector 0, whose write was interrupted")])
def test_a_killed_tasks_add_is_undone_and_its_rerun_succeeds(tmp_path, two_tasks, point, undone):
    root, cfg, store = _copy(two_tasks, tmp_path)
    (root / "tanas.toml").write_text(tiny_project(tasks=("circle", "square", "triangle")))
    _killed_at(point, ["tasks", "add", "triangle", "--config", cfg])
    again = runner.invoke(app, ["tasks", "add", "triangle", "--config", cfg])
    assert again.exit_code == 0, again.output
    with Store.open(store) as st:
        tid = st.find_task("triangle")
        assert st.task(tid)["status"] == "ready" and st.load_fisher(tid).sum() > 0
    out = _check(store)
    assert "1 interrupted operation(s) recovered automatically" in out and undone in out, out


def test_a_run_killed_while_creating_a_search_is_undone_and_its_rerun_succeeds(tmp_path, two_tasks):
    root, cfg, store = _copy(two_tasks, tmp_path)
    _killed_at("search-create", ["run", cfg])
    again = runner.invoke(app, ["run", cfg])
    assert again.exit_code == 0, again.output
    out = _check(store)
    assert "recovered automatically" in out and "a search whose creation was interrupted" in out, out
