"""Every command's exit code is the README's table: 2 a bad option or config (before any store is opened), 4 a
missing store, 6 no such task, run or source; one line, no traceback."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tanas_tui.cli import app
from tanas_tui.exitcodes import ExitCode

runner = CliRunner()
CONFIG = ('[project]\nstore = "missing.zarr"\n\n[[tasks]]\nname = "a"\nsource = "sketches"\npositive = ["moon"]\n'
          '\n[target]\nname = "t"\nsource = "sketches"\npositive = ["star"]\n')

MISSING_STORE = [  # the config's store does not exist
    ["tasks", "show", "a"], ["tasks", "remove", "a", "--yes"], ["searches", "list"], ["searches", "show", "r"],
    ["searches", "compare"], ["searches", "remove", "r", "--yes"], ["distances"], ["distances", "--check"],
    ["nearest", "t"], ["store", "check"], ["export", "r", "-o", "x.json"], ["ui"],
    ["tasks", "list", "--store", "nope.zarr"],
]
USAGE = [  # a bad option value: refused before the (missing) store is looked at
    ["distances", "--method", "bogus"], ["distances", "--check", "--method", "bogus"],
    ["nearest", "t", "--method", "bogus"], ["search", "t", "--space", "bogus"],
    ["export", "r", "--format", "bogus", "-o", "x.json"], ["tasks", "add", "a", "--role", "bogus"],
    ["tasks", "add", "x", "--source", "sketches", "--positive", "moon", "--seed", str(2 ** 40)],
    ["search", "t", "--seed", str(2 ** 40)], ["run", "none.toml"],
]
NOT_FOUND = [  # an empty store exists (--store), or the config names no such task or source
    ["tasks", "show", "nope"], ["tasks", "remove", "nope", "--yes"], ["searches", "show", "nope"],
    ["searches", "remove", "nope", "--yes"], ["export", "nope", "-o", "x.json"], ["search", "nope"],
    ["tasks", "add", "nope"], ["nearest", "nope"], ["distances"], ["data", "preview", "nope"],
]


@pytest.fixture
def project(tmp_path, monkeypatch):
    from store import Store

    monkeypatch.chdir(tmp_path)
    (tmp_path / "tanas.toml").write_text(CONFIG)
    Store.open(tmp_path / "empty.zarr", "w", create=True).close()
    return tmp_path


def _check(project, args, code):
    extra = ["--config", str(project / "tanas.toml")] if args[0] not in ("run",) else []
    result = runner.invoke(app, args + extra)
    assert result.exit_code == code, (args, result.output)
    assert "Traceback" not in result.output and result.output.strip(), args
    return result


@pytest.mark.parametrize("args", MISSING_STORE, ids=" ".join)
def test_a_missing_store_is_exit_4(project, args):
    _check(project, args, ExitCode.STORE)


@pytest.mark.parametrize("args", USAGE, ids=" ".join)
def test_a_bad_option_is_exit_2_before_any_store_is_opened(project, args):
    _check(project, args, ExitCode.USAGE)
    assert not (project / "missing.zarr").exists()


@pytest.mark.parametrize("args", NOT_FOUND, ids=" ".join)
def test_no_such_task_run_or_source_is_exit_6(project, args):
    store = [] if args[0] in ("search", "data") or args[:2] == ["tasks", "add"] else ["--store", "empty.zarr"]
    _check(project, args + store, ExitCode.NOT_FOUND)
