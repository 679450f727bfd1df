"""The arm plan: the stored runs a comparison, one search or a base task's genotype search is made of, as plain data
that the local path and the Ray path both execute (`run_spec`, `search_unit`).

- An `Arm` is one entry of `search.arms`: a method (a key of `METHODS`) and the kind of space it searches. A new arm
  whose space is built differently is one entry here (and its space kind in `engine.search.searching.build_space`).
- A `RunSpec` is one run: its arm, method, run id, seed, [search] section (its budget), network (fixed arm), whether
  it retrains, and the record fields its run id stands for. Its space is filled in (`with_space`) just before it runs.
- A budget is a mapping of [search] result keys to values (`{"rounds": 4}`) applied to every arm of the plan: the
  budget axis. The empty budget is the config's own and keeps today's run ids (`TARGET-KIND-SEED`); any other adds
  its tag (`TARGET-KIND-r4-SEED`), so runs at different budgets never share an id.
"""
from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import torch

from engine.choices import ARM_FORM, ARM_SPACE, COMPARISON_LABELS, fuse_arm
from engine.config import Config, ConfigError, SearchSection
from engine.search.baselines import FIXED_NETWORKS, FixedNetwork, RandomSearch
from engine.search.fuse import Fuse
from engine.search.method import RESULT_KEYS, SearchMethod, SearchResult, derive_seed
from engine.search.runs import execute

__all__ = ["Arm", "ARMS", "METHODS", "RunSpec", "run_id_for", "budget_tag", "plan_search", "plan_base_genotype",
           "plan_comparison", "run_spec", "search_unit"]

_RUN_NAME_MAX = 100  # characters of the name kept in a run id (ids are node names of at most 200 characters)
_SHORT = {"rounds": "r", "candidates": "c"}   # budget keys as run-id tags (the others by their name)


@dataclass(frozen=True)
class Arm:
    name: str                  # the `search.arms` entry (engine.choices.ARMS)
    label: str                 # its row in the result table (fixed networks: each network's own label)
    method: str                # a key of METHODS
    space_kind: str | None     # the space it searches (engine.search.searching.build_space); None: no space
    run_kind: str = ""         # the middle of its run ids (fixed networks: the network's name)
    space_form: str = "operations"   # how its space uses the dictionary tasks' genotypes (engine.choices.SPACE_FORMS)


def _fuse_arm(name: str, kind: str) -> Arm:
    form = ARM_FORM.get(name, "operations")
    run_kind = kind if form == "operations" else f"{kind}-{form}"
    return Arm(name, COMPARISON_LABELS[run_kind], "fuse", kind, run_kind, form)


ARMS: dict[str, Arm] = {
    "random": Arm("random", COMPARISON_LABELS["random"], "random", "standard", "random"),
    **{name: _fuse_arm(name, kind) for name, kind in ARM_SPACE.items()},
    "fixed": Arm("fixed", "fixed networks", "fixed", None),
}


@dataclass(frozen=True)
class RunSpec:
    arm: str | None            # None: a base task's genotype search (no comparison arm)
    method: str
    run_id: str
    seed: int
    section: SearchSection
    label: str = ""            # its table row; a base task's search: "genotype NAME"
    space_kind: str | None = None
    space_form: str = "operations"
    space: Any = None          # the SearchSpace, set by `with_space` before the run starts
    network: str | None = None
    retrain: bool = True
    attrs: Mapping[str, Any] = field(default_factory=dict)
    budget: tuple[tuple[str, Any], ...] = ()

    def with_space(self, space) -> "RunSpec":
        return dataclasses.replace(self, space=space)

    def method_for(self, task, device: torch.device | str) -> SearchMethod:
        return METHODS[self.method](self, task, device)


METHODS: dict[str, Callable[[RunSpec, Any, Any], SearchMethod]] = {
    "fuse": lambda s, task, device: Fuse(task, s.space, s.section, device=device, seed=s.seed, retrain=s.retrain),
    "random": lambda s, task, device: RandomSearch(task, s.space, s.section, seed=s.seed, device=device),
    "fixed": lambda s, task, device: FixedNetwork(s.network, task, s.section, seed=s.seed, device=device),
}


# -- run ids ---------------------------------------------------------------------------------------------------------
def budget_tag(budget: Iterable[tuple[str, Any]]) -> str:
    """'r4+c8' for {"rounds": 4, "candidates": 8}; '' for the config's own budget."""
    order = {k: i for i, k in enumerate(RESULT_KEYS)}
    items = sorted(dict(budget).items(), key=lambda kv: order.get(kv[0], len(order)))
    return "+".join(f"{_SHORT.get(k, k)}{v}" for k, v in items)


def run_id_for(target_name: str, kind: str, seed: int, budget: Iterable[tuple[str, Any]] = ()) -> str:
    """A store-safe run id. A name that is not store-safe as it is ("a/b", "a b", a very long one) keeps a readable
    form plus "=" and a hash of the whole name: "=" never survives from a name, so no two names share an id. A budget
    other than the config's own goes between the kind and the seed."""
    safe = re.sub(r"[^A-Za-z0-9._+-]", "_", target_name).lstrip("._-+")[:_RUN_NAME_MAX] or "task"
    if safe != target_name:
        safe += "=" + hashlib.sha256(target_name.encode("utf-8")).hexdigest()[:16]
    tag = budget_tag(budget)
    return f"{safe}-{kind}-{tag}-{seed}" if tag else f"{safe}-{kind}-{seed}"


