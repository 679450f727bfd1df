"""Data sources: every source yields uint8 [N, 1, 28, 28] images, int64 labels and class names, held in memory.

`get_source(name, sources, data_dir)` resolves a name: a user's `[sources.NAME]` section (whose `kind` is one of
`BUILTIN_KINDS`), or a built-in kind used with its default options. `SOURCE_OPTIONS` describes every kind's options
for the config loader; `validate_source_options` applies the same checks and fills the defaults.
"""
from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any, Mapping

from engine.data.base import (
    Dataset,
    DataUnavailable,
    OptionSpec,
    Source,
    SourceError,
    UnknownSource,
    check_option,
    clear_cache,
)
from engine.data.download import QUICKDRAW_URL, FashionMnistSource, MnistSource, QuickDrawSource
from engine.data.embedded import Mnist5kSource, SketchesSource, UciDigitsSource
from engine.data.local import ImageFolderSource, NpzSource

_KINDS: dict[str, type[Source]] = {
    cls.kind: cls
    for cls in (Mnist5kSource, UciDigitsSource, SketchesSource, MnistSource, FashionMnistSource,
                QuickDrawSource, ImageFolderSource, NpzSource)
}
BUILTIN_KINDS: tuple[str, ...] = tuple(_KINDS)
EMBEDDED_KINDS: tuple[str, ...] = ("mnist-5k", "uci-digits", "sketches")

_IDX_OPTIONS = {
    "split": OptionSpec(str, "train", False),
    "per_class": OptionSpec(int, None, False),
    "seed": OptionSpec(int, 0, False),
    "base_url": OptionSpec(str, None, False),   # a mirror holding the four *-ubyte.gz files; None = torchvision's
    "verify": OptionSpec(bool, True, False),    # check the official MD5 sums after download
}

SOURCE_OPTIONS: dict[str, dict[str, OptionSpec]] = {
    "mnist-5k": {},
    "uci-digits": {},
    "sketches": {
        "per_class": OptionSpec(int, 500, False),
        "seed": OptionSpec(int, 0, False),
        "classes": OptionSpec(list[str], None, False),     # None = every shape
    },
    "mnist": dict(_IDX_OPTIONS),
    "fashion-mnist": dict(_IDX_OPTIONS),
    "quickdraw": {
        "categories": OptionSpec(list[str], None, True),
        "per_class": OptionSpec(int, 5000, False),
        "seed": OptionSpec(int, 0, False),
        "base_url": OptionSpec(str, QUICKDRAW_URL, False),
    },
    # skip_unreadable: leave out (and count) files that are no readable image instead of refusing the source
    "image-folder": {"path": OptionSpec(str, None, True), "skip_unreadable": OptionSpec(bool, False, False)},
    "npz": {"path": OptionSpec(str, None, True), "classes": OptionSpec(list[str], None, False)},
}

# Options whose value must be one of a fixed set.
SOURCE_CHOICES: dict[tuple[str, str], tuple[Any, ...]] = {
    ("mnist", "split"): ("train", "test", "all"),
    ("fashion-mnist", "split"): ("train", "test", "all"),
}


def validate_source_options(kind: str, options: Mapping[str, Any] | None, name: str | None = None) -> dict[str, Any]:
    """Checks a kind's options and fills in defaults; raises SourceError naming the option."""
    if kind not in SOURCE_OPTIONS:
        raise SourceError(f"unknown source kind {kind!r} (known: {', '.join(BUILTIN_KINDS)})")
    specs = SOURCE_OPTIONS[kind]
    options = dict(options or {})
    label = f"source {name!r} (kind {kind!r})" if name and name != kind else f"source {kind!r}"
    unknown = sorted(set(options) - set(specs))
    if unknown:
        known = ", ".join(specs) or "none"
        raise SourceError(f"{label}: unknown option {unknown[0]!r} (options of {kind!r}: {known})")
    resolved: dict[str, Any] = {}
    for key, spec in specs.items():
        if key not in options or options[key] is None:
            if spec.required:
                hint = "" if name and name != kind else (
                    f"; add a [sources.NAME] section with kind = \"{kind}\" and {key} = ... to the config"
                )
                raise SourceError(f"{label}: option {key!r} is required{hint}")
            resolved[key] = spec.default
            continue
        value = check_option(label, key, options[key], spec, SOURCE_CHOICES.get((kind, key)))
        if key == "per_class" and value < 1:
            raise SourceError(f"{label}: option 'per_class' must be at least 1, got {value}")
        if key == "base_url":
            _check_url(label, value)
        if kind == "quickdraw" and key == "categories":
            for category in value:
                _check_category(label, category)
        resolved[key] = value
    return resolved


