"""Thin Zarr access shared by the store's parts: fresh opens (no stale caches), attribute merges, JSON checks."""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.errors import NodeNotFoundError
from zarr.storage import LocalStore

from store.errors import NotFound, StoreCorrupt, StoreError


class Nodes:
    """Opens groups and arrays of one LocalStore afresh on every call, so readers never see a stale view."""

    def __init__(self, path: Path, read_only: bool):
        self.path = path
        self.read_only = read_only
        self.zstore = LocalStore(str(path), read_only=read_only)
        # attribute updates are read-modify-write of one zarr.json; serialise them within the writer process
        self.write_lock = threading.RLock()

    @property
    def _mode(self) -> str:
        return "r" if self.read_only else "r+"

    def exists(self, node_path: str) -> bool:
        return (self.path / node_path / "zarr.json").is_file() if node_path else (self.path / "zarr.json").is_file()

    def group(self, node_path: str, what: str | None = None) -> zarr.Group:
        try:
            return zarr.open_group(store=self.zstore, path=node_path, mode=self._mode)
        except NodeNotFoundError:
            raise NotFound(f"{what or node_path!r} not found in store {self.path}") from None
        except (ValueError, TypeError, KeyError, OSError) as exc:  # a truncated or garbage zarr.json
            raise StoreCorrupt(self._file(node_path), _reason(exc)) from None

    def array(self, node_path: str, what: str | None = None) -> zarr.Array:
        try:
            return zarr.open_array(store=self.zstore, path=node_path, mode=self._mode)
        except NodeNotFoundError:
            raise NotFound(f"{what or node_path!r} not found in store {self.path}") from None
        except (ValueError, TypeError, KeyError, OSError) as exc:
            raise StoreCorrupt(self._file(node_path), _reason(exc)) from None

    def read(self, node_path: str, selection: Any = Ellipsis, what: str | None = None) -> np.ndarray:
        """The array's data at `selection`; StoreCorrupt naming the array when a chunk cannot be decoded."""
        arr = self.array(node_path, what)
        try:
            return np.asarray(arr[selection])
        except Exception as exc:  # noqa: BLE001 - codec errors (Zstd, Blosc, shape) have no common base class
            raise StoreCorrupt(self.path / node_path, f"a chunk of it: {_reason(exc)}") from None

    def _file(self, node_path: str) -> Path:
        return self.path / node_path / "zarr.json" if node_path else self.path / "zarr.json"

    def attrs(self, node_path: str, what: str | None = None) -> dict[str, Any]:
        """A group's attributes. Read straight from its zarr.json (one file read and a JSON parse, ~50x cheaper
        than opening the group through Zarr, which matters for per-task reads of a large dictionary); anything
        unexpected in the file goes the Zarr way, which raises what it always raised."""
        try:
            meta = json.loads(self._file(node_path).read_bytes())
            if meta.get("node_type") == "group" and meta.get("zarr_format") == 3:
                return dict(meta.get("attributes") or {})
        except (OSError, ValueError, AttributeError):
            pass
        return dict(self.group(node_path, what).attrs.asdict())

    def ensure_group(self, node_path: str, attrs: dict[str, Any] | None = None) -> zarr.Group:
        if self.exists(node_path):
            return self.group(node_path)
        return zarr.create_group(store=self.zstore, path=node_path, attributes=attrs or {})

    def create_group(self, node_path: str, attrs: dict[str, Any]) -> zarr.Group:
        return zarr.create_group(store=self.zstore, path=node_path, attributes=attrs, overwrite=True)

    def update_attrs(
        self, node_path: str, updates: dict[str, Any], remove: tuple[str, ...] = (), what: str | None = None
    ) -> dict[str, Any]:
        """Merges `updates` into the node's current attributes (re-read now, never from a cached view)."""
        with self.write_lock:
            group = self.group(node_path, what)
            merged = dict(group.attrs.asdict())
            for key in remove:
                merged.pop(key, None)
            merged.update(updates)
            group.attrs.put(merged)
            return merged

    def delete(self, node_path: str) -> None:
        with self.write_lock:
            parent, _, name = node_path.rpartition("/")
            group = self.group(parent)
            if name in group:
                del group[name]

    def child_groups(self, node_path: str) -> list[str]:
        if not self.exists(node_path):
            return []
        return sorted(name for name, _ in self.group(node_path).groups())


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:200]


def plain(value: dict[str, Any], what: str) -> dict[str, Any]:
    """A JSON round-trip of `value` (tuples become lists); a clear error names the key that cannot be stored."""
    if not isinstance(value, dict):
        raise StoreError(f"{what}: attributes must be a dict, got {type(value).__name__}")
    for key, item in value.items():
        if not isinstance(key, str):
            raise StoreError(f"{what}: attribute keys must be strings, got {key!r}")
        try:
            json.dumps(item, default=_numpy_scalar)
        except (TypeError, ValueError) as exc:
            raise StoreError(f"{what}: attribute {key!r} cannot be stored as JSON ({exc})") from None
    return json.loads(json.dumps(value, default=_numpy_scalar))


def _numpy_scalar(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable")
