"""The data contracts every source shares: `Dataset`, `Source`, option specs and errors."""
from __future__ import annotations

import json
import threading
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, NamedTuple

import numpy as np

if typing.TYPE_CHECKING:
    import torch

# torch is imported where tensors are made: the config loader imports this package, and every CLI command
# (`--help` included) and the UI's first paint must not pay torch's import time.


class SourceError(ValueError):
    """A source is misconfigured (bad option, unknown class, unreadable file layout)."""


class UnknownSource(SourceError):
    """No built-in kind and no `[sources.NAME]` section has this name."""


class DataUnavailable(Exception):
    """A source's files are missing and cannot be downloaded; the message says which file and where it goes."""


@dataclass(frozen=True, eq=False)
class Dataset:
    source: str
    images: torch.Tensor      # uint8 [N, 1, 28, 28], CPU, contiguous
    labels: torch.Tensor      # int64 [N], values index into `classes`
    classes: tuple[str, ...]
    skipped: tuple[str, ...] = ()   # files left out by `skip_unreadable = true` (image folders), with why

    def __post_init__(self) -> None:
        import torch

        if self.images.dtype != torch.uint8 or self.images.dim() != 4 or tuple(self.images.shape[1:]) != (1, 28, 28):
            raise SourceError(
                f"source {self.source!r}: images must be uint8 [N, 1, 28, 28], got {self.images.dtype} {tuple(self.images.shape)}"
            )
        if self.labels.dtype != torch.int64 or self.labels.shape != (self.images.shape[0],):
            raise SourceError(f"source {self.source!r}: labels must be int64 [{self.images.shape[0]}]")
        if len(self.labels) and (int(self.labels.min()) < 0 or int(self.labels.max()) >= len(self.classes)):
            raise SourceError(f"source {self.source!r}: labels must lie in 0..{len(self.classes) - 1}")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def class_counts(self) -> dict[str, int]:
        import torch

        counts = torch.bincount(self.labels, minlength=len(self.classes)).tolist()
        return dict(zip(self.classes, counts))


class OptionSpec(NamedTuple):
    """One option of a source kind: its type (int, float, str, bool or list[str]), default, and whether required."""

    type: Any
    default: Any
    required: bool


def check_option(label: str, key: str, value: Any, spec: OptionSpec, choices: tuple | None = None) -> Any:
    """Returns the value converted to its canonical form, or raises SourceError naming the source and option."""
    where = f"{label}: option {key!r}"
    expected = spec.type
    if typing.get_origin(expected) is list:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise SourceError(f"{where} must be a list of strings, got {value!r}")
        if not value:
            raise SourceError(f"{where} must not be empty")
        value = list(value)
    elif expected is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SourceError(f"{where} must be a number, got {value!r}")
        value = float(value)
    elif expected is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SourceError(f"{where} must be an integer, got {value!r}")
    elif not isinstance(value, expected):
        raise SourceError(f"{where} must be {expected.__name__}, got {value!r}")
    if choices is not None and value not in choices:
        raise SourceError(f"{where} must be one of {', '.join(map(str, choices))}, got {value!r}")
    return value


def per_class_indices(labels: np.ndarray, per_class: int | None, seed: int) -> np.ndarray:
    """Up to `per_class` indices of each label, drawn by `seed`, returned in ascending order."""
    if per_class is None:
        return np.arange(len(labels))
    if per_class < 1:
        raise SourceError(f"per_class must be at least 1, got {per_class}")
    rng = np.random.default_rng(seed)
    picked = []
    for value in np.unique(labels):
        idx = np.flatnonzero(labels == value)
        picked.append(np.sort(rng.permutation(idx)[:per_class]))
    return np.sort(np.concatenate(picked)) if picked else np.arange(0)


class Source:
    """One configured source. Subclasses implement `_load`, and `classes`/`available` when they can be cheap."""

    kind: str = ""

    def __init__(self, name: str, options: Mapping[str, Any], data_dir: Path, base_dir: Path):
        self.name = name
        self.options = dict(options)
        self.data_dir = Path(data_dir)
        self.base_dir = Path(base_dir)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, kind={self.kind!r}, options={self.options!r})"

    def path_option(self, key: str) -> Path:
        p = Path(self.options[key]).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    def classes(self) -> tuple[str, ...]:
        return self.load().classes

    def available(self) -> bool:
        return True

    def load(self) -> Dataset:
        key = self._cache_key()
        with _CACHE_LOCK:
            cached = _CACHE.get(key)
        if cached is not None:
            return cached if cached.source == self.name else Dataset(self.name, cached.images, cached.labels,
                                                                     cached.classes, cached.skipped)
        import torch

        images, labels, classes = self._load()
        images = torch.as_tensor(np.ascontiguousarray(images), dtype=torch.uint8).reshape(-1, 1, 28, 28).contiguous()
        labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64).reshape(-1)
        dataset = Dataset(self.name, images, labels, tuple(classes), tuple(getattr(self, "skipped", ())))
        with _CACHE_LOCK:
            _CACHE[key] = dataset
        return dataset

    def _load(self) -> tuple[np.ndarray | torch.Tensor, np.ndarray | torch.Tensor, tuple[str, ...]]:
        raise NotImplementedError

    def _cache_key(self) -> str:
        resolved = {k: str(self.path_option(k).resolve()) if k == "path" else v for k, v in self.options.items()}
        return json.dumps([self.kind, resolved, str(self.data_dir.resolve())], sort_keys=True)


_CACHE: dict[str, Dataset] = {}
_CACHE_LOCK = threading.Lock()


def clear_cache() -> None:
    """Forgets every loaded dataset (tests; or after the user replaced files on disk)."""
    with _CACHE_LOCK:
        _CACHE.clear()
