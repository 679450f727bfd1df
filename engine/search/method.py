"""The search-method interface: what FUSE, random search and a fixed network have in common, and their one result.

Modelled on NASLib's split of a search strategy (`MetaOptimizer`: adapt to a space, step, the final architecture, its
checkpointables) from the `Trainer` that runs it. Here a `SearchMethod` is the strategy: it is built for one task,
one [search] section (its budget) and, for searched arms, one space; `search(run)` returns its final architecture (a
`Selection`), and a resumable method keeps its own checkpoints. `engine.search.runs.execute` is the trainer: it
creates or resumes the stored run, calls `search`, retrains and tests the selection once, and records the one result
type, `SearchResult`. A new method subclasses `SearchMethod`; a new arm or budget is a plan entry
(`engine.search.plan`), not new code here.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from engine.config import ConfigError, SearchSection
from engine.runtime.device import device_label
from engine.space.genotype import Genotype
from engine.space.network import build_network
from store.records import SearchRunRecord

__all__ = ["SearchMethod", "Selection", "SearchResult", "ResumeMismatch", "RESULT_KEYS", "derive_seed",
           "config_differences", "now"]

# The SearchSection keys that change what a search computes; a stored run is reused or resumed only when the keys its
# method uses match. (checkpoint_minutes, compare, fixed_networks, repeats and arms change no run's result.)
RESULT_KEYS = ("rounds", "candidates", "alternations", "w_epochs", "alpha_epochs", "w_lr", "alpha_lr", "batch_size",
               "final_epochs", "alpha_batch_size")


class ResumeMismatch(ConfigError):
    """A stored run asked for again with a configuration (or target, space, seed) different from its own."""


def derive_seed(seed: int, *parts: Any) -> int:
    """A stable 63-bit seed from a base seed and labels (same in every process, unlike hash())."""
    text = ":".join(str(p) for p in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def config_differences(stored: dict[str, Any], current: dict[str, Any], keys=RESULT_KEYS) -> list[str]:
    """The `keys` whose values differ, as 'key (stored X, now Y)'."""
    return [f"{key} (stored {stored.get(key)!r}, now {current.get(key)!r})" for key in keys
            if _canon(stored.get(key)) != _canon(current.get(key))]


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _rounded(value: Any) -> Any:
    """Plain data with floats at 9 significant digits: a space's weights are renormalised on every load."""
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, dict):
        return {str(k): _rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    return value


def now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class SearchResult:
    """A finished run's result, for every method (stored as the run's `result` attribute by `to_dict`)."""
    run_id: str
    genotype: dict[str, Any]     # {} for a fixed network
    hash: str                    # the genotype's hash, or the fixed network's name
    test_error: float | None     # percent; None when the winner was not retrained and tested
    test_acc: float | None       # fraction
    params: int
    params_m: float
    cost_device_hours: float     # the run's device time (search and final training): seconds / 3600
    seconds: float
    device: str
    kind: str = "fuse"
    final_epochs: int = 0
    parameter_free_share: float = 0.0
    warnings: list[str] = field(default_factory=list)
    # bool per test sample (the test split's order); stored as an array by store.save_test_outcome, not in to_dict
    test_correct: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.pop("test_correct")
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SearchResult":
        names = {f.name for f in dataclasses.fields(cls)}
        out = cls(**{k: v for k, v in data.items() if k in names})
        if isinstance(out.seconds, (int, float)) and out.seconds > 0:
            # fixed networks stored cost 0 before their training time counted as their cost: one figure everywhere
            out.cost_device_hours = out.seconds / 3600.0
        return out


@dataclass
class Selection:
    """A method's final architecture: a genotype (searched arms) or a fixed network's name, plus the weights the
    search trained (kept as the result when the run is not retrained) and record fields written with the result."""
    name: str
    genotype: Genotype | None = None
    model: nn.Module | None = None
    warnings: list[str] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)


class SearchMethod:
    """One arm's way of choosing a network for `task` within the budget `section` (NASLib's MetaOptimizer, cut to
    what the comparison needs). Subclasses set `kind` and implement `search` and `budget`."""

    kind: ClassVar[str] = ""
    resumable: ClassVar[bool] = False     # keeps checkpoints: a stopped run continues; otherwise it starts again
    config_keys: ClassVar[tuple[str, ...]] = RESULT_KEYS    # the [search] keys its result depends on

    def __init__(self, task, section: SearchSection, *, seed: int = 0, device: torch.device | str = "cpu",
                 space=None, retrain: bool = True):
        self.task, self.section, self.space = task, section, space
        self.seed, self.device, self.retrain = int(seed), torch.device(device), bool(retrain)
        self.in_channels = int(task.train_x.shape[1])

    # -- what a subclass provides -----------------------------------------------------------------------------------
    def search(self, run) -> Selection:
        """Searches (or, for a resumable method with `run.resumed`, continues from its checkpoint); `run` is the
        `engine.search.runs.Run` with the store, the writer of the α trajectory, the reporter and the clock."""
        raise NotImplementedError

    def budget(self) -> dict[str, Any]:
        """BudgetRecord attrs: what this run is allowed to train."""
        raise NotImplementedError

    def record_extra(self) -> dict[str, Any]:
        """The method's own fields of the run's record."""
        return {}

    def width(self) -> int:
        """Columns of the stored α trajectory (candidates per α step); 1 for methods without α."""
        return 1

    def final_model(self, selection: Selection) -> tuple[nn.Module, int]:
        """A fresh, seeded network of the selection to retrain on train + val, and the seed of its data order."""
        seed = derive_seed(self.seed, "final")
        return build_network(selection.genotype, self.task.num_classes, in_channels=self.in_channels, seed=seed), seed

    # -- shared ---------------------------------------------------------------------------------------------------
    def record(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """The new run's attrs: the record every method writes, its own fields and the caller's (arm, purpose)."""
        space = self.space
        return SearchRunRecord(
            kind=self.kind, target=self.task.id, target_name=self.task.definition.name,
            space_kind=space.kind if space is not None else None, space=space.to_dict() if space is not None else None,
            space_size_log10=round(space.size_log10(), 3) if space is not None else None, config=dataclasses.asdict(self.section), seed=self.seed, status="running", device=device_label(self.device),
            created=now(), budget=self.budget(), config_keys=list(self.config_keys),
            extra={**self.record_extra(), **attrs}).to_attrs()

    def mismatch(self, stored: dict[str, Any], attrs: dict[str, Any]) -> list[str]:
        """Why the stored run `stored` is not this one (empty when it may be reused or resumed)."""
        keys = tuple(stored.get("config_keys") or RESULT_KEYS)
        problems = config_differences(stored.get("config") or {}, dataclasses.asdict(self.section), keys)
        if stored.get("target") != self.task.id:
            problems.append(f"target (stored {stored.get('target_name', stored.get('target'))!r}, "
                            f"now {self.task.definition.name!r})")
        requested = {"kind": self.kind, "seed": self.seed, **attrs}
        if "retrain" in stored:
            requested["retrain"] = self.retrain
        for key, value in requested.items():
            if key in stored and stored[key] is not None and stored[key] != value:
                problems.append(f"{key.replace('_', ' ')} (stored {stored[key]!r}, now {value!r})")
        if self.space is not None and stored.get("space") is not None and \
                _canon(_rounded(stored["space"])) != _canon(_rounded(self.space.to_dict())):
            problems.append("space (the search space differs from the stored one)")
        return problems

