"""Task definitions and task-data pairs with deterministic train / val / test splits.

The test split is carved first, validation from the rest; both per label, so every split keeps the label mix.
The test split is only reachable through `TaskData.test_split()`, which counts its reads.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Mapping

import numpy as np

if TYPE_CHECKING:
    import torch

    from engine.data import Dataset, Source

# torch is imported inside the functions that compute: the config (and so every CLI command, `--help`
# included) imports TaskDef from here and must not pay torch's import time.


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
    # A label for similarity checks (`distances --check`: is a task's nearest task in its group?); the source when
    # None. Not part of the task's data, so it stays out of the task id.
    group: str | None = None
    # A known architecture for the task (canonical JSON of a Genotype): used as its best genotype, never searched.
    # Also a label: the task's data, and so its id, do not depend on it.
    genotype: str | None = None


class TaskError(ValueError):
    """A task definition that cannot be built from its source."""


LABEL_FIELDS = ("group", "genotype")   # fields that label a task without changing its data: not in its id
MIN_LIMIT = 10   # fewer samples leave the splits (10 % validation, 20 % test) empty or a single sample
MAX_NAME = 100  # characters; a task name is shown in tables and becomes part of run ids


def definition_problems(fields: Any) -> list[tuple[str | None, str]]:
    """What is wrong with a task definition (a TaskDef or a mapping of its fields), as (field or None, message).

    The one set of rules that the config, `build_task`, the CLI and the UI's add-task form all apply; the classes'
    existence in the source is checked where the source is at hand."""
    get = fields.get if isinstance(fields, Mapping) else (lambda key, default=None: getattr(fields, key, default))
    problems: list[tuple[str | None, str]] = []
    name = str(get("name") or "")
    if not name.strip():
        problems.append(("name", "task name must not be empty"))
    elif len(name) > MAX_NAME:
        problems.append(("name", f"task name must be at most {MAX_NAME} characters, got {len(name)}"))
    elif name != name.strip() or any(not ch.isprintable() for ch in name):
        problems.append(("name", f"task name {name!r} has leading or trailing spaces or control characters"))
    positive, classes = get("positive"), get("classes")
    if (positive is None) == (classes is None):
        problems.append((None, "give exactly one of 'positive' (binary task) or 'classes' (multi-class task)"))
    else:
        rule, names = ("positive", positive) if positive is not None else ("classes", classes)
        if not names:
            problems.append((rule, "must list at least one class"))
        elif len(set(names)) != len(names):
            problems.append((rule, "lists a class twice"))
        elif rule == "classes" and len(names) + int(bool(get("other", False))) < 2:
            problems.append((rule, "a multi-class task needs at least two classes (or one plus other = true)"))
    for key in ("val_fraction", "test_fraction"):
        value = get(key)
        if value is not None and not 0.0 < value < 1.0:
            problems.append((key, f"must be between 0 and 1, got {value}"))
    group = get("group")
    if group is not None and (not isinstance(group, str) or not group.strip()):
        problems.append(("group", "must be a non-empty string when given"))
    limit = get("limit")
    if limit is not None and limit < MIN_LIMIT:
        problems.append(("limit", f"must be at least {MIN_LIMIT}, got {limit}"))
    return problems


def task_rule(definition: Any) -> str:
    """The labelling rule in words: "is 3", "is 3 or 5", "0|1|2|other" ("?" for a definition with neither).

    `definition` is a TaskDef or a mapping of its fields (a stored task's `definition`): the one text the store
    records (`rule`) and every front end shows."""
    get = definition.get if isinstance(definition, Mapping) else (lambda key, default=None: getattr(definition, key,
                                                                                                    default))
    positive, classes = get("positive"), get("classes")
    if positive:
        return "is " + " or ".join(map(str, positive))
    if classes:
        return "|".join([*map(str, classes), *(["other"] if get("other", False) else [])])
    return "?"


def task_id(taskdef: TaskDef) -> str:
    """A stable 12-hex-digit hash of the whole definition (sha256 of its canonical JSON)."""
    plain = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(taskdef).items()
             if k not in LABEL_FIELDS}
    text = json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


@dataclass(eq=False)
class TaskData:
    id: str
    definition: TaskDef
    class_names: tuple[str, ...]
    num_classes: int
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    _test_x: torch.Tensor = field(repr=False)
    _test_y: torch.Tensor = field(repr=False)
    test_reads: int = 0

    def test_split(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The held-out test images and labels; for the final report only (every call is counted)."""
        self.test_reads += 1
        return self._test_x, self._test_y

    @property
    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train_y), "val": len(self.val_y), "test": len(self._test_y)}

    def to(self, device: torch.device | str) -> "TaskData":
        """Moves every split to `device` in place (e.g. onto the GPU once, so batches are device-side slices)."""
        for name in ("train_x", "train_y", "val_x", "val_y", "_test_x", "_test_y"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def summary(self) -> dict[str, Any]:
        """Split sizes and per-split class counts, JSON-able, for the store's task attrs (not a test read)."""
        import torch

        def counts(y: torch.Tensor) -> dict[str, int]:
            return dict(zip(self.class_names, torch.bincount(y.cpu(), minlength=self.num_classes).tolist()))

        d = self.definition
        return {
            "source": d.source,
            "kind": "binary" if d.positive is not None else "multiclass",
            "class_names": list(self.class_names),
            "num_classes": self.num_classes,
            "sizes": self.sizes,
            "class_counts": {"train": counts(self.train_y), "val": counts(self.val_y), "test": counts(self._test_y)},
            "seed": d.seed,
        }


def _source_dataset(source: Any) -> "Dataset":
    from engine.data import Dataset

    if isinstance(source, Dataset):
        return source
    return source.load()


def _check_names(taskdef: TaskDef, wanted: tuple[str, ...], valid: tuple[str, ...], field_name: str) -> list[int]:
    if not wanted:
        raise TaskError(f"task {taskdef.name!r}: {field_name!r} must name at least one class")
    for name in wanted:
        if name not in valid:
            raise TaskError(
                f"task {taskdef.name!r}: class {name!r} is not in source {taskdef.source!r} "
                f"(valid classes: {', '.join(valid)})"
            )
    if len(set(wanted)) != len(wanted):
        raise TaskError(f"task {taskdef.name!r}: {field_name!r} names a class twice")
    return [valid.index(n) for n in wanted]


def _spread(groups: list[np.ndarray], total: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Draws `total` indices spread as evenly as possible over `groups` (a group short of its share gives the rest away)."""
    quota = [0] * len(groups)
    left = min(total, sum(len(g) for g in groups))
    open_groups = [i for i, g in enumerate(groups) if len(g)]
    while left > 0 and open_groups:
        order = rng.permutation(open_groups)     # who gets the remainder is drawn, not always the first classes
        share, extra = divmod(left, len(open_groups))
        for rank, i in enumerate(order):
            take = min(share + (1 if rank < extra else 0), len(groups[i]) - quota[i])
            quota[i] += take
            left -= take
        open_groups = [i for i in open_groups if quota[i] < len(groups[i])]
    return [rng.permutation(g)[:q] for g, q in zip(groups, quota)]


def class_names_of(taskdef: TaskDef) -> tuple[str, ...]:
    """The task's class names in label order (label i is name i), known without loading its source."""
    if taskdef.positive is not None:
        return ("rest", "+".join(taskdef.positive))
    return tuple(taskdef.classes or ()) + (("other",) if taskdef.other else ())


def _relabel(taskdef: TaskDef, labels: np.ndarray, classes: tuple[str, ...], rng: np.random.Generator):
    """-> (indices into the source, task labels, class names), after balancing."""
    by_class = [np.flatnonzero(labels == c) for c in range(len(classes))]
    if (taskdef.positive is None) == (taskdef.classes is None):
        raise TaskError(f"task {taskdef.name!r}: set exactly one of 'positive' (binary) or 'classes' (multi-class)")
    if taskdef.positive is not None:
        pos_ids = _check_names(taskdef, tuple(taskdef.positive), classes, "positive")
        neg_ids = [c for c in range(len(classes)) if c not in pos_ids]
        if not neg_ids:
            raise TaskError(f"task {taskdef.name!r}: 'positive' names every class of {taskdef.source!r}; nothing is left for 'rest'")
        pos = np.concatenate([by_class[c] for c in pos_ids])
        neg_groups = [by_class[c] for c in neg_ids]
        if taskdef.balance:
            n_neg = sum(len(g) for g in neg_groups)
            if n_neg < len(pos):      # fewer negatives than positives: balance the other way round
                pos = np.concatenate(_spread([by_class[c] for c in pos_ids], n_neg, rng))
            neg_groups = _spread(neg_groups, len(pos), rng)
        neg = np.concatenate(neg_groups) if neg_groups else np.zeros(0, dtype=np.int64)
        idx = np.concatenate([neg, pos])
        y = np.concatenate([np.zeros(len(neg), np.int64), np.ones(len(pos), np.int64)])
        return idx, y, class_names_of(taskdef)

    named = _check_names(taskdef, tuple(taskdef.classes), classes, "classes")
    parts = [by_class[c] for c in named]
    ys = [np.full(len(p), i, np.int64) for i, p in enumerate(parts)]
    names = class_names_of(taskdef)
    if taskdef.other:
        rest = [by_class[c] for c in range(len(classes)) if c not in named]
        if not rest:
            raise TaskError(f"task {taskdef.name!r}: 'classes' names every class of {taskdef.source!r}; nothing is left for 'other'")
        if taskdef.balance:       # "other" gets the named classes' mean count, spread over the other classes
            rest = _spread(rest, int(round(np.mean([len(p) for p in parts]))), rng)
        other = np.concatenate(rest) if rest else np.zeros(0, dtype=np.int64)
        parts.append(other)
        ys.append(np.full(len(other), len(named), np.int64))
    return np.concatenate(parts), np.concatenate(ys), names


def _limit(idx: np.ndarray, y: np.ndarray, limit: int, num_classes: int, rng: np.random.Generator):
    """Keeps `limit` samples, each label keeping its share (largest remainders get the leftover)."""
    if limit >= len(idx):
        return idx, y
    counts = np.bincount(y, minlength=num_classes)
    exact = counts * limit / len(idx)
    quota = np.floor(exact).astype(int)
    for c in np.argsort(-(exact - quota), kind="stable")[: limit - quota.sum()]:
        quota[c] += 1
    keep = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:quota[c]] for c in range(num_classes)])
    return idx[keep], y[keep]


