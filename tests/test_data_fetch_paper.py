"""`tanas-tui data fetch paper`: the file table, downloads from a server on 127.0.0.1, checks, and offline advice."""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import struct

import numpy as np
import pytest
from typer.testing import CliRunner

from engine.data import paper_files
from engine.data.paper_files import PAPER_FILES, QUICKDRAW_CATEGORIES, check_file, fetch_paper, with_mirrors
from tanas_tui.cli import app
from tanas_tui.exitcodes import ExitCode
from test_data_sources import dead_url, serve  # noqa: F401 - serve is a fixture

runner = CliRunner()


def _idx_bytes(kind: str, n: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    if kind == "images":
        raw = struct.pack(">IIII", 0x0803, n, 28, 28) + rng.integers(0, 256, (n, 28, 28), dtype=np.uint8).tobytes()
    else:
        raw = struct.pack(">II", 0x0801, n) + (np.arange(n) % 10).astype(np.uint8).tobytes()
    return gzip.compress(raw, mtime=0)


def _npy_bytes(n: int, value: int, dtype=np.uint8, width: int = 784) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.full((n, width), value, dtype=dtype))
    return buf.getvalue()


def _fake_mirror(www) -> dict[str, bytes]:
    """Writes a tiny stand-in for every paper file under www/<source>/ and returns {relpath: bytes}."""
    content = {}
    for i, f in enumerate(PAPER_FILES):
        if f.source == "quickdraw":
            data = _npy_bytes(5 + i, i)
        else:
            data = _idx_bytes("images" if "images" in f.name else "labels", 6, i)
        (www / f.source).mkdir(exist_ok=True)
        (www / f.source / f.name).write_bytes(data)
        content[f.relpath] = data
    return content


def _table_for(content: dict[str, bytes]) -> tuple:
    """The real table with the fake IDX files' sizes and MD5s (the real sums cannot match stand-ins)."""
    return tuple(dataclasses.replace(f, size=len(content[f.relpath]), md5=hashlib.md5(content[f.relpath]).hexdigest())
                 if f.md5 else f for f in PAPER_FILES)


def _mirror_args(url: str) -> list[str]:
    return [arg for s in ("mnist", "fashion-mnist", "quickdraw") for arg in ("--mirror", f"{s}={url}/{s}")]


def test_the_table_covers_the_paper_data_with_published_checks():
    by_source = {s: [f for f in PAPER_FILES if f.source == s] for s in ("mnist", "fashion-mnist", "quickdraw")}
    assert len(by_source["mnist"]) == len(by_source["fashion-mnist"]) == 4 and len(PAPER_FILES) == 18
    assert QUICKDRAW_CATEGORIES == ("apple", "baseball bat", "bear", "envelope", "guitar", "lollipop", "moon", "mouse",
                                    "mushroom", "rabbit")
    from torchvision import datasets

    for source, cls in (("mnist", datasets.MNIST), ("fashion-mnist", datasets.FashionMNIST)):
        assert {(f.name, f.md5) for f in by_source[source]} == set(cls.resources)
        assert all(f.size and f.relpath == f"{cls.__name__}/raw/{f.name}" for f in by_source[source])
    moon = next(f for f in by_source["quickdraw"] if f.name == "baseball bat.npy")
    assert moon.urls == ("https://storage.googleapis.com/quickdraw_dataset/full/numpy_bitmap/baseball%20bat.npy",)
    assert all(f.md5 is None and f.sha256 is None and "npy header" in f.check for f in by_source["quickdraw"])


def test_offline_exit_3_names_every_path_and_source(tmp_path):
    data = tmp_path / "data"
    result = runner.invoke(app, ["data", "fetch", "paper", "--data-dir", str(data), "--timeout", "5",
                                 *_mirror_args(dead_url())])
    assert result.exit_code == ExitCode.DATA_UNAVAILABLE, result.output
    out = result.output
    for f in PAPER_FILES:
        assert str(data / f.relpath) in out, f.relpath
    assert "18 of 18 files" in out and "no checksum or size published" in out
    assert not [p for p in data.rglob("*") if p.is_file()], "nothing half-written is left behind"


