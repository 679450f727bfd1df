"""The result table from what the store holds: every finished run on a target becomes an `ArmRun`.

A run's arm is its `arm` attribute (written since the control arm exists); older runs get theirs from their kind and
space kind. The per-sample test correctness comes from `store.load_test_outcome`; an arm with a run that lacks it is
compared on per-seed errors instead (the table says which test it used).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from engine.results.table import ArmRun, ResultTable, build_table, config_hash, provenance
from store.records import SearchRunRecord, TaskRecord

__all__ = ["ARM_LABELS", "REFERENCE_LABEL", "arm_of", "arm_runs", "result_table", "targets", "TableError"]

# Row labels by arm (fixed networks are labelled by their network); kept equal to engine.choices.COMPARISON_LABELS.
ARM_LABELS = {"random": "Random search", "fuse-standard": "FUSE, standard space",
              "fuse-task-aware": "FUSE, task-aware space", "fuse-farthest": "FUSE, farthest-tasks space (control)",
              "fuse-task-aware-cells": "FUSE, task-aware cells",
              "fuse-farthest-cells": "FUSE, farthest-tasks cells (control)"}
REFERENCE_ARM = "fuse-task-aware"     # engine.choices.REFERENCE_ARM
REFERENCE_LABEL = ARM_LABELS[REFERENCE_ARM]
_ORDER = ("random", "fuse-standard", "fuse-task-aware", "fuse-farthest", "fuse-task-aware-cells", "fuse-farthest-cells")


class TableError(ValueError):
    """No table can be built (no finished runs, an unknown target, several targets and none named)."""


def arm_of(rec: SearchRunRecord) -> str | None:
    """The arm a run belongs to ('fixed:<kind label>' for a fixed network), None for runs outside the comparison."""
    if rec.extra.get("purpose") == "base-genotype":
        return None
    kind = rec.kind or ""
    if kind.startswith("fixed:"):
        return kind
    if rec.arm and rec.arm != "fixed":
        return rec.arm
    if kind == "random":
        return "random"
    if kind == "fuse" and rec.space_kind:
        return f"fuse-{rec.space_kind}"
    return None


def _label(arm: str) -> str:
    return arm.split(":", 1)[1] if arm.startswith("fixed:") else ARM_LABELS.get(arm, arm)


def _finished(store) -> list[SearchRunRecord]:
    out = []
    for attrs in store.list_searches():
        rec = SearchRunRecord.from_attrs(attrs)
        rec.id = attrs["id"]
        result = rec.result or {}
        if rec.status == "done" and result.get("test_error") is not None and arm_of(rec) is not None:
            out.append(rec)
    return out


def targets(store) -> dict[str, str]:
    """{target task id: name} of the targets with finished comparison runs."""
    return {r.target: r.target_name or r.target for r in _finished(store) if r.target}


def _pick_target(store, runs: list[SearchRunRecord], target: str | None) -> str:
    found = {r.target: r.target_name or r.target for r in runs if r.target}
    if not found:
        raise TableError(f"store {store.path} holds no finished search on a target (run `tanas-tui run` first)")
    if target is None:
        if len(found) > 1:
            raise TableError("the store holds results for several targets: " + ", ".join(
                f"{name} ({tid})" for tid, name in found.items()) + "; name one with --target")
        return next(iter(found))
    matches = [tid for tid, name in found.items() if target in (tid, name)]
    if not matches:
        raise TableError(f"no finished runs on target {target!r}; targets with results: "
                         + ", ".join(f"{name} ({tid})" for tid, name in found.items()))
    if len(matches) > 1:
        # runs of an earlier definition of the target under the same name: the task the store holds now wins
        try:
            current = store.find_task(target)
        except Exception:   # noqa: BLE001 - NotFound: the name is no longer in the dictionary
            current = None
        if current in matches:
            return current
        raise TableError(f"target name {target!r} matches several task definitions ({', '.join(matches)}); "
                         f"name one by its id")
    return matches[0]


# -- configurations -------------------------------------------------------------------------------------------------
# The [search] keys a run's result depends on, for runs stored before each run recorded its own (`config_keys`): they
# were reused only when all of these matched (engine.search.method.RESULT_KEYS at the time).
LEGACY_CONFIG_KEYS = ("rounds", "candidates", "alternations", "w_epochs", "alpha_epochs", "w_lr", "alpha_lr",
                      "batch_size", "final_epochs", "alpha_batch_size")


def _config_of(rec: SearchRunRecord) -> dict[str, Any]:
    """The run's configuration: its stored [search] values of the keys its result depends on."""
    config = rec.config or {}
    return {k: config.get(k) for k in (rec.config_keys or LEGACY_CONFIG_KEYS)}


def _agrees(own: dict[str, Any], config: dict[str, Any]) -> bool:
    return all(k in config and _canon(config[k]) == _canon(v) for k, v in own.items())


def _config_groups(runs: list[SearchRunRecord], reference: str) -> list[tuple[dict[str, Any], list[SearchRunRecord]]]:
    """Runs grouped by configuration, never pooled across them: one group per configuration of the reference arm's
    runs, holding every run whose own keys agree with it (a fixed network, which depends on fewer keys, sits in each
    group it agrees with); runs that agree with none form groups of their own configuration, after the reference's
    (the runs with the most keys first, so a run with fewer keys joins them rather than start another)."""
    configs = {_canon(_config_of(r)): _config_of(r) for r in runs if arm_of(r) == reference}
    for rec in sorted(runs, key=lambda r: -len(_config_of(r))):
        own = _config_of(rec)
        if not any(_agrees(own, c) for c in configs.values()):
            configs["own:" + _canon(own)] = own
    groups = [(config, [r for r in runs if _agrees(_config_of(r), config)]) for config in configs.values()]
    return sorted(groups, key=lambda g: (not any(arm_of(r) == reference for r in g[1]),
                                         [_sortable(g[0].get(k)) for k in LEGACY_CONFIG_KEYS]))


