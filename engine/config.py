"""The project configuration: `tanas.toml` sections as frozen dataclasses, and their loader.

Precedence: command-line override > `TANAS_*` environment variable > config file > built-in default.
Unknown keys, wrong types and missing required values raise `ConfigError`, naming the file, the key and the line.
"""
from __future__ import annotations

import dataclasses
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from engine.tasks import TaskDef


class ConfigError(ValueError):
    """A configuration problem, located as precisely as the source allows."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None, line: int | None = None):
        self.file, self.key, self.line, self.message = file, key, line, message
        where = file or "<config>"
        if line is not None:
            where += f":{line}"
        super().__init__(f"{where}: {key + ': ' if key else ''}{message}")


@dataclass(frozen=True)
class ProjectSection:
    store: str = "tanas-store.zarr"
    data_dir: str = "data"
    device: str = "auto"          # auto | cpu | cuda
    seed: int = 0
    threads: int = 0              # torch intra-op threads on CPU; 0 = torch's default


@dataclass(frozen=True)
class DictionarySection:
    probe: str = "cnn"            # cnn | resnet18
    epsilon: float = 0.05
    max_epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    method: str = "fisher"        # fisher | transfer: the distance used for nearest tasks and spaces
    fisher: str = "empirical"     # empirical | model
    fisher_samples: int = 1000
    include_head: bool = False
    seeds: int = 1
    k: int = 3
    # Budget of the search that gives each base task its best genotype (0 rounds = inherit from the nearest task).
    genotype_rounds: int = 1


@dataclass(frozen=True)
class TransferSection:
    epsilon: float = 0.05
    epochs: int = 10              # MSE training epochs of the transform network
    finetune_epochs: int = 2      # after each pruning step
    prune_step: float = 0.05
    lr: float = 1e-3
    batch_size: int = 128
    max_samples: int = 2000       # samples of B's train split used to fit the transform


@dataclass(frozen=True)
class SpaceSection:
    kind: str = "task-aware"      # task-aware | standard
    channels: tuple[int, ...] = (8, 16, 32)
    layers: tuple[int, ...] = (3, 5, 8)
    nodes: tuple[int, ...] = (4,)
    smoothing: float = 0.05


@dataclass(frozen=True)
class SearchSection:
    rounds: int = 5
    candidates: int = 4
    alternations: int = 5
    w_epochs: int = 1
    alpha_epochs: int = 1
    w_lr: float = 1e-3
    alpha_lr: float = 3e-3
    batch_size: int = 128
    final_epochs: int = 10
    checkpoint_minutes: float = 5.0
    compare: bool = False         # also run random search, FUSE in the standard space and fixed networks
    fixed_networks: tuple[str, ...] = ("resnet18",)
    repeats: int = 1              # seeds for mean ± std in the comparison table


@dataclass(frozen=True)
class SourceSection:
    name: str
    kind: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    file: str | None
    project: ProjectSection
    dictionary: DictionarySection
    transfer: TransferSection
    space: SpaceSection
    search: SearchSection
    sources: Mapping[str, SourceSection]
    tasks: tuple[TaskDef, ...]
    target: TaskDef | None

    def snapshot(self) -> dict[str, Any]:
        """Plain-data copy for the store and for comparing a resume's config with the original."""
        return _plain(dataclasses.asdict(self))

    @property
    def root(self) -> Path:
        return Path(self.file).resolve().parent if self.file else Path.cwd()

    def path(self, value: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.root / p

    @property
    def store_path(self) -> Path:
        return self.path(self.project.store)

    @property
    def data_dir(self) -> Path:
        return self.path(self.project.data_dir)

    def task(self, name: str) -> TaskDef:
        for t in self.all_tasks():
            if t.name == name:
                return t
        raise ConfigError(f"no task named {name!r} (known: {', '.join(t.name for t in self.all_tasks())})", file=self.file)

    def all_tasks(self) -> tuple[TaskDef, ...]:
        return self.tasks + ((self.target,) if self.target else ())


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
