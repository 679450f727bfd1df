"""Help texts survive Rich markup (issue 11 item 13): every `[section]` / `[[tasks]]` an option, argument or
command help names appears in its `--help` output."""
from __future__ import annotations

import re

import typer
from typer.testing import CliRunner

from tanas_tui.cli import app

runner = CliRunner()


def _commands(group, path=()):
    import click

    for name, cmd in sorted(getattr(group, "commands", {}).items()):
        yield path + (name,), cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, path + (name,))


def test_bracketed_config_names_show_in_every_help():
    root = typer.main.get_command(app)
    checked = 0
    for path, cmd in _commands(root):
        texts = [cmd.help or ""] + [getattr(p, "help", None) or "" for p in cmd.params]
        wanted = {m.replace("\\", "") for t in texts for m in re.findall(r"\\?\[\[?[A-Za-z][\w.-]*\]\]?", t)}
        if not wanted:
            continue
        out = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "400"}, terminal_width=400).output
        for token in wanted:
            assert token in out, (path, token)
        checked += 1
    assert checked >= 5