def test_offline_with_official_urls_lists_them(tmp_path, monkeypatch):
    data = tmp_path / "data"
    result = runner.invoke(app, ["data", "fetch", "paper", "--data-dir", str(data), "--check-only"])
    assert result.exit_code == ExitCode.DATA_UNAVAILABLE
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz" in result.output
    assert "expected: 26421880 bytes, md5 8d4fb7e6c68d591d4c3dfef9ec88bf0d" in result.output
    assert "numpy_bitmap/baseball%20bat.npy" in result.output


def test_downloads_from_a_mirror_then_checks_in_place(serve, tmp_path, monkeypatch):  # noqa: F811
    www, url, requested = serve
    content = _fake_mirror(www)
    monkeypatch.setattr(paper_files, "PAPER_FILES", _table_for(content))
    data = tmp_path / "data"
    result = runner.invoke(app, ["data", "fetch", "paper", "--data-dir", str(data), *_mirror_args(url)])
    assert result.exit_code == 0, result.output
    assert result.output.count("(downloaded)") == 18
    for relpath, raw in content.items():
        assert (data / relpath).read_bytes() == raw
    assert "/quickdraw/baseball%20bat.npy" in requested
    served = len(requested)
    again = runner.invoke(app, ["data", "fetch", "paper", "--data-dir", str(data), *_mirror_args(url)])
    assert again.exit_code == 0 and "(downloaded)" not in again.output and len(requested) == served


def test_a_download_that_fails_its_checksum_is_removed(serve, tmp_path):  # noqa: F811
    www, url, _ = serve
    _fake_mirror(www)                      # stand-ins cannot match the published MD5s
    files = with_mirrors([f for f in PAPER_FILES if f.source == "mnist"][:1], {"mnist": url + "/mnist"})
    [status] = fetch_paper(tmp_path, files=files)
    assert status.status == "missing" and "downloaded, but size" in status.detail
    assert not status.path.exists()


def test_placed_files_are_checked_without_downloading(tmp_path):
    [moon] = [f for f in PAPER_FILES if f.name == "moon.npy"]
    path = tmp_path / moon.relpath
    path.parent.mkdir(parents=True)
    path.write_bytes(_npy_bytes(3, 1))
    assert check_file(moon, path) == ("ok", "")
    path.write_bytes(_npy_bytes(3, 1, width=28))
    status, why = check_file(moon, path)
    assert status == "bad" and "expected uint8 [n, 784]" in why
    path.write_bytes(b"not numpy")
    assert check_file(moon, path)[0] == "bad"
    [mnist] = [f for f in PAPER_FILES if f.name == "t10k-labels-idx1-ubyte.gz" and f.source == "mnist"]
    placed = tmp_path / mnist.relpath
    placed.parent.mkdir(parents=True)
    placed.write_bytes(b"x" * mnist.size)
    status, why = check_file(mnist, placed)
    assert status == "bad" and why.startswith("md5 ") and mnist.md5 in why
    result = runner.invoke(app, ["data", "fetch", "paper", "--data-dir", str(tmp_path), "--check-only"])
    assert result.exit_code == ExitCode.DATA_UNAVAILABLE
    assert f"now: md5 {hashlib.md5(b'x' * mnist.size).hexdigest()}, expected {mnist.md5}" in result.output
    assert placed.exists(), "--check-only never deletes a placed file"


def test_bad_arguments_are_named(tmp_path):
    result = runner.invoke(app, ["data", "fetch", "imagenet", "--data-dir", str(tmp_path)])
    assert result.exit_code == ExitCode.NOT_FOUND and "known: paper" in result.output
    result = runner.invoke(app, ["data", "fetch", "paper", "--data-dir", str(tmp_path), "--mirror", "svhn=http://x"])
    assert result.exit_code == ExitCode.USAGE and "svhn" in result.output
    result = runner.invoke(app, ["data", "fetch", "paper", "--data-dir", str(tmp_path), "--mirror", "mnist"])
    assert result.exit_code == ExitCode.USAGE and "SOURCE=URL" in result.output
