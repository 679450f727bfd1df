"""Data sources are checked when they are read: an image folder holding a corrupt image, a file that is not an image,
a directory with an image's name or an empty class, and an npz with an empty class or no samples, each exit 2 naming
the path before any training; `skip_unreadable = true` leaves the unreadable files out and says how many."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from engine.data import clear_cache
from store import Store
from tanas_tui.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_cached_sources():
    clear_cache()
    yield
    clear_cache()


def _folder(root, per_class: int = 10):
    for cls, colour in (("dark", 20), ("light", 230)):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            Image.new("L", (28, 28), colour + i).save(root / cls / f"{i}.png")
    return root


def _config(tmp_path, skip: bool = False) -> str:
    text = f"""
[project]
store = "store.zarr"
device = "cpu"
threads = 1

[dictionary]
max_epochs = 1
batch_size = 16
fisher_samples = 8

[sources.shots]
kind = "image-folder"
path = "imgs"
{"skip_unreadable = true" if skip else ""}

[[tasks]]
name = "is-dark"
source = "shots"
positive = ["dark"]
"""
    (tmp_path / "tanas.toml").write_text(text)
    return str(tmp_path / "tanas.toml")


def _add(tmp_path, skip: bool = False):
    return runner.invoke(app, ["tasks", "add", "is-dark", "--config", _config(tmp_path, skip)])


def _no_work_done(tmp_path) -> None:
    path = tmp_path / "store.zarr"
    if path.exists():
        with Store.open(path) as store:
            assert store.task_ids() == []


def test_a_corrupt_png_is_refused_at_load_naming_it(tmp_path):
    _folder(tmp_path / "imgs")
    (tmp_path / "imgs" / "dark" / "corrupt.png").write_bytes(b"\x00not a png at all" * 20)
    result = _add(tmp_path)
    assert result.exit_code == 2, result.output
    assert "corrupt.png" in result.output and "not a readable image" in result.output, result.output
    assert "skip_unreadable = true" in result.output and "Traceback" not in result.output
    assert "probe" not in result.output      # refused before any dictionary work
    _no_work_done(tmp_path)


def test_a_directory_with_an_image_name_is_refused(tmp_path):
    _folder(tmp_path / "imgs")
    (tmp_path / "imgs" / "light" / "x.png").mkdir()
    result = _add(tmp_path)
    assert result.exit_code == 2, result.output
    assert "x.png (a directory, not an image)" in result.output, result.output
    _no_work_done(tmp_path)


def test_a_file_that_is_not_an_image_is_refused(tmp_path):
    _folder(tmp_path / "imgs")
    (tmp_path / "imgs" / "light" / "notes.txt").write_text("hello")
    (tmp_path / "imgs" / "light" / ".DS_Store").write_bytes(b"\x00\x01")    # hidden files are ignored
    result = _add(tmp_path)
    assert result.exit_code == 2, result.output
    assert "notes.txt (not an image file)" in result.output and ".DS_Store" not in result.output, result.output


def test_an_empty_class_folder_is_refused_even_when_skipping(tmp_path):
    _folder(tmp_path / "imgs")
    (tmp_path / "imgs" / "empty").mkdir()
    (tmp_path / "imgs" / "empty" / "broken.png").write_bytes(b"nope")
    for skip in (False, True):
        result = _add(tmp_path, skip)
        assert result.exit_code == 2, result.output
        assert "empty" in result.output and "holds no readable images" in result.output, result.output
    _no_work_done(tmp_path)


def test_a_truncated_png_fails_when_decoded_with_exit_2_naming_it(tmp_path):
    _folder(tmp_path / "imgs")
    good = (tmp_path / "imgs" / "dark" / "0.png").read_bytes()
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 255, (28, 28), dtype=np.uint8))
    noisy.save(tmp_path / "full.png")
    (tmp_path / "imgs" / "dark" / "cut.png").write_bytes((tmp_path / "full.png").read_bytes()[:60])
    assert good
    result = _add(tmp_path)
    assert result.exit_code == 2, result.output
    assert "cut.png (cannot decode" in result.output, result.output


def test_skip_unreadable_leaves_them_out_and_says_how_many(tmp_path):
    _folder(tmp_path / "imgs")
    (tmp_path / "imgs" / "dark" / "corrupt.png").write_bytes(b"garbage" * 10)
    (tmp_path / "imgs" / "light" / "notes.txt").write_text("hello")
    (tmp_path / "imgs" / "light" / "y.jpg").mkdir()
    result = _add(tmp_path, skip=True)
    assert result.exit_code == 0, result.output
    assert "skipped 3 unreadable files" in result.output, result.output
    preview = runner.invoke(app, ["data", "preview", "shots", "-n", "2", "--config", str(tmp_path / "tanas.toml")])
    assert preview.exit_code == 0, preview.output
    assert "20 images, 2 classes, 3 unreadable files skipped" in preview.output, preview.output


@pytest.mark.parametrize("y,message", [(np.array([0, 0, 2, 2]), "class 'b' (label 1) has no samples"),
                                       (np.zeros(0, np.int64), "holds no samples")])
def test_an_npz_with_an_empty_class_or_no_samples_is_refused(tmp_path, y, message):
    np.savez(tmp_path / "d.npz", x=np.zeros((len(y), 28, 28), np.uint8), y=y)
    (tmp_path / "tanas.toml").write_text(f"""
[project]
store = "store.zarr"

[sources.arr]
kind = "npz"
path = "d.npz"
classes = ["a", "b", "c"]

[[tasks]]
name = "is-a"
source = "arr"
positive = ["a"]
""")
    result = runner.invoke(app, ["tasks", "add", "is-a", "--config", str(tmp_path / "tanas.toml")])
    assert result.exit_code == 2, result.output
    assert "d.npz" in result.output and message in result.output, result.output
