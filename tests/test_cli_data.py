"""`tanas-tui data list` and `tanas-tui data preview` through Typer's CliRunner."""
from __future__ import annotations

import socket

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from tanas_tui.cli import app
from tanas_tui.exitcodes import ExitCode
from tanas_tui.preview import render_images

runner = CliRunner()


@pytest.fixture
def config(tmp_path, monkeypatch):
    """A config in its own folder (the working directory), with a small sketches source and an npz source."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TANAS_CONFIG", raising=False)
    x = np.zeros((4, 28, 28), np.uint8)
    x[:, 10:18, 10:18] = 255
    np.savez(tmp_path / "mine.npz", x=x, y=np.array([0, 1, 0, 1]))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/"
    path = tmp_path / "tanas.toml"
    path.write_text(
        '[project]\ndata_dir = "downloads"\n\n'
        '[sources.shapes]\nkind = "sketches"\nper_class = 6\nclasses = ["circle", "moon"]\n\n'
        '[sources.mine]\nkind = "npz"\npath = "mine.npz"\nclasses = ["dark", "bright"]\n\n'
        f'[sources.mnist]\nbase_url = "{dead}"\n'
    )
    return path


def test_list_shows_builtin_and_configured_sources(config):
    result = runner.invoke(app, ["data", "list", "--config", str(config)], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") >= 5}
    assert {"mnist-5k", "uci-digits", "sketches", "mnist", "fashion-mnist", "shapes", "mine"} <= set(rows)
    assert "yes" in rows["mnist-5k"] and "no" in rows["mnist"]
    assert "circle, moon" in rows["shapes"] and " 2 " in rows["shapes"]
    assert "dark, bright" in rows["mine"]
    assert "quickdraw" in result.output          # the kinds that need a section are mentioned


def test_list_offline_cells_are_coloured_on_a_terminal_and_plain_in_a_pipe(config, monkeypatch):
    """Issue 23 item 3: the offline cell was the markup string itself ("[green]yes[/]") on a terminal and in a pipe."""
    import io

    from tanas_tui import common
    from tanas_tui.safe_text import SafeConsole

    piped = runner.invoke(app, ["data", "list", "--config", str(config)], env={"COLUMNS": "160"})
    assert piped.exit_code == 0 and "[green]" not in piped.output and "[yellow]" not in piped.output
    assert "\x1b[" not in piped.output
    screen = io.StringIO()
    monkeypatch.setattr(common, "console", SafeConsole(file=screen, force_terminal=True, color_system="standard",
                                                       width=160, highlight=False, markup=False))
    tty = runner.invoke(app, ["data", "list", "--config", str(config)])
    assert tty.exit_code == 0, tty.output
    out = screen.getvalue()
    assert "[green]" not in out and "[/]" not in out
    assert "\x1b[32myes" in out and "\x1b[33mno" in out     # green "yes", yellow "no"


def test_preview_draws_density_ramp_without_colour_and_captions(config):
    result = runner.invoke(app, ["data", "preview", "shapes", "--count", "3", "--config", str(config)])
    assert result.exit_code == 0, result.output
    picture_rows = [line for line in result.output.splitlines() if set(line) & set("#%@")]
    assert 3 <= len(picture_rows) <= 7, result.output
    assert "▀" not in result.output, "half blocks are unreadable without colour"
    assert "circle" in result.output and "moon" in result.output
    one_class = runner.invoke(app, ["data", "preview", "shapes", "--class", "moon", "-n", "2", "--config", str(config)])
    assert one_class.exit_code == 0 and "moon" in one_class.output and "circle" not in one_class.output


def test_preview_unknown_source_or_class_is_one_clear_line(config):
    result = runner.invoke(app, ["data", "preview", "nope", "--config", str(config)])
    assert result.exit_code == ExitCode.NOT_FOUND
    assert result.output.strip().count("\n") == 0 and "unknown data source 'nope'" in result.output
    result = runner.invoke(app, ["data", "preview", "shapes", "--class", "dog", "--config", str(config)])
    assert result.exit_code == ExitCode.NOT_FOUND
    assert "no class 'dog'" in result.output and "circle, moon" in result.output


def test_preview_of_missing_download_says_where_to_put_the_files(config, tmp_path):
    result = runner.invoke(app, ["data", "preview", "mnist", "--config", str(config)], env={"COLUMNS": "400"})
    assert result.exit_code == ExitCode.DATA_UNAVAILABLE
    assert "train-images-idx3-ubyte.gz" in result.output
    assert str(tmp_path / "downloads" / "MNIST" / "raw") in result.output


def test_render_images_colours_are_the_pixels():
    img = np.zeros((1, 1, 28, 28), np.uint8)
    img[0, 0, :14, :] = 200            # top half light, bottom half dark
    img[0, 0, 14:, :] = 10
    console = Console(width=40, color_system="truecolor", force_terminal=True)
    lines = console.render_lines(render_images(img, ["x"], width_cells=28), console.options)
    cells = [seg for seg in lines[0] if seg.text == "▀"]
    assert len(cells) == 28 and cells[0].style.color.triplet == (200, 200, 200)
    assert cells[0].style.bgcolor.triplet == (200, 200, 200)
    middle = [seg for seg in lines[6] if seg.text == "▀"][0]          # rows 12 and 13
    assert middle.style.bgcolor.triplet == (200, 200, 200)
    lower = [seg for seg in lines[7] if seg.text == "▀"][0]           # rows 14 and 15
    assert lower.style.color.triplet == (10, 10, 10)
    with pytest.raises(ValueError, match="captions"):
        render_images(img, ["a", "b"])
