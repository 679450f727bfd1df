"""The user's own data: an image folder (one sub-folder per class) or an `.npz` file with `x` and `y`."""
from __future__ import annotations

import zipfile

import numpy as np

from engine.data.base import DataUnavailable, Source, SourceError


MAX_UNNAMED_CLASSES = 10_000   # labels 0..max without class names are named by number up to this


IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".pgm", ".ppm", ".pbm", ".tif", ".tiff", ".webp")
MAX_LISTED = 5   # unreadable entries named in one error message


class ImageFolderSource(Source):
    """torchvision `ImageFolder` layout: <path>/<class>/<image> (sub-folders of a class folder count for it);
    converted to grayscale 28x28 and held in memory.

    Checked when the classes are read (the config's check, before any work) and again when the images are decoded:
    a directory with an image's name, a file that is not an image, an image whose header cannot be read or whose
    pixels cannot be decoded, and a class folder without images each refuse the source (SourceError: exit 2) naming
    the path; `skip_unreadable = true` leaves the unreadable entries out instead and says how many (an empty class
    is refused either way). Hidden files (`.DS_Store`) are ignored."""

    kind = "image-folder"

    def _root(self):
        root = self.path_option("path")
        if not root.is_dir():
            raise DataUnavailable(f"source {self.name!r}: image folder {root} does not exist (option 'path')")
        return root

    def classes(self) -> tuple[str, ...]:
        return self._scan(headers=True)[0]

    def available(self) -> bool:
        return self.path_option("path").is_dir()

    def _scan(self, headers: bool):
        """(classes, [(file, label)], [unreadable "path (why)"]); raises SourceError unless skipping is on."""
        import os

        root = self._root()
        classes = tuple(sorted(e.name for e in root.iterdir() if e.is_dir() and not e.name.startswith(".")))
        if not classes:
            raise SourceError(f"source {self.name!r}: image folder {root} has no class folders (expected "
                              f"{root}/<class>/<image>)")
        samples, bad = [], []
        for label, name in enumerate(classes):
            count = 0
            for folder, dirs, files in os.walk(root / name, followlinks=True):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for d in dirs:
                    if d.lower().endswith(IMAGE_EXTENSIONS):
                        bad.append(f"{os.path.join(folder, d)} (a directory, not an image)")
                for f in sorted(files):
                    if f.startswith("."):
                        continue
                    path = os.path.join(folder, f)
                    why = None if f.lower().endswith(IMAGE_EXTENSIONS) else "not an image file"
                    if why is None and headers:
                        why = _header_problem(path)
                    if why is not None:
                        bad.append(f"{path} ({why})")
                        continue
                    samples.append((path, label))
                    count += 1
            if count == 0:
                raise SourceError(f"source {self.name!r}: class folder {root / name} holds no readable images")
        self._refuse_unless_skipping(bad)
        return classes, samples, bad

    def _refuse_unless_skipping(self, bad: list[str]) -> None:
        if bad and not self.options.get("skip_unreadable"):
            more = f" and {len(bad) - MAX_LISTED} more" if len(bad) > MAX_LISTED else ""
            raise SourceError(f"source {self.name!r}: {len(bad)} unreadable entr{'y' if len(bad) == 1 else 'ies'}: "
                              f"{'; '.join(bad[:MAX_LISTED])}{more} (fix or remove them, or set "
                              f"skip_unreadable = true in [sources.{self.name}] to leave them out)")

    def _load(self):
        from PIL import Image

        classes, samples, bad = self._scan(headers=False)
        images = np.empty((len(samples), 28, 28), dtype=np.uint8)
        keep = np.ones(len(samples), dtype=bool)
        for i, (path, _) in enumerate(samples):
            try:
                with Image.open(path) as img:
                    images[i] = np.asarray(img.convert("L").resize((28, 28), Image.Resampling.BILINEAR))
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
                bad.append(f"{path} (cannot decode: {exc})")
                keep[i] = False
        self._refuse_unless_skipping(bad)
        labels = np.asarray([label for _, label in samples], dtype=np.int64)[keep]
        for label, name in enumerate(classes):
            if not (labels == label).any():
                raise SourceError(f"source {self.name!r}: class folder {self._root() / name} holds no readable images")
        self.skipped = tuple(bad)
        return images[keep], labels, classes


def _header_problem(path: str) -> str | None:
    """Why `path` is no image PIL can open (its header only: cheap), or None."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path):
            return None
    except UnidentifiedImageError:
        return "not a readable image"
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        return f"cannot open: {getattr(exc, 'strerror', None) or exc}"


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
        if not len(y):
            raise SourceError(f"source {self.name!r}: {path} holds no samples")
        counts = np.bincount(y, minlength=len(classes))
        if (self.options.get("classes") or stored) and (counts == 0).any():   # numbered classes may have gaps
            empty = int(np.flatnonzero(counts == 0)[0])
            raise SourceError(f"source {self.name!r}: {path}: class {classes[empty]!r} (label {empty}) has no samples")
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