def _sortable(value: Any) -> tuple:
    return (0, value, "") if isinstance(value, (int, float)) and not isinstance(value, bool) else (1, 0, str(value))


def _config_labels(configs: list[dict[str, Any]]) -> list[str]:
    """'rounds=6, candidates=4': the keys in which the configurations differ ('' when there is one)."""
    if len(configs) < 2:
        return [""] * len(configs)
    keys = [k for k in dict.fromkeys(k for c in configs for k in c)
            if len({_canon(c.get(k)) for c in configs if k in c}) > 1 or any(k not in c for c in configs)]
    return [", ".join(f"{k}={c[k]}" for k in keys if k in c) or "(the same keys)" for c in configs]


# -- the table's inputs ------------------------------------------------------------------------------------------------
def _arm_run(store, rec: SearchRunRecord, arm: str, seed: int, config: str, label: str) -> ArmRun:
    result, budget = rec.result or {}, rec.budget_record
    correct = store.load_test_outcome(rec.id)
    return ArmRun(
        arm=_label(arm), seed=seed, test_error=float(result["test_error"]), params=float(result.get("params", 0)),
        cost_device_hours=float(result.get("seconds", 0.0)) / 3600.0,
        budget_epochs=float(budget.epochs) if budget else float("nan"),
        budget_unit=budget.unit if budget else "not recorded", device_seconds=float(result.get("seconds", 0.0)),
        correct=None if correct is None else correct.tolist(), run_id=rec.id,
        final_epochs=int(budget.final_epochs) if budget else int(result.get("final_epochs", 0)),
        config=config, config_label=label)


def arm_runs(store, target: str | None = None,
             reference: str | None = None) -> tuple[str, list[ArmRun], list[SearchRunRecord]]:
    """(target task id, one ArmRun per configuration, arm and seed, the records they came from). Runs of different
    configurations are kept apart (`ArmRun.config`); when an arm has two finished runs with one seed in one
    configuration (a `search --run-id` next to the comparison's), the later one counts."""
    runs = _finished(store)
    tid = _pick_target(store, runs, target)
    runs = sorted((r for r in runs if r.target == tid), key=lambda r: str(r.created or ""))
    arms = {arm_of(r) for r in runs}
    if reference is not None and reference not in arms:
        raise TableError(f"no finished runs of the arm {reference!r} for this target (arms with runs: "
                         f"{', '.join(sorted(arms, key=_arm_order))})")
    reference = reference or (REFERENCE_ARM if REFERENCE_ARM in arms else min(arms, key=_arm_order))
    groups = _config_groups(runs, reference)
    labels = _config_labels([config for config, _ in groups])
    out, records = [], []
    for (config, members), label in zip(groups, labels):
        chosen: dict[tuple[str, int], SearchRunRecord] = {}
        for rec in members:
            chosen[(arm_of(rec), int(rec.seed or 0))] = rec
        for arm, seed in sorted(chosen, key=lambda k: (_arm_order(k[0]), k[0], k[1])):
            rec = chosen[(arm, seed)]
            out.append(_arm_run(store, rec, arm, seed, config_hash(config), label))
            if rec.id not in {r.id for r in records}:   # a fixed network's run may stand in several groups
                records.append(rec)
    # an arm with some runs lacking their per-sample outcome falls back to per-seed errors as a whole
    partial = {(r.config, r.arm) for r in out if r.correct is None}
    out = [dataclasses.replace(r, correct=None) if (r.config, r.arm) in partial else r for r in out]
    return tid, out, records


def _arm_order(arm: str) -> tuple[int, str]:
    order = {a: i for i, a in enumerate(_ORDER)}
    return order.get(arm, len(order)), arm


def result_table(store, target: str | None = None, *, alpha: float = 0.05, n_boot: int = 2000,
                 reference: str | None = None) -> ResultTable:
    """The comparison table of `target` (a name or task id; None: the store's only target), with provenance: one
    row per configuration and arm, each compared with the reference arm of its configuration (`reference`, an arm
    name; default FUSE in the task-aware space)."""
    tid, runs, records = arm_runs(store, target, reference)
    arms = {r.arm for r in runs}
    wanted = _label(reference) if reference else REFERENCE_LABEL
    reference = wanted if wanted in arms else runs[0].arm
    task: dict[str, Any] = {}
    try:
        task = TaskRecord.from_attrs(store.task(tid)).definition
    except Exception:   # the target task may have been removed from the dictionary since; the runs still stand
        task = {}
    configs = sorted({_canon(r.config) for r in records})
    config = {"target_id": tid, "target": task, "search": [json.loads(c) for c in configs]}
    devices = sorted({str(r.device) for r in records if r.device})
    prov = provenance(config, [r.seed for r in runs],
                      {"target": records[0].target_name or tid, "target_id": tid,
                       "store": str(Path(store.path).resolve()), "devices": devices, "runs": len(records)})
    table = build_table(runs, reference, prov=prov, alpha=alpha, n_boot=n_boot)
    if reference != REFERENCE_LABEL:
        table.notes.append(f"no {REFERENCE_LABEL!r} runs: differences are taken against {reference!r}")
    groups = len({r.config for r in runs})
    if groups > 1:
        table.notes.append(f"the runs used {groups} different [search] configurations: each is its own group of rows "
                           f"(the config column), compared within the group, never pooled")
    return table


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