def build_task(taskdef: TaskDef, source: "Source | Dataset | Any") -> TaskData:
    """The task-data pair: relabels, balances, limits and splits the source's samples, deterministically from the seed.

    `source` is an `engine.data.Source`, a loaded `Dataset`, or a whole `engine.config.Config` (the task's source is
    then looked up in it).
    """
    if hasattr(source, "sources") and hasattr(source, "data_dir"):
        from engine.data import get_source

        source = get_source(taskdef.source, source)
    for key, message in definition_problems(taskdef):
        raise TaskError(f"task {taskdef.name!r}: {key + ' ' if key else ''}{message}")

    import torch

    data = _source_dataset(source)
    rng = np.random.default_rng([taskdef.seed, 0x7A5C])
    idx, y, names = _relabel(taskdef, data.labels.numpy(), data.classes, rng)
    if taskdef.limit is not None:
        idx, y = _limit(idx, y, taskdef.limit, len(names), rng)

    splits: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {"train": ([], []), "val": ([], []), "test": ([], [])}
    for label in range(len(names)):
        members = rng.permutation(idx[y == label])
        n_test = int(round(len(members) * taskdef.test_fraction))
        n_val = int(round((len(members) - n_test) * taskdef.val_fraction))
        for split, part in (("test", members[:n_test]), ("val", members[n_test:n_test + n_val]),
                            ("train", members[n_test + n_val:])):
            splits[split][0].append(part)
            splits[split][1].append(np.full(len(part), label, np.int64))
    tensors: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for split, (parts, labels) in splits.items():
        chosen, chosen_y = np.concatenate(parts), np.concatenate(labels)
        if len(chosen) == 0:
            raise TaskError(
                f"task {taskdef.name!r}: the {split} split is empty ({len(idx)} samples in the task); "
                f"use more data or larger fractions"
            )
        order = rng.permutation(len(chosen))
        tensors[split] = (data.images[torch.from_numpy(chosen[order])].contiguous(), torch.from_numpy(chosen_y[order]))
    return TaskData(
        id=task_id(taskdef), definition=taskdef, class_names=names, num_classes=len(names),
        train_x=tensors["train"][0], train_y=tensors["train"][1],
        val_x=tensors["val"][0], val_y=tensors["val"][1],
        _test_x=tensors["test"][0], _test_y=tensors["test"][1],
    )


def to_input(x: torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 images -> float32 in [0, 1] on `device` (the copy to the device is made while still uint8)."""
    import torch

    if device is not None:
        x = x.to(device, non_blocking=True)
    if x.dtype == torch.uint8:
        return x.float().div_(255.0)
    return x.float()


def batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool = False,
            generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Mini-batches as index slices of in-memory tensors; the last batch may be smaller."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    n = len(y)
    if not shuffle:
        for start in range(0, n, batch_size):
            yield x[start:start + batch_size], y[start:start + batch_size]
        return
    import torch

    order = torch.randperm(n, generator=generator).to(x.device)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        yield x[idx], y[idx]
