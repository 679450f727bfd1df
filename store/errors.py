"""The store's exceptions. All derive from StoreError so callers can catch one type."""
from __future__ import annotations


class StoreError(Exception):
    """A store is missing, malformed, read-only where a write was asked, or given bad input."""


class StoreLocked(StoreError):
    """Another process (or another Store object in this process) holds the writer lock."""

    def __init__(self, message: str, pid: int | None = None):
        super().__init__(message)
        self.pid = pid


class StoreIncompatible(StoreError):
    """The store was written by an incompatible major version of the on-disk format."""


class NotFound(StoreError):
    """No such task, search run or distance entry."""


class StoreCorrupt(StoreError):
    """A store file cannot be read (truncated, garbage): the message names it and suggests `store check --repair`."""

    def __init__(self, path: object, problem: str):
        super().__init__(f"store file {path} is unreadable ({problem}); run `tanas-tui store check --repair` to "
                         f"repair what can be repaired")
        self.path = path
