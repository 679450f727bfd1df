"""Sources downloaded once into the data directory: MNIST and Fashion-MNIST (torchvision), Quick, Draw! bitmaps."""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np

from engine.data.base import DataUnavailable, Source, SourceError, per_class_indices

QUICKDRAW_URL = "https://storage.googleapis.com/quickdraw_dataset/full/numpy_bitmap"
FASHION_CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot")
DOWNLOAD_TIMEOUT_S = 60


def _split_files(split: str) -> list[str]:
    prefixes = {"train": ["train"], "test": ["t10k"], "all": ["train", "t10k"]}[split]
    return [f"{p}-{part}-idx{d}-ubyte" for p in prefixes for part, d in (("images", 3), ("labels", 1))]


class _IdxSource(Source):
    """MNIST-format data through torchvision, with the folder layout torchvision uses: <data_dir>/<folder>/raw/."""

    folder = "MNIST"
    class_names: tuple[str, ...] = ()
    homepage = ""

    def classes(self) -> tuple[str, ...]:
        return self.class_names

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / self.folder / "raw"

    def available(self) -> bool:
        return all((self.raw_dir / f).exists() or (self.raw_dir / f"{f}.gz").exists() for f in _split_files(self.options["split"]))

    def _torchvision_class(self):
        from torchvision import datasets

        base = getattr(datasets, self.folder)
        raw_dir = str(self.raw_dir)
        attrs = {"raw_folder": property(lambda _self: raw_dir)}
        if self.options.get("base_url"):
            attrs["mirrors"] = [self.options["base_url"].rstrip("/") + "/"]
        if not self.options["verify"]:
            attrs["resources"] = [(name, None) for name, _ in base.resources]
        return type(base.__name__, (base,), attrs)

    def _load(self):
        import torch

        cls = self._torchvision_class()
        splits = {"train": [True], "test": [False], "all": [True, False]}[self.options["split"]]
        xs, ys = [], []
        for train in splits:
            try:
                # torchvision reports download progress on stdout; an engine never prints there.
                with contextlib.redirect_stdout(sys.stderr):
                    ds = cls(root=str(self.data_dir), train=train, download=True)
            except (RuntimeError, OSError, urllib.error.URLError) as exc:
                files = ", ".join(f"{f}.gz" for f in _split_files(self.options["split"]))
                mirror = self.options.get("base_url") or cls.mirrors[0]
                raise DataUnavailable(
                    f"source {self.name!r}: cannot load {self.kind} ({_reason(exc)}). Put {files} into "
                    f"{self.raw_dir}/ (from {mirror} or {self.homepage}) and run again."
                ) from exc
            xs.append(ds.data)
            ys.append(ds.targets)
        images, labels = torch.cat(xs), torch.cat(ys).to(torch.int64)
        idx = per_class_indices(labels.numpy(), self.options.get("per_class"), self.options["seed"])
        if len(idx) != len(labels):
            images, labels = images[idx], labels[idx]
        return images, labels, self.class_names


class MnistSource(_IdxSource):
    kind = "mnist"
    folder = "MNIST"
    class_names = tuple(str(i) for i in range(10))
    homepage = "http://yann.lecun.com/exdb/mnist/"


class FashionMnistSource(_IdxSource):
    kind = "fashion-mnist"
    folder = "FashionMNIST"
    class_names = FASHION_CLASSES
    homepage = "https://github.com/zalandoresearch/fashion-mnist"


def _reason(exc: BaseException) -> str:
    """One line saying why: torchvision's download errors end with the underlying error."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__


def download_file(url: str, dest: Path, timeout: float = DOWNLOAD_TIMEOUT_S) -> None:
    """Downloads to a temporary file beside `dest`, then renames it, so `dest` is never half-written."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            while chunk := response.read(1 << 20):
                out.write(chunk)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class QuickDrawSource(Source):
    """Quick, Draw! numpy bitmaps: one `<category>.npy` (uint8 [n, 784]) per category in <data_dir>/quickdraw/."""

    kind = "quickdraw"

    @property
    def folder(self) -> Path:
        return self.data_dir / "quickdraw"

    def classes(self) -> tuple[str, ...]:
        return tuple(self.options["categories"])

    def file(self, category: str) -> Path:
        return self.folder / f"{category}.npy"

    def url(self, category: str) -> str:
        return f"{self.options['base_url'].rstrip('/')}/{urllib.parse.quote(category)}.npy"

    def available(self) -> bool:
        return all(self.file(c).exists() for c in self.classes())

    def fetch(self, category: str) -> Path:
        path = self.file(category)
        if path.exists():
            return path
        url = self.url(category)
        try:
            download_file(url, path)
        except (OSError, urllib.error.URLError, ValueError) as exc:
            raise DataUnavailable(
                f"source {self.name!r}: missing {path.name!r} in {self.folder}/ and could not download it from "
                f"{url} ({_reason(exc)}). Put the numpy_bitmap file {path.name!r} into {self.folder}/."
            ) from exc
        return path

    def _load(self):
        per_class, seed = self.options.get("per_class"), self.options["seed"]
        xs, ys = [], []
        for label, category in enumerate(self.classes()):
            path = self.fetch(category)
            try:
                data = np.load(path, mmap_mode="r", allow_pickle=False)
            except ValueError as exc:
                raise SourceError(f"source {self.name!r}: {path} is not a numpy .npy file ({exc})") from exc
            if data.ndim != 2 or data.shape[1] != 784 or data.dtype != np.uint8:
                raise SourceError(
                    f"source {self.name!r}: {path} must hold uint8 [n, 784] bitmaps, got {data.dtype} {data.shape}"
                )
            if per_class is not None and per_class < len(data):
                rows = np.sort(np.random.default_rng([seed, label]).choice(len(data), per_class, replace=False))
            else:
                rows = np.arange(len(data))
            xs.append(np.asarray(data[rows]))
            ys.append(np.full(len(rows), label, dtype=np.int64))
        return np.concatenate(xs), np.concatenate(ys), self.classes()
