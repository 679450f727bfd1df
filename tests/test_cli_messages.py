"""Messages that lead somewhere (issue 23 item 8): each names a command or option that exists and the README's exit
code, and says a thing once."""
from __future__ import annotations

from typer.testing import CliRunner

from tanas_tui.cli import app
from tanas_tui.exitcodes import ExitCode
from ui_fixtures import build_fixture_store

runner = CliRunner()


def test_tasks_show_without_a_store_says_there_is_none(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["tasks", "show", "nope"])
    assert result.exit_code == ExitCode.STORE
    assert f"no tanas store at {tmp_path / 'tanas-store.zarr'}" in result.output
    assert "Store.open" not in result.output and "mode=" not in result.output


def test_bare_command_without_a_config_points_to_init(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TERM", "xterm-256color")
    result = runner.invoke(app, [])
    assert result.exit_code == ExitCode.STORE
    assert "`tanas-tui init`" in result.output and "no tanas.toml" in result.output


def test_dumb_terminal_refuses_the_full_screen_ui_and_points_to_the_cli(tmp_path, monkeypatch):
    store = build_fixture_store(tmp_path / "store.zarr")
    monkeypatch.setenv("TERM", "dumb")
    for args in ([], ["ui"]):
        result = runner.invoke(app, args + ["--store", str(store)] if args else ["ui", "--store", str(store)])
        assert result.exit_code == ExitCode.USAGE, result.output
        assert "TERM=dumb" in result.output and "tanas-tui attach" in result.output
        assert "\x1b[" not in result.output


def test_attach_with_nothing_running_says_so_and_exits_0(tmp_path):
    store = build_fixture_store(tmp_path / "store.zarr")
    result = runner.invoke(app, ["attach", "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert "nothing is running" in result.output and "error:" not in result.output
    assert "tanas-tui run --detach" in result.output


def test_ctrl_c_in_attach_says_detached_once(tmp_path, monkeypatch):
    from tanas_tui import store_follow

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    store = build_fixture_store(tmp_path / "store.zarr")
    monkeypatch.setattr(store_follow, "store_writer", lambda path: 4242)     # a headless run holds the store
    monkeypatch.setattr(store_follow, "follow_store", interrupted)
    result = runner.invoke(app, ["attach", "--store", str(store)])
    assert result.exit_code == ExitCode.INTERRUPTED
    assert "detached; the run goes on" in result.output
    assert "error:" not in result.output and result.output.count("detached") == 1
