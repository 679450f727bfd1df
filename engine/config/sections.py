"""The configuration's sections as frozen dataclasses; every field carries its rule (`setting(default, rule)`) and
every section the rules that tie its fields together (`RULES`). The loader (engine/config/loader.py) applies them,
whether the values come from a TOML file, `TANAS_*` variables, flags or a job's plain-data config.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping

from engine.choices import (ARM_SPACE, ARMS, CUDA_DEVICE, DEFAULT_ARMS, DEVICES, DISTANCE_METHODS, EXECUTOR_KINDS,
                            FIXED_NETWORK_NAMES, PROBES, SKELETON_RULES, SPACE_FORMS, SPACE_KINDS)
from engine.config.rules import (SEED_LIMIT, cpu_threads, each, each_of, fraction, integer, number, one_of, path,
                                 plain_text, positive, seed, setting)
from engine.data.tasks import TaskDef

EPOCHS = integer(1, 10_000)
BATCH = integer(1, 65_536)
LEARNING_RATE = positive(10.0)
SPACE_CHOICES = {"channels": (4, 8, 16, 24, 32, 48, 64), "layers": tuple(range(1, 21)), "nodes": tuple(range(1, 8))}


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
    store: str = setting("tanas-store.zarr", path())
    data_dir: str = setting("data", path())
    device: str = setting("auto", one_of(DEVICES, CUDA_DEVICE.pattern))
    seed: int = setting(0, seed())
    # torch intra-op threads on CPU; 0 = one (engine.runtime.threads.job_threads)
    threads: int = setting(0, cpu_threads())


def _epochs_in_order(d: "DictionarySection") -> str | None:
    if d.min_epochs > d.max_epochs:
        return f"must not exceed max_epochs ({d.max_epochs}), got {d.min_epochs}"
    return None


def _domain_body(d: "DictionarySection") -> str | None:
    if d.fisher_form == "domain" and d.fisher_body != "shared":
        return f'"domain" compares Fishers of one shared body: it needs fisher_body = "shared", got {d.fisher_body!r}'
    return None


def _domain_head(d: "DictionarySection") -> str | None:
    if d.fisher_form == "domain" and d.include_head:
        return '"domain" takes no head into its Fisher: it needs include_head = false'
    return None


@dataclass(frozen=True)
class DictionarySection:
    probe: str = setting("cnn", one_of(PROBES))
    epsilon: float = setting(0.05, fraction())
    max_epochs: int = setting(20, EPOCHS)
    # Epochs every probe trains before the 1 − ε stop may end it (1 = stop as soon as 1 − ε is reached). Equal budgets
    # keep the Fisher distance from tracking how long each probe happened to train.
    min_epochs: int = setting(1, EPOCHS)
    batch_size: int = setting(128, BATCH)
    lr: float = setting(1e-3, LEARNING_RATE)
    method: str = setting("fisher", one_of(DISTANCE_METHODS))   # the distance used for nearest tasks and spaces
    fisher: str = setting("empirical", one_of(("empirical", "model")))
    fisher_samples: int = setting(1000, integer(1, 10_000_000))
    include_head: bool = False
    seeds: int = setting(1, integer(1, 1000))
    # Where the Fisher is taken (docs/SIMILARITY.md): "per-task" trains one probe per task (METHOD 3a as published);
    # "shared" trains one body on every class of the config's sources and fits only a linear head per task.
    fisher_body: str = setting("per-task", one_of(("per-task", "shared")))
    shared_epochs: int = setting(3, EPOCHS)        # epochs of the shared body on the broad task
    # "pair": d(b, t) compares F(b, t) with F(t, t) (METHOD 3a); "embedding": F(b, b) with F(t, t) (Task2Vec);
    # "domain": like "embedding", each task's Fisher of the shared body's features on its own inputs, no head
    # (label-free; needs fisher_body = "shared"; docs/SIMILARITY.md).
    fisher_form: str = setting("pair", one_of(("pair", "embedding", "domain")))
    # "global": one unit trace over all included parameters (METHOD 3a); "layer": unit trace per layer.
    fisher_norm: str = setting("global", one_of(("global", "layer")))
    k: int = setting(3, integer(1, 10_000))
    # Budget of the search that gives each base task its best genotype (0 rounds = inherit from the nearest task).
    genotype_rounds: int = setting(1, integer(0, 10_000))

    RULES: ClassVar = (("min_epochs", _epochs_in_order), ("fisher_form", _domain_body), ("include_head", _domain_head))


@dataclass(frozen=True)
class TransferSection:
    epsilon: float = setting(0.05, fraction())
    epochs: int = setting(10, EPOCHS)                  # MSE training epochs of the transform network
    finetune_epochs: int = setting(2, integer(0, 10_000))   # after each pruning step
    prune_step: float = setting(0.05, number(0.0, 1.0, lo_open=True, hi_open=True))
    lr: float = setting(1e-3, LEARNING_RATE)
    batch_size: int = setting(128, BATCH)
    max_samples: int = setting(2000, integer(1, 10_000_000))   # samples of B's train split used to fit the transform


@dataclass(frozen=True)
class SpaceSection:
    kind: str = setting("task-aware", one_of(SPACE_KINDS))
    channels: tuple[int, ...] = setting((8, 16, 32), each_of(SPACE_CHOICES["channels"]))
    layers: tuple[int, ...] = setting((3, 5, 8), each_of(SPACE_CHOICES["layers"]))
    nodes: tuple[int, ...] = setting((4,), each_of(SPACE_CHOICES["nodes"]))
    smoothing: float = setting(0.05, fraction())      # operations: share of absent ops; cells: mutation rate
    form: str = setting("operations", one_of(SPACE_FORMS))
    skeleton: str = setting("span", one_of(SKELETON_RULES))
    skeleton_smoothing: float = setting(0.2, fraction())   # smoothed: share of the values no neighbour used


@dataclass(frozen=True)
class SearchSection:
    rounds: int = setting(5, integer(1, 10_000))
    candidates: int = setting(4, integer(2, 1024))     # FUSE mixes at least 2 candidates
    alternations: int = setting(5, integer(1, 10_000))
    w_epochs: int = setting(1, EPOCHS)
    alpha_epochs: int = setting(1, EPOCHS)
    w_lr: float = setting(1e-3, LEARNING_RATE)
    alpha_lr: float = setting(3e-3, LEARNING_RATE)
    batch_size: int = setting(128, BATCH)
    final_epochs: int = setting(10, EPOCHS)
    # α steps per α epoch = ceil(n_val / this); 0: one full-val-split step
    alpha_batch_size: int = setting(32, integer(0, 65_536))
    checkpoint_minutes: float = setting(5.0, number(0.0, 10_080.0))   # up to a week
    compare: bool = False         # also run random search, FUSE in the standard space and fixed networks
    fixed_networks: tuple[str, ...] = setting(("resnet18",), each_of(FIXED_NETWORK_NAMES, "fixed network"))
    # every arm runs with seeds project.seed .. project.seed + repeats - 1
    repeats: int = setting(1, integer(1, 1000))
    arms: tuple[str, ...] = setting(DEFAULT_ARMS, each_of(ARMS, "arm"))
    # the budget axis: the comparison runs every arm at each of these [search] rounds (empty: at `rounds` only)
    sweep_rounds: tuple[int, ...] = setting((), lambda v: each(integer(1, 10_000), max_items=20)(v) if v else None)  # the comparison's arms; fixed = fixed_networks


@dataclass(frozen=True)
class ExecutorSection:
    kind: str = setting("local", one_of(EXECUTOR_KINDS))  # where units of work (probes, Fisher passes) run
    # ray: "auto", "host:6379", "ray://host:10001", or "" for a Ray started here
    address: str = setting("", plain_text(1000))
    gpus_per_job: float = setting(0.0, number(0.0, 1024.0))      # ray: GPUs each unit asks for (fractions allowed)
    cpus_per_job: float = setting(1.0, number(0.0, 4096.0, lo_open=True))   # ray: CPUs each unit asks for
    max_retries: int = setting(3, integer(0, 100))               # ray: re-runs of a unit whose worker died


@dataclass(frozen=True)
class EngineSection:
    # minutes without a job or a following client before a background engine exits; 0 = never; at most a year
    idle_exit: float = setting(30.0, number(0.0, 525_600.0))


@dataclass(frozen=True)
class SourceSection:
    name: str
    kind: str
    options: Mapping[str, Any] = field(default_factory=dict)


# The rules of a task's fields that the task definition itself (engine.data.tasks.definition_problems: names, class
# lists, fractions in (0, 1), limit >= 10) does not hold: bounds that keep seeds and sizes within what numpy and torch
# take, and the split that must leave training data.
TASK_RULES: dict[str, Any] = {
    "source": plain_text(200, empty=False),
    "seed": seed(),
    "limit": integer(10, 1_000_000_000),
    "positive": each(plain_text(200)),
    "classes": each(plain_text(200)),
}


def _split_leaves_training(task: TaskDef) -> str | None:
    total = task.val_fraction + task.test_fraction
    if not total < 1.0:
        return (f"val_fraction ({task.val_fraction:g}) + test_fraction ({task.test_fraction:g}) must be below 1, "
                f"got {total:g}: the rest is the train split")
    return None


TASK_CROSS_RULES = (("val_fraction", _split_leaves_training),)


def _last_seed(cfg: "Config") -> str | None:
    last = cfg.project.seed + cfg.search.repeats - 1
    if last >= SEED_LIMIT:
        return (f"seeds project.seed .. project.seed + repeats - 1 must stay below 2**32, got up to {last:,} "
                f"(project.seed {cfg.project.seed:,})")
    return None


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
    engine: EngineSection = EngineSection()
    executor: ExecutorSection = field(default_factory=ExecutorSection)
    # The absolute folder relative paths are read from: the config file's, else the working directory it was loaded
    # in (None: the same, worked out now). Carried with a job, so the engine reads the paths the client meant.
    base_dir: str | None = None

    # Rules across sections: (the dotted key a message names, rule over the whole config).
    RULES: ClassVar = (("search.repeats", _last_seed),)

    def snapshot(self) -> dict[str, Any]:
        """Plain-data copy (JSON-able): stored with the store, compared on resume, and what a job carries to the
        engine (`engine.config.config_from_plain` turns it back into a Config, under the same rules)."""
        return _plain(dataclasses.asdict(self))

    @property
    def root(self) -> Path:
        if self.base_dir:
            return Path(self.base_dir)
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

    def pipeline_problem(self) -> ConfigError | None:
        """Why `run` (the whole pipeline) has nothing to do with this config, or None."""
        if not self.tasks and self.target is None:
            return ConfigError("no [[tasks]] and no [target]: the pipeline has no dictionary to build and no target "
                               "to search (`tanas-tui init` writes a config with both)", file=self.file, key="tasks")
        if not self.tasks:
            needs = [f"[space] kind = {self.space.kind!r}"] if self.space.kind != "standard" else []
            if self.search.compare:
                needs += [f"the {a!r} arm" for a in self.search.arms if ARM_SPACE.get(a, "standard") != "standard"]
            if needs:
                return ConfigError(f"no [[tasks]]: {' and '.join(needs)} build(s) a space from the target's nearest "
                                   f"(or farthest) dictionary tasks; add [[tasks]], or use the standard space",
                                   file=self.file, key="tasks")
        return None


SECTIONS: dict[str, type] = {
    "project": ProjectSection,
    "dictionary": DictionarySection,
    "transfer": TransferSection,
    "space": SpaceSection,
    "search": SearchSection,
    "executor": ExecutorSection,
    "engine": EngineSection,
}


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def diff_snapshots(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two config snapshots (for refusing a mismatched resume)."""
    keys = sorted(set(old) | set(new))
    out = []
    for key in keys:
        a, b = old.get(key), new.get(key)
        dotted = f"{prefix}{key}"
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += diff_snapshots(a, b, dotted + ".")
        elif a != b:
            out.append(dotted)
    return out
