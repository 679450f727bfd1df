"""The user's own data: an image folder (one sub-folder per class) or an `.npz` file with `x` and `y`."""
from __future__ import annotations

import zipfile

import numpy as np

from engine.data.base import DataUnavailable, Source, SourceError


MAX_UNNAMED_CLASSES = 10_000   # labels 0..max without class names are named by number up to this


class ImageFolderSource(Source):
    """torchvision `ImageFolder` layout: <path>/<class>/<image>; converted to grayscale 28x28 and held in memory."""

    kind = "image-folder"

    def _root(self):
        root = self.path_option("path")
        if not root.is_dir():
            raise DataUnavailable(f"source {self.name!r}: image folder {root} does not exist (option 'path')")
        return root

    def classes(self) -> tuple[str, ...]:
        root = self._root()
        return tuple(sorted(e.name for e in root.iterdir() if e.is_dir() and not e.name.startswith(".")))

    def available(self) -> bool:
        return self.path_option("path").is_dir()

    def _load(self):
        from PIL import Image
        from torchvision.datasets import ImageFolder

        root = self._root()
        try:
            folder = ImageFolder(str(root))
        except FileNotFoundError as exc:
            raise SourceError(f"source {self.name!r}: {exc}") from exc
        images = np.empty((len(folder.samples), 28, 28), dtype=np.uint8)
        for i, (path, _) in enumerate(folder.samples):
            with Image.open(path) as img:
                images[i] = np.asarray(img.convert("L").resize((28, 28), Image.Resampling.BILINEAR))
        labels = np.asarray(folder.targets, dtype=np.int64)
        return images, labels, tuple(folder.classes)


class NpzSource(Source):
    """An `.npz` with `x` (N,28,28 | N,1,28,28 | N,784; uint8, or float in [0, 1]) and integer `y`."""

    kind = "npz"

    def _file(self):
        path = self.path_option("path")
        if not path.is_file():
            raise DataUnavailable(f"source {self.name!r}: npz file {path} does not exist (option 'path')")
        return path

    def available(self) -> bool:
        return self.path_option("path").is_file()

    def classes(self) -> tuple[str, ...]:
        if self.options.get("classes"):
            return tuple(self.options["classes"])
        return self.load().classes

    def _load(self):
        path = self._file()
        try:
            archive = np.load(path, allow_pickle=False)
        except (ValueError, OSError, zipfile.BadZipFile) as exc:
            raise SourceError(f"source {self.name!r}: cannot read {path} as .npz ({exc})") from exc
        with archive:
            for key in ("x", "y"):
                if key not in archive.files:
                    raise SourceError(f"source {self.name!r}: {path} has no array {key!r} (found: {', '.join(archive.files) or 'none'})")
            x, y = archive["x"], archive["y"]
            stored = [str(c) for c in archive["classes"]] if "classes" in archive.files else None
        images = self._images(x, path)
        if y.ndim != 1 or len(y) != len(images):
            raise SourceError(f"source {self.name!r}: {path}: 'y' must be 1-D with {len(images)} entries, got shape {y.shape}")
        if not np.issubdtype(y.dtype, np.integer):
            raise SourceError(f"source {self.name!r}: {path}: 'y' must hold integers, got {y.dtype}")
        if len(y) and y.min() < 0:
            raise SourceError(f"source {self.name!r}: {path}: 'y' has negative labels")
        if len(y) and not (self.options.get("classes") or stored) and int(y.max()) >= MAX_UNNAMED_CLASSES:   # one name per value: a huge one hangs
            at = int(np.argmax(y))
            raise SourceError(f"source {self.name!r}: {path}: label {int(y.max())} at index {at} is beyond "
                              f"{MAX_UNNAMED_CLASSES - 1} (give the class names in 'classes' or fix the label)")
        classes = tuple(self.options.get("classes") or stored or (str(i) for i in range(int(y.max()) + 1 if len(y) else 0)))
        if len(y) and int(y.max()) >= len(classes):
            raise SourceError(
                f"source {self.name!r}: {path}: label {int(y.max())} has no class name ({len(classes)} classes given)"
            )
        return images, y.astype(np.int64), classes

    def _images(self, x: np.ndarray, path) -> np.ndarray:
        shape = tuple(x.shape)
        if len(shape) == 2 and shape[1] == 784:
            x = x.reshape(-1, 28, 28)
        elif len(shape) == 4 and shape[1:] == (1, 28, 28):
            x = x[:, 0]
        elif not (len(shape) == 3 and shape[1:] == (28, 28)):
            raise SourceError(
                f"source {self.name!r}: {path}: 'x' must have shape (N, 28, 28), (N, 1, 28, 28) or (N, 784), got {shape}"
            )
        if x.dtype == np.uint8:
            return x
        if np.issubdtype(x.dtype, np.floating):
            if x.size and (np.nanmin(x) < 0 or np.nanmax(x) > 1 or np.isnan(x).any()):
                raise SourceError(f"source {self.name!r}: {path}: float 'x' must lie in [0, 1]")
            return np.rint(x * 255).astype(np.uint8)
        raise SourceError(f"source {self.name!r}: {path}: 'x' must be uint8 or float in [0, 1], got {x.dtype}")
