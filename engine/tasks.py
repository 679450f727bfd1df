"""Task definitions and task-data pairs with deterministic train / val / test splits."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskDef:
    """A labelling rule over a data source. Exactly one of `positive` (binary) or `classes` (multi-class) is set."""

    name: str
    source: str
    positive: tuple[str, ...] | None = None
    classes: tuple[str, ...] | None = None
    other: bool = False
    balance: bool = True
    limit: int | None = None
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    seed: int = 0
