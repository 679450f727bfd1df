"""Typed records of what the store holds: a task, a distance matrix's parameters, a search space, a search run.

The engine's writers build them and store `to_attrs()`; the CLI and the UI read `from_attrs(attrs)` instead of
guessing field names. Attributes a record does not know are kept in `extra` (a newer writer's fields survive a
round trip); `RECORD_VERSION` is written with every record so a reader can tell which fields to expect.
Torch-free and zarr-free: any layer may import it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, TypeVar

RECORD_VERSION = 1
VERSION_KEY = "record_version"

R = TypeVar("R", bound="_Record")


# Kept by the store itself (the node's name, the committed-step counter): read, never written through a record.
STORE_OWNED = ("extra", "id", "committed_steps")


@dataclass
class _Record:
    extra: dict[str, Any] = field(default_factory=dict)
    OMIT_NONE: ClassVar[bool] = False    # True: fields still None are not written (the attribute stays absent)

    def to_attrs(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in STORE_OWNED}
        if self.OMIT_NONE:
            out = {k: v for k, v in out.items() if v is not None}
        return {**self.extra, **out, VERSION_KEY: RECORD_VERSION}

    @classmethod
    def from_attrs(cls: type[R], attrs: Mapping[str, Any]) -> R:
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: v for k, v in attrs.items() if k in names}
        extra = {k: v for k, v in attrs.items() if k not in names and k != VERSION_KEY}
        return cls(**known, extra=extra)


@dataclass
class TaskRecord(_Record):
    """One dictionary task (`store.task(id)`; `id` is filled by `list_tasks()`)."""
    name: str = ""
    id: str = ""
    source: str | None = None
    group: str | None = None          # the user's `group` for similarity checks; None = the source
    rule: str | None = None
    definition: dict[str, Any] = field(default_factory=dict)
    role: str = "base"
    seed: int | None = None
    n_train: int | None = None
    n_val: int | None = None
    n_test: int | None = None
    num_classes: int | None = None
    class_names: list[str] = field(default_factory=list)
    probe_arch: str | None = None
    # "shared": the probe is the shared body with a head fitted on the task, and `epochs` are the body's shared_epochs
    # (min_epochs does not apply); "per-task": a probe trained on the task alone; None: stored before this was kept
    probe_body: str | None = None
    val_acc: float | None = None
    val_accs: list[float] = field(default_factory=list)
    epochs: int | None = None
    train_seconds: float | None = None
    representative: bool | None = None
    best_genotype: dict[str, Any] | None = None
    genotype_hash: str | None = None
    genotype_source: dict[str, Any] | None = None
    status: str | None = None

    @property
    def genotype_id(self) -> str | None:
        """The hash of the task's best genotype, from either place it is recorded."""
        if self.genotype_hash:
            return self.genotype_hash
        if isinstance(self.best_genotype, dict) and self.best_genotype.get("hash"):
            return str(self.best_genotype["hash"])
        return None


@dataclass
class DistanceRecord(_Record):
    """The parameters a distance matrix was computed with (`store.distances(method).params`)."""
    method: str = ""
    seeds: int = 1


@dataclass
class SpaceRecord(_Record):
    """A search space as stored with a search (`kind` plus the space's own fields in `extra`)."""
    kind: str = ""


@dataclass
class SearchRunRecord(_Record):
    """One search run's attributes (`store.search(run_id)`; `id` is filled by `list_searches()`)."""
    OMIT_NONE: ClassVar[bool] = True
    id: str = ""
    kind: str = "fuse"
    target: str | None = None
    target_name: str | None = None
    space_kind: str | None = None
    space: dict[str, Any] | None = None
    space_size_log10: float | None = None   # log10 of the genotypes the space can draw (absent in older runs)
    config: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    status: str = "running"
    device: str | None = None
    created: str | None = None
    result: dict[str, Any] | None = None
    arm: str | None = None                  # the comparison arm this run belongs to (engine.choices.ARMS)
    budget: dict[str, Any] | None = None    # BudgetRecord.to_attrs(): what the run was allowed to train
    test_outcome: dict[str, Any] | None = None   # SampleOutcomeRecord.to_attrs(), written by store.save_test_outcome
    # the `config` keys the run's result depends on (its method's); absent in older runs: every result key counted
    config_keys: list[str] | None = None
    # written as the run goes (engine.search.fuse): per-round summaries, incumbents' hashes, warnings, lifecycle times
    rounds: list[dict[str, Any]] | None = None
    incumbents: list[str] | None = None
    warnings: list[str] | None = None
    resumed: str | None = None
    stopped: str | None = None
    finished: str | None = None
    error: str | None = None
    committed_steps: int = 0

    @property
    def space_record(self) -> SpaceRecord | None:
        return SpaceRecord.from_attrs(self.space) if isinstance(self.space, Mapping) else None

    @property
    def budget_record(self) -> "BudgetRecord | None":
        return BudgetRecord.from_attrs(self.budget) if isinstance(self.budget, Mapping) else None

    @property
    def outcome_record(self) -> "SampleOutcomeRecord | None":
        return SampleOutcomeRecord.from_attrs(self.test_outcome) if isinstance(self.test_outcome, Mapping) else None


@dataclass
class BudgetRecord(_Record):
    """The training a run was given: `epochs` in `unit` ("candidate-epochs": each candidate network's epochs over
    its training split, summed; "network-epochs" for a fixed network), plus the final retraining's epochs."""
    epochs: int = 0
    unit: str = "candidate-epochs"
    final_epochs: int = 0
    candidates: int | None = None


@dataclass
class SampleOutcomeRecord(_Record):
    """Which test samples a finished run classified correctly. The booleans are an array in the store
    (`store.load_test_outcome(run_id)`), in the order of the target task's test split as built from its definition,
    so two runs on the same task pair sample by sample."""
    task_id: str = ""
    n_test: int = 0
    n_correct: int = 0


def table_row(architecture: str, result: Any, searched: bool = True) -> dict[str, Any]:
    """One row of the comparison table from a search result (a `SearchResult` or its dict)."""
    data = result.to_dict() if hasattr(result, "to_dict") else dict(result)
    # the one cost figure (as `searches list` and the result table): the run's device seconds / 3600
    hours = float(data["seconds"]) / 3600.0 if data.get("seconds") is not None else float(data["cost_device_hours"])
    return {"architecture": architecture, "test_error": float(data["test_error"]), "params_m": float(data["params_m"]),
            "cost_device_hours": hours if searched else None,
            "device": data.get("device"), "run_id": data.get("run_id")}


__all__ = ["RECORD_VERSION", "TaskRecord", "DistanceRecord", "SpaceRecord", "SearchRunRecord", "BudgetRecord",
           "SampleOutcomeRecord", "table_row"]