def _budget(cfg: Config, budget: Mapping[str, Any] | None) -> tuple[tuple[tuple[str, Any], ...], SearchSection]:
    """The budget as sorted items and the [search] section it gives."""
    items = tuple(sorted((budget or {}).items()))
    unknown = [k for k, _ in items if k not in RESULT_KEYS]
    if unknown:
        raise ConfigError(f"a budget can set {', '.join(RESULT_KEYS)}; got {', '.join(map(repr, unknown))}",
                          key="search", file=cfg.file)
    return items, dataclasses.replace(cfg.search, **dict(items))


# -- plans -----------------------------------------------------------------------------------------------------------
def _arm_run(arm: Arm, target_name: str, seed: int, budget, section: SearchSection) -> RunSpec:
    attrs = {"arm": arm.name}
    if arm.method == "fuse":
        attrs = {"space_kind": arm.space_kind, "purpose": "target", **attrs}
    return RunSpec(arm=arm.name, method=arm.method, run_id=run_id_for(target_name, arm.run_kind, seed, budget),
                   seed=seed, section=section, label=arm.label, space_kind=arm.space_kind, space_form=arm.space_form,
                   attrs=attrs, budget=budget)


def plan_search(cfg: Config, target_name: str, space_kind: str, seed: int, run_id: str | None = None,
                budget: Mapping[str, Any] | None = None) -> RunSpec:
    """One FUSE search on the target (`tanas-tui search`, the pipeline's search): the FUSE arm of that space, in the
    form of `[space] form`."""
    items, section = _budget(cfg, budget)
    spec = _arm_run(ARMS[fuse_arm(space_kind, cfg.space.form)], target_name, seed, items, section)
    return dataclasses.replace(spec, run_id=run_id) if run_id else spec


def plan_base_genotype(cfg: Config, task_name: str, rounds: int) -> RunSpec:
    """A base task's genotype search: FUSE in the standard space for `rounds` rounds, not retrained. Each task samples
    its own candidates: with one shared seed every task would see the same candidate set and the dictionary would
    hold near-identical genotypes, leaving the task-aware space nothing to choose from."""
    seed = cfg.project.seed
    return RunSpec(arm=None, method="fuse", run_id=run_id_for(task_name, "genotype", seed), label=f"genotype {task_name}",
                   seed=derive_seed(seed, "base-genotype", task_name),
                   section=dataclasses.replace(cfg.search, rounds=rounds), space_kind="standard", retrain=False,
                   attrs={"purpose": "base-genotype"})


def plan_comparison(cfg: Config, target_name: str, seeds: list[int] | None = None,
                    budgets: list[Mapping[str, Any]] | None = None) -> list[RunSpec]:
    """Every run of the comparison: for each seed (`search.repeats` seeds from project.seed) and budget (default: the
    config's own), each arm of `search.arms`; the fixed networks once per budget that changes what they train."""
    seeds = seeds if seeds is not None else [cfg.project.seed + i for i in range(max(1, cfg.search.repeats))]
    unknown = [n for n in cfg.search.fixed_networks if n not in FIXED_NETWORKS] if "fixed" in cfg.search.arms else []
    if unknown:
        raise ConfigError(f"unknown fixed network {unknown[0]!r}; known: {', '.join(FIXED_NETWORKS)}",
                          key="search.fixed_networks", file=cfg.file)
    budgets = [_budget(cfg, b) for b in (budgets or [{}])]
    plan: list[RunSpec] = []
    for seed in seeds:
        fixed_done: set[tuple] = set()
        for items, section in budgets:
            for arm in (ARMS[name] for name in cfg.search.arms):
                if arm.method != "fixed":
                    plan.append(_arm_run(arm, target_name, seed, items, section))
                    continue
                own = tuple((k, v) for k, v in items if k in FixedNetwork.config_keys)
                if own in fixed_done:
                    continue
                fixed_done.add(own)
                fixed_section = dataclasses.replace(cfg.search, **dict(own))
                for name in cfg.search.fixed_networks:
                    plan.append(dataclasses.replace(
                        _arm_run(dataclasses.replace(arm, label=FIXED_NETWORKS[name][0], run_kind=name), target_name,
                                 seed, own, fixed_section), network=name))
    return plan


# -- running one ---------------------------------------------------------------------------------------------------
def run_spec(store, spec: RunSpec, task, device, reporter) -> SearchResult:
    """The planned run, created, resumed or returned as stored (engine.search.runs.execute)."""
    return execute(spec.method_for(task, device), store, spec.run_id, reporter=reporter, attrs=dict(spec.attrs))


def search_unit(task, spec: RunSpec, device: str, reporter=None) -> tuple[list[tuple], dict[str, Any]]:
    """A planned run as a unit of work for a remote executor: the same code as the local path against a
    `store.recording.RecordingStore`; returns (recorded writes, result). The engine replays the writes onto its store,
    staying the single writer."""
    from engine.runtime.reporting import SILENT
    from store.recording import RecordingStore

    store = RecordingStore()
    result = run_spec(store, spec, task, device, reporter or SILENT)
    return store.ops, result.to_dict()
