"""Data sources through `engine.data`'s public interface; downloads come from a server on 127.0.0.1."""
from __future__ import annotations

import gzip
import http.server
import socket
import struct
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.config import SourceSection
from engine.data import (
    BUILTIN_KINDS,
    SOURCE_OPTIONS,
    DataUnavailable,
    SourceError,
    UnknownSource,
    clear_cache,
    get_source,
    list_sources,
    validate_source_options,
)


class _Recorder(http.server.SimpleHTTPRequestHandler):
    requested: list[str]

    def do_GET(self):  # noqa: N802 - http.server's naming
        self.requested.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def serve(tmp_path):
    """Serves a fresh folder on 127.0.0.1; yields (folder, base_url, requested paths)."""
    root = tmp_path / "www"
    root.mkdir()
    requested: list[str] = []
    handler = type("Handler", (_Recorder,), {"requested": requested})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}", requested
    finally:
        server.shutdown()
        server.server_close()


def dead_url() -> str:
    """A 127.0.0.1 URL where nothing listens: downloads fail at once, as they do offline."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def section(name: str, kind: str, **options) -> dict[str, SourceSection]:
    return {name: SourceSection(name=name, kind=kind, options=options)}


def write_idx(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    with gzip.open(folder / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 0x0803, len(images), 28, 28) + images.astype(np.uint8).tobytes())
    with gzip.open(folder / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">II", 0x0801, len(labels)) + labels.astype(np.uint8).tobytes())


# ---------------------------------------------------------------- embedded sources

def test_mnist_5k_is_real_mnist_and_cached():
    source = get_source("mnist-5k")
    assert source.available() and source.classes() == tuple(str(i) for i in range(10))
    data = source.load()
    assert data.images.shape == (5000, 1, 28, 28) and data.images.dtype == torch.uint8
    assert data.labels.dtype == torch.int64
    assert set(data.class_counts().values()) == {500}
    assert int(data.images.max()) == 255 and 20 < float(data.images.float().mean()) < 50
    assert get_source("mnist-5k").load().images is data.images      # cached per process, not reloaded


def test_uci_digits_resized_into_a_centred_20px_box():
    data = get_source("uci-digits").load()
    assert data.images.shape == (1797, 1, 28, 28)
    assert data.classes == tuple(str(i) for i in range(10))
    img = data.images[:, 0]
    assert int(img[:, :4].max()) == 0 and int(img[:, 24:].max()) == 0
    assert int(img[:, :, :4].max()) == 0 and int(img[:, :, 24:].max()) == 0
    assert int(img.max()) > 200
    # bilinear upscaling leaves intermediate grey levels, not 17 flat steps
    assert len(torch.unique(img)) > 100


def test_list_sources_has_the_offline_kinds_and_configured_sections(tmp_path):
    sources = section("few-shapes", "sketches", per_class=5, classes=["circle", "moon"])
    listed = {s.name: s for s in list_sources(sources, tmp_path)}
    assert {"mnist-5k", "uci-digits", "sketches", "mnist", "fashion-mnist", "few-shapes"} <= set(listed)
    assert "quickdraw" not in listed                 # needs categories: only via a [sources.NAME] section
    assert listed["few-shapes"].kind == "sketches"
    assert listed["few-shapes"].classes() == ("circle", "moon")
    assert not listed["mnist"].available()           # nothing in the empty data dir
    assert listed["fashion-mnist"].classes()[0] == "t-shirt" and listed["fashion-mnist"].classes()[-1] == "ankle-boot"


def test_named_section_options_and_cache_key(tmp_path):
    sources = {**section("a", "sketches", per_class=7, seed=1), **section("b", "sketches", per_class=7, seed=2)}
    a = get_source("a", sources, tmp_path).load()
    b = get_source("b", sources, tmp_path).load()
    assert len(a) == len(b) == 70 and a.source == "a"
    assert not torch.equal(a.images, b.images)


# ---------------------------------------------------------------- names and options

def test_unknown_source_names_the_known_ones():
    with pytest.raises(UnknownSource, match=r"'nope'.*mnist-5k.*sketches"):
        get_source("nope")


def test_option_validation_names_the_option():
    assert set(SOURCE_OPTIONS) == set(BUILTIN_KINDS)
    assert validate_source_options("sketches", {}) == {"per_class": 500, "seed": 0, "classes": None}
    with pytest.raises(SourceError, match="'colour'"):
        validate_source_options("sketches", {"colour": 1})
    with pytest.raises(SourceError, match="'per_class' must be an integer"):
        validate_source_options("sketches", {"per_class": "many"})
    with pytest.raises(SourceError, match="'split' must be one of train, test, all"):
        validate_source_options("mnist", {"split": "validation"})
    with pytest.raises(SourceError, match="'categories' is required.*sources.NAME"):
        get_source("quickdraw")
    with pytest.raises(SourceError, match="'path' is required"):
        get_source("mine", section("mine", "npz"))
    with pytest.raises(SourceError, match="unknown sketch class 'dog'"):
        get_source("s", section("s", "sketches", classes=["dog"])).classes()


# ---------------------------------------------------------------- MNIST / Fashion-MNIST through torchvision

def test_mnist_downloads_from_a_mirror_into_data_dir(serve, tmp_path):
    www, url, requested = serve
    rng = np.random.default_rng(0)
    train_x, test_x = rng.integers(0, 256, (30, 28, 28)), rng.integers(0, 256, (20, 28, 28))
    write_idx(www, "train", train_x, np.arange(30) % 10)
    write_idx(www, "t10k", test_x, np.arange(20) % 10)
    data_dir = tmp_path / "data"
    sources = section("mnist", "mnist", base_url=url + "/", verify=False, split="all")
    source = get_source("mnist", sources, data_dir)
    assert not source.available()
    data = source.load()
    assert data.images.shape == (50, 1, 28, 28)
    assert torch.equal(data.images[:30, 0], torch.from_numpy(train_x.astype(np.uint8)))
    assert data.labels.tolist() == (list(np.arange(30) % 10) + list(np.arange(20) % 10))
    assert (data_dir / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz").exists()
    assert source.available()
    assert {p.rsplit("/", 1)[-1] for p in requested} == {f"{p}-{k}-idx{d}-ubyte.gz" for p in ("train", "t10k")
                                                         for k, d in (("images", 3), ("labels", 1))}
    served = len(requested)

    clear_cache()      # a second process: reads the files, no download
    again = get_source("mnist", section("mnist", "mnist", base_url=dead_url(), per_class=2, split="train"), data_dir)
    assert again.load().class_counts() == {str(i): 2 for i in range(10)}
    assert len(requested) == served


def test_fashion_mnist_offline_names_the_files_and_folder(tmp_path):
    source = get_source("fashion-mnist", section("fashion-mnist", "fashion-mnist", base_url=dead_url()), tmp_path)
    with pytest.raises(DataUnavailable) as info:
        source.load()
    message = str(info.value)
    assert "train-images-idx3-ubyte.gz" in message and "train-labels-idx1-ubyte.gz" in message
    assert str(tmp_path / "FashionMNIST" / "raw") in message


def test_mnist_checksums_are_verified_by_default(serve, tmp_path):
    www, url, _ = serve
    write_idx(www, "train", np.zeros((3, 28, 28)), np.zeros(3))
    with pytest.raises(DataUnavailable, match="train-images-idx3-ubyte.gz"):
        get_source("m", section("m", "mnist", base_url=url), tmp_path).load()


# ---------------------------------------------------------------- Quick, Draw!

def _bitmaps(n: int, value: int) -> np.ndarray:
    x = np.zeros((n, 784), np.uint8)
    x[:, :] = value
    x[:, 0] = np.arange(n) % 256          # tells rows apart
    return x


def test_quickdraw_downloads_once_with_quoted_names(serve, tmp_path):
    www, url, requested = serve
    np.save(www / "baseball bat.npy", _bitmaps(50, 10))
    np.save(www / "moon.npy", _bitmaps(40, 20))
    sources = section("qd", "quickdraw", categories=["baseball bat", "moon"], per_class=15, base_url=url)
    data = get_source("qd", sources, tmp_path).load()
    assert data.classes == ("baseball bat", "moon")
    assert data.class_counts() == {"baseball bat": 15, "moon": 15}
    assert set(data.images[data.labels == 1, 0, 0, 1].tolist()) == {20}
    assert "/baseball%20bat.npy" in requested
    folder = tmp_path / "quickdraw"
    assert sorted(p.name for p in folder.iterdir()) == ["baseball bat.npy", "moon.npy"]   # no temp files left

    clear_cache()
    again = get_source("qd", section("qd", "quickdraw", categories=["baseball bat", "moon"], per_class=15,
                                     base_url=dead_url()), tmp_path)
    assert again.available()
    assert torch.equal(again.load().images, data.images)      # same rows: the choice is deterministic
    assert len(requested) == 2


def test_quickdraw_reads_pre_placed_files_and_reports_missing_ones(tmp_path):
    folder = tmp_path / "quickdraw"
    folder.mkdir()
    np.save(folder / "apple.npy", _bitmaps(12, 5))
    sources = section("qd", "quickdraw", categories=["apple"], base_url=dead_url())
    data = get_source("qd", sources, tmp_path).load()
    assert len(data) == 12                          # fewer rows than per_class: all of them

    missing = get_source("qd2", section("qd2", "quickdraw", categories=["apple", "moon"], base_url=dead_url()), tmp_path)
    assert not missing.available()
    with pytest.raises(DataUnavailable) as info:
        missing.load()
    assert "moon.npy" in str(info.value) and str(folder) in str(info.value)


def test_quickdraw_rejects_files_of_the_wrong_shape(tmp_path):
    (tmp_path / "quickdraw").mkdir()
    np.save(tmp_path / "quickdraw" / "apple.npy", np.zeros((3, 100), np.uint8))
    with pytest.raises(SourceError, match=r"uint8 \[n, 784\]"):
        get_source("q", section("q", "quickdraw", categories=["apple"]), tmp_path).load()


# ---------------------------------------------------------------- the user's own data

def test_image_folder_becomes_grey_28x28(tmp_path):
    for cls, colour in (("cats", (250, 250, 250)), ("dogs", (0, 0, 0))):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (40 + i, 33), colour).save(tmp_path / "imgs" / cls / f"{i}.png")
    source = get_source("pets", section("pets", "image-folder", path="imgs"), tmp_path, base_dir=tmp_path)
    assert source.classes() == ("cats", "dogs")
    data = source.load()
    assert data.images.shape == (6, 1, 28, 28)
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert int(data.images[0].min()) == 250 and int(data.images[5].max()) == 0

    with pytest.raises(DataUnavailable, match="does not exist"):
        get_source("x", section("x", "image-folder", path=str(tmp_path / "nowhere"))).load()


@pytest.mark.parametrize("shape,dtype", [((6, 784), np.uint8), ((6, 1, 28, 28), np.float32), ((6, 28, 28), np.uint8)])
def test_npz_layouts(tmp_path, shape, dtype):
    x = np.ones(shape, dtype) if dtype != np.uint8 else np.full(shape, 255, dtype)
    np.savez(tmp_path / "d.npz", x=x, y=np.array([0, 1, 2, 0, 1, 2]))
    data = get_source("d", section("d", "npz", path=str(tmp_path / "d.npz"), classes=["a", "b", "c"])).load()
    assert data.images.shape == (6, 1, 28, 28) and int(data.images.min()) == 255
    assert data.classes == ("a", "b", "c") and data.labels.tolist() == [0, 1, 2, 0, 1, 2]


def test_npz_errors_are_clear(tmp_path):
    def load(name, **arrays):
        np.savez(tmp_path / f"{name}.npz", **arrays)
        return get_source(name, section(name, "npz", path=str(tmp_path / f"{name}.npz"))).load()

    with pytest.raises(SourceError, match="no array 'y'"):
        load("noy", x=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(SourceError, match=r"'x' must have shape .*got \(2, 28, 27\)"):
        load("shape", x=np.zeros((2, 28, 27), np.uint8), y=np.zeros(2, int))
    with pytest.raises(SourceError, match=r"\[0, 1\]"):
        load("range", x=np.full((2, 28, 28), 3.0), y=np.zeros(2, int))
    with pytest.raises(SourceError, match="'y' must be 1-D with 2 entries"):
        load("len", x=np.zeros((2, 28, 28), np.uint8), y=np.zeros(3, int))
    assert load("plain", x=np.zeros((2, 28, 28), np.uint8), y=np.array([0, 3])).classes == ("0", "1", "2", "3")
    with pytest.raises(DataUnavailable, match="missing.npz"):
        get_source("m", section("m", "npz", path=str(tmp_path / "missing.npz"))).load()


def test_an_npz_label_far_beyond_the_classes_is_refused_naming_its_index(tmp_path):
    path = tmp_path / "d.npz"
    y = np.zeros(20, np.int64)
    y[7] = 10**12
    np.savez(path, x=np.zeros((20, 28, 28), np.uint8), y=y)
    with pytest.raises(SourceError, match=r"label 1000000000000 at index 7 is beyond 9999"):
        get_source("d", section("d", "npz", path=str(path))).load()
