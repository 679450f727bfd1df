"""The result table from what the store holds: every finished run on a target becomes an `ArmRun`.

A run's arm is its `arm` attribute (written since the control arm exists); older runs get theirs from their kind and
space kind. The per-sample test correctness comes from `store.load_test_outcome`; an arm with a run that lacks it is
compared on per-seed errors instead (the table says which test it used).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.results.table import ArmRun, ResultTable, build_table, provenance
from store.records import SearchRunRecord, TaskRecord

__all__ = ["ARM_LABELS", "REFERENCE_LABEL", "arm_of", "arm_runs", "result_table", "targets", "TableError"]

# Row labels by arm (fixed networks are labelled by their network); kept equal to engine.choices.COMPARISON_LABELS.
ARM_LABELS = {"random": "Random search", "fuse-standard": "FUSE, standard space",
              "fuse-task-aware": "FUSE, task-aware space", "fuse-farthest": "FUSE, farthest-tasks space (control)"}
REFERENCE_LABEL = ARM_LABELS["fuse-task-aware"]
_ORDER = ("random", "fuse-standard", "fuse-task-aware", "fuse-farthest")


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


def arm_runs(store, target: str | None = None) -> tuple[str, list[ArmRun], list[SearchRunRecord]]:
    """(target task id, one ArmRun per arm and seed, the records they came from). When an arm has two finished runs
    with one seed (a `search --run-id` next to the comparison's), the later one counts."""
    runs = _finished(store)
    tid = _pick_target(store, runs, target)
    chosen: dict[tuple[str, int], SearchRunRecord] = {}
    for rec in sorted((r for r in runs if r.target == tid), key=lambda r: str(r.created or "")):
        chosen[(arm_of(rec), int(rec.seed or 0))] = rec
    order = {a: i for i, a in enumerate(_ORDER)}
    keys = sorted(chosen, key=lambda k: (order.get(k[0], len(order)), k[0], k[1]))
    out, records = [], []
    for arm, seed in keys:
        rec = chosen[(arm, seed)]
        result, budget = rec.result or {}, rec.budget_record
        correct = store.load_test_outcome(rec.id)
        out.append(ArmRun(
            arm=_label(arm), seed=seed, test_error=float(result["test_error"]), params=float(result.get("params", 0)),
            cost_device_hours=float(result.get("seconds", 0.0)) / 3600.0,
            budget_epochs=float(budget.epochs) if budget else float("nan"),
            budget_unit=budget.unit if budget else "not recorded",
            device_seconds=float(result.get("seconds", 0.0)),
            correct=None if correct is None else correct.tolist(), run_id=rec.id,
            final_epochs=int(budget.final_epochs) if budget else int(result.get("final_epochs", 0))))
        records.append(rec)
    # an arm with some runs lacking their per-sample outcome falls back to per-seed errors as a whole
    partial = {r.arm for r in out if r.correct is None}
    out = [ArmRun(**{**r.__dict__, "correct": None}) if r.arm in partial else r for r in out]
    return tid, out, records


def result_table(store, target: str | None = None, *, alpha: float = 0.05, n_boot: int = 2000) -> ResultTable:
    """The comparison table of `target` (a name or task id; None: the store's only target), with provenance."""
    tid, runs, records = arm_runs(store, target)
    arms = {r.arm for r in runs}
    reference = REFERENCE_LABEL if REFERENCE_LABEL in arms else runs[0].arm
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
                       "store": str(Path(store.path).resolve()), "devices": devices, "runs": len(runs)})
    table = build_table(runs, reference, prov=prov, alpha=alpha, n_boot=n_boot)
    if reference != REFERENCE_LABEL:
        table.notes.append(f"no {REFERENCE_LABEL!r} runs: differences are taken against {reference!r}")
    if len(configs) > 1:
        table.notes.append(f"the runs used {len(configs)} different [search] configurations (see provenance)")
    return table


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
