"""The paper experiment's data files (METHOD 6): where each goes, where it comes from, and how it is checked.

One table, `PAPER_FILES`. MNIST and Fashion-MNIST: the four gzip'd IDX files each, with the sizes and MD5 sums
their publishers give (MD5 is what is published; the same sums are in torchvision's `resources`). Quick, Draw!:
one numpy_bitmap `<category>.npy` per category from Google's public bucket; no checksum or size is published for
these, so a file is checked by its .npy header instead (uint8, shape [n, 784], n > 0).

`fetch_paper` checks each file in place and downloads what is missing or broken (a failed check deletes the
downloaded copy); with no network it reports, for every file still missing, the exact path to put it at and where
to get it.
"""
from __future__ import annotations

import hashlib
import urllib.error
import urllib.parse
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from engine.data.download import DOWNLOAD_TIMEOUT_S, QUICKDRAW_URL, download_file

__all__ = ["PaperFile", "PAPER_FILES", "QUICKDRAW_CATEGORIES", "FileStatus", "check_file", "fetch_paper",
           "with_mirrors", "PAPER_SOURCES"]

MNIST_URLS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
FASHION_URLS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
QUICKDRAW_CATEGORIES = ("apple", "baseball bat", "bear", "envelope", "guitar", "lollipop", "moon", "mouse",
                        "mushroom", "rabbit")
PAPER_SOURCES = ("mnist", "fashion-mnist", "quickdraw")


@dataclass(frozen=True)
class PaperFile:
    source: str                  # "mnist" | "fashion-mnist" | "quickdraw"
    relpath: str                 # under the data directory, as the sources read it
    urls: tuple[str, ...]        # full download URLs, tried in order
    size: int | None = None      # bytes, where published
    md5: str | None = None       # where published (MNIST / Fashion-MNIST)
    sha256: str | None = None    # where published (none of these files)
    note: str = ""

    @property
    def name(self) -> str:
        return Path(self.relpath).name

    @property
    def check(self) -> str:
        parts = [p for p, v in (("size", self.size), ("md5", self.md5), ("sha256", self.sha256)) if v]
        return " + ".join(parts) if parts else "npy header: uint8 [n, 784]"


def _idx(source: str, folder: str, mirrors: Sequence[str], sizes_md5: Mapping[str, tuple[int, str]]) -> list[PaperFile]:
    return [PaperFile(source, f"{folder}/raw/{name}", tuple(m + name for m in mirrors), size, md5)
            for name, (size, md5) in sizes_md5.items()]


_NO_CHECKSUM = "no checksum or size published; checked by its .npy header"

PAPER_FILES: tuple[PaperFile, ...] = (
    # Sizes: http://yann.lecun.com/exdb/mnist/ ; MD5: torchvision.datasets.MNIST.resources.
    *_idx("mnist", "MNIST", MNIST_URLS, {
        "train-images-idx3-ubyte.gz": (9912422, "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        "train-labels-idx1-ubyte.gz": (28881, "d53e105ee54ea40749a09fcbcd1e9432"),
        "t10k-images-idx3-ubyte.gz": (1648877, "9fb629c4189551a2d022fa330f9573f3"),
        "t10k-labels-idx1-ubyte.gz": (4542, "ec29112dd5afa0611ce80d1b7f02629c"),
    }),
    # Sizes and MD5: https://github.com/zalandoresearch/fashion-mnist (and torchvision.datasets.FashionMNIST).
    *_idx("fashion-mnist", "FashionMNIST", FASHION_URLS, {
        "train-images-idx3-ubyte.gz": (26421880, "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        "train-labels-idx1-ubyte.gz": (29515, "25c81989df183df01b3e8a0aad5dffbe"),
        "t10k-images-idx3-ubyte.gz": (4422102, "bef4ecab320f06d8554ea6380940ec79"),
        "t10k-labels-idx1-ubyte.gz": (5148, "bb300cfdad3c16e7a12a480ee83cd310"),
    }),
    # https://github.com/googlecreativelab/quickdraw-dataset#numpy-bitmaps
    *(PaperFile("quickdraw", f"quickdraw/{c}.npy", (f"{QUICKDRAW_URL}/{urllib.parse.quote(c)}.npy",), note=_NO_CHECKSUM)
      for c in QUICKDRAW_CATEGORIES),
)


def with_mirrors(files: Sequence[PaperFile], mirrors: Mapping[str, str]) -> tuple[PaperFile, ...]:
    """The table with each named source's URLs replaced by `<mirror>/<file name>` (a local mirror, a test server)."""
    unknown = sorted(set(mirrors) - set(PAPER_SOURCES))
    if unknown:
        raise ValueError(f"unknown source(s) {unknown} for a mirror; known: {', '.join(PAPER_SOURCES)}")
    out = []
    for f in files:
        if f.source in mirrors:
            f = replace(f, urls=(f"{mirrors[f.source].rstrip('/')}/{urllib.parse.quote(f.name)}",))
        out.append(f)
    return tuple(out)


@dataclass(frozen=True)
class FileStatus:
    file: PaperFile
    path: Path
    status: str                  # "ok" | "missing" | "bad"
    detail: str = ""
    downloaded: bool = False


def _digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def check_file(spec: PaperFile, path: Path) -> tuple[str, str]:
    """("ok" | "missing" | "bad", why)."""
    if not path.is_file():
        return "missing", "not there"
    if spec.size is not None and path.stat().st_size != spec.size:
        return "bad", f"size {path.stat().st_size} bytes, expected {spec.size}"
    for algorithm in ("md5", "sha256"):
        expected = getattr(spec, algorithm)
        if expected and (got := _digest(path, algorithm)) != expected:
            return "bad", f"{algorithm} {got}, expected {expected}"
    if spec.relpath.endswith(".npy"):
        try:
            data = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as exc:
            return "bad", f"not a numpy .npy file ({exc})"
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 784 or data.shape[0] == 0:
            return "bad", f"holds {data.dtype} {data.shape}, expected uint8 [n, 784]"
    return "ok", ""


def fetch_paper(data_dir: Path, *, files: Sequence[PaperFile] = PAPER_FILES, download: bool = True,
                timeout: float = DOWNLOAD_TIMEOUT_S,
                progress: Callable[[FileStatus], None] | None = None) -> list[FileStatus]:
    """Checks every file under `data_dir`; downloads the missing (or broken) ones unless `download` is False.
    A file that is there but fails its check is left alone when not downloading, and replaced when downloading."""
    out = []
    for spec in files:
        path = Path(data_dir) / spec.relpath
        status, detail = check_file(spec, path)
        downloaded = False
        if status != "ok" and download:
            errors = []
            for url in spec.urls:
                try:
                    download_file(url, path, timeout=timeout)
                except (OSError, urllib.error.URLError, ValueError) as exc:
                    errors.append(f"{url}: {getattr(exc, 'reason', None) or exc}")
                    continue
                status, detail = check_file(spec, path)
                if status == "ok":
                    downloaded = True
                    break
                errors.append(f"{url}: downloaded, but {detail}")
                path.unlink(missing_ok=True)   # a copy that fails its check is never left where a source reads it
                status = "missing"
            if status != "ok":
                detail = "; ".join(([detail] if status == "bad" else []) + errors)
        result = FileStatus(spec, path, status, detail, downloaded)
        out.append(result)
        if progress is not None:
            progress(result)
    return out