def _check_url(label: str, url: str) -> None:
    """Downloads come over http(s) only: a file:// (or ftp://, data:) URL would read local files or other hosts'."""
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https") or not urllib.parse.urlsplit(url).netloc:
        raise SourceError(f"{label}: option 'base_url' must be an http:// or https:// URL, got {url!r}")


def _check_category(label: str, category: str) -> None:
    """A category names a file in <data_dir>/quickdraw/: no path separators, no leading dot, no control characters."""
    if (not category or category.startswith(".") or any(c in category for c in "/\\")
            or any(ord(c) < 32 or ord(c) == 127 for c in category)):
        raise SourceError(f"{label}: category {category!r} is not a Quick, Draw! category name (no '/', '\\', "
                          f"leading '.' or control characters)")


def _unpack(sources: Any, data_dir: Path | None, base_dir: Path | None):
    # Accept a whole engine.config.Config in place of (sources, data_dir, base_dir).
    if sources is not None and hasattr(sources, "sources") and hasattr(sources, "data_dir"):
        cfg = sources
        return cfg.sources, data_dir or cfg.data_dir, base_dir or cfg.root
    return sources or {}, data_dir, base_dir


def get_source(name: str, sources: Mapping[str, Any] | None = None, data_dir: Path | None = None,
               *, base_dir: Path | None = None) -> Source:
    """The source called `name`: a `[sources.NAME]` section of `sources`, else a built-in kind with default options.

    `data_dir` holds downloads (default ./data); relative `path` options resolve against `base_dir` (default cwd).
    `sources` may also be a whole `engine.config.Config`.
    """
    sources, data_dir, base_dir = _unpack(sources, data_dir, base_dir)
    section = sources.get(name)
    if section is not None:
        kind, options = section.kind, section.options
    elif name in _KINDS:
        kind, options = name, {}
    else:
        known = list(dict.fromkeys(list(sources) + [k for k in BUILTIN_KINDS if not _needs_options(k)]))
        raise UnknownSource(f"unknown data source {name!r} (known: {', '.join(known)})")
    if kind not in _KINDS:
        raise UnknownSource(f"source {name!r} has unknown kind {kind!r} (kinds: {', '.join(BUILTIN_KINDS)})")
    resolved = validate_source_options(kind, options, name)
    return _KINDS[kind](
        name, resolved, Path(data_dir) if data_dir is not None else Path.cwd() / "data",
        Path(base_dir) if base_dir is not None else Path.cwd(),
    )


def _needs_options(kind: str) -> bool:
    return any(spec.required for spec in SOURCE_OPTIONS[kind].values())


def list_sources(sources: Mapping[str, Any] | None = None, data_dir: Path | None = None,
                 *, base_dir: Path | None = None) -> list[Source]:
    """The built-in kinds usable without options, then every configured section (a section may shadow a built-in)."""
    sources, data_dir, base_dir = _unpack(sources, data_dir, base_dir)
    names = [k for k in BUILTIN_KINDS if not _needs_options(k)]
    names += [n for n in sources if n not in names]
    return [get_source(n, sources, data_dir, base_dir=base_dir) for n in names]


__all__ = [
    "BUILTIN_KINDS", "EMBEDDED_KINDS", "SOURCE_OPTIONS", "SOURCE_CHOICES", "Dataset", "DataUnavailable",
    "OptionSpec", "Source", "SourceError", "UnknownSource", "clear_cache", "get_source", "list_sources",
    "validate_source_options",
]
