"""Search orchestration over the store: what `tanas-tui search` and the engine's search jobs run.

- `assign_base_genotypes`: base tasks get a best genotype (METHOD.md section 4, last paragraph), all of them or
  just those a space is built from (`space_tasks`).
- `build_space`: the standard space, the task-aware space from the target's nearest dictionary tasks, or the control
  space built the same way from its farthest ones.
- `run_search`: one FUSE run, created or resumed by run id; a finished identical run returns its stored result.
- `run_comparison`: the arms of `search.arms` (random search, FUSE standard / task-aware / farthest-tasks with the
  same search budget, the fixed networks), each for `search.repeats` seeds.
"""
from __future__ import annotations

import dataclasses
import hashlib
import re
from typing import Any

import torch

from engine.choices import ARM_SPACE, COMPARISON_LABELS, SPACE_KINDS
from engine.search.baselines import (FIXED_NETWORKS, fixed_budget, fixed_network, random_budget, random_search,
                                     table_row)
from engine.config import Config, ConfigError
from engine.search.checkpoint import save_final_weights
from engine.search.fuse import Fuse, ResumeMismatch, SearchResult, config_differences, derive_seed
from engine.space.genotype import Genotype
from engine.space.spaces import SearchSpace, SpaceError, standard_space, task_aware_space
from engine.data.tasks import TaskData, build_task
from store.records import SearchRunRecord

__all__ = [
    "SPACE_KINDS", "run_id_for", "space_tasks", "assign_base_genotypes", "build_space", "run_search", "run_comparison",
    "target_task", "COMPARISON_LABELS",
]

# The transfer distance is a percentage (about 5..90); task_aware_space weighs genotypes by 1 - d / scale.
TRANSFER_SCALE = 100.0
_RUN_NAME_MAX = 100  # characters of the name kept in a run id (ids are node names of at most 200 characters)


def run_id_for(target_name: str, kind: str, seed: int) -> str:
    """A store-safe run id. A name that is not store-safe as it is ("a/b", "a b", a very long one) keeps a readable
    form plus "=" and a hash of the whole name: "=" never survives from a name, so no two names share an id."""
    safe = re.sub(r"[^A-Za-z0-9._+-]", "_", target_name).lstrip("._-+")[:_RUN_NAME_MAX] or "task"
    if safe != target_name:
        safe += "=" + hashlib.sha256(target_name.encode("utf-8")).hexdigest()[:16]
    return f"{safe}-{kind}-{seed}"


def target_task(cfg: Config, target_name: str, device: torch.device | None = None) -> TaskData:
    task = build_task(cfg.task(target_name), cfg)
    return task.to(device) if device is not None else task


def _search_section(cfg: Config, **changes: Any):
    return dataclasses.replace(cfg.search, **changes)


# -- base genotypes ------------------------------------------------------------------------------------------------
def space_tasks(ctx, target_name: str, kinds) -> list[str]:
    """Ids of the base tasks the given space kinds of `target_name` are built from: its k nearest ("task-aware")
    and k farthest ("farthest") tasks; the standard space uses none."""
    cfg = ctx.config
    target_id = ctx.store.find_task(target_name)
    ids: list[str] = []
    for kind in kinds:
        if kind not in ("task-aware", "farthest"):
            continue
        rank = ctx.dictionary.farthest if kind == "farthest" else ctx.dictionary.nearest
        ids += [n.task_id for n in rank(target_id, cfg.dictionary.k, cfg.dictionary.method) if n.task_id not in ids]
    return ids


def assign_base_genotypes(ctx, only=None) -> dict[str, str]:
    """Gives each base task without one a best genotype; returns {task_id: genotype hash} for those base tasks.

    `only` (task ids) limits this to the tasks a space is about to use (`space_tasks`): a genotype search per base
    task is most of a first run's time, and the others get theirs when a later target needs them.

    With `dictionary.genotype_rounds` > 0 each such task gets a FUSE search of that many rounds in the standard space
    (the rest of the budget from [search]). With 0, a task inherits the genotype of its nearest task (smallest
    d(b, task)) that has one; when no base task has a genotype yet, the first task to assign (insertion order) is
    searched with one round, so there is something to inherit.
    """
    store, cfg = ctx.store, ctx.config
    every = [t for t in store.list_tasks() if t.get("role", "base") == "base"]
    base = every if only is None else [t for t in every if t["id"] in set(only)]
    if not base:
        return {}
    rounds = cfg.dictionary.genotype_rounds
    missing = [t for t in base if not t.get("best_genotype")]
    if rounds > 0 and missing and getattr(getattr(ctx, "executor", None), "remote", False):
        _remote_base_searches(ctx, missing, rounds)
        missing = [t for t in (store.task(t["id"]) | {"id": t["id"]} for t in base) if not t.get("best_genotype")]
    if rounds > 0:
        for i, t in enumerate(missing):
            ctx.reporter.emit("job_progress", job=ctx.job_id, stage="base task", done=i, total=len(missing))
            _search_base(ctx, t, rounds)
    elif missing:
        first = not any(t.get("best_genotype") for t in every)   # nothing to inherit from yet
        if first:
            _search_base(ctx, missing[0], 1)
        for t in missing[1:] if first else missing:
            _inherit(ctx, t, len(every))
    return {t["id"]: store.task(t["id"]).get("genotype_hash") for t in base}


def _base_search_args(cfg: Config, name: str, rounds: int) -> tuple[str, Any, int]:
    """(run id, [search] section, seed) of a base task's genotype search."""
    seed = cfg.project.seed
    # Each base task samples its own candidates: with one shared seed every task would see the same candidate set
    # and the dictionary would hold near-identical genotypes, leaving the task-aware space nothing to choose from.
    return run_id_for(name, "genotype", seed), _search_section(cfg, rounds=rounds), derive_seed(seed, "base-genotype", name)


def _search_base(ctx, attrs: dict[str, Any], rounds: int) -> None:
    store, cfg, device, reporter = ctx.store, ctx.config, ctx.device, ctx.reporter
    task = ctx.dictionary.task_data(attrs["id"])
    run_id, section, search_seed = _base_search_args(cfg, attrs["name"], rounds)
    space = standard_space(cfg.space)
    result = _fuse(store, task, space, section, run_id, device, search_seed, reporter, {"purpose": "base-genotype"},
                   retrain=False)
    _set_base_genotype(store, attrs["id"], result.genotype, result.hash, run_id)


def _set_base_genotype(store, task_id: str, genotype: dict[str, Any], hash_: str, run_id: str) -> None:
    store.update_task(task_id, best_genotype=genotype, genotype_hash=hash_,
                      genotype_source={"kind": "search", "run_id": run_id})


def _remote_base_searches(ctx, missing: list[dict[str, Any]], rounds: int) -> None:
    """One unit per base task whose genotype search has not started (a started one resumes here, from the store);
    the engine replays each unit's writes and sets the task's genotype as it arrives."""
    from store.recording import replay

    store, cfg, ex = ctx.store, ctx.config, ctx.executor
    stored = {s["id"] for s in store.list_searches()}
    space = standard_space(cfg.space)
    units: dict[Any, tuple[str, str]] = {}
    for attrs in missing:
        run_id, section, seed = _base_search_args(cfg, attrs["name"], rounds)
        if run_id in stored:
            continue
        task_ref = ex.put(ctx.dictionary.task_data(attrs["id"]))
        ref = ex.submit(fuse_unit, task_ref, space, section, run_id, ex.device, seed, {"purpose": "base-genotype"},
                        False, ex.unit_reporter(f"genotype {attrs['name']}"), name=f"genotype:{attrs['name']}")
        units[ref] = (attrs["id"], run_id)
    for done, (ref, (ops, result)) in enumerate(ex.completed(list(units), ctx.reporter), 1):
        task_id, run_id = units[ref]
        replay(ops, store)
        _set_base_genotype(store, task_id, result["genotype"], result["hash"], run_id)
        ctx.reporter.emit("job_progress", job=ctx.job_id, stage="genotype searches", done=done, total=len(units))


def _inherit(ctx, attrs: dict[str, Any], k: int) -> None:
    store, cfg, reporter = ctx.store, ctx.config, ctx.reporter
    for n in ctx.dictionary.nearest(attrs["id"], k, cfg.dictionary.method):
        if n.task_id == attrs["id"]:
            continue
        other = store.task(n.task_id)
        if other.get("best_genotype"):
            store.update_task(attrs["id"], best_genotype=other["best_genotype"], genotype_hash=other["genotype_hash"],
                              genotype_source={"kind": "inherited", "from": n.task_id, "from_name": n.name,
                                               "distance": float(n.distance)})
            reporter.emit("log", level="info",
                          message=f"task {attrs['name']}: inherits genotype {other['genotype_hash']} from {n.name} "
                                  f"(d = {n.distance:.4g})")
            return
    raise SpaceError(f"task {attrs['name']!r}: no nearby task has a genotype to inherit; compute the distances first "
                     f"or set dictionary.genotype_rounds > 0")


# -- spaces --------------------------------------------------------------------------------------------------------
def build_space(ctx, target_name: str, kind: str) -> SearchSpace:
    if kind not in SPACE_KINDS:
        raise ConfigError(f"unknown space kind {kind!r}; use one of {', '.join(SPACE_KINDS)}", key="space.kind")
    store, cfg, reporter = ctx.store, ctx.config, ctx.reporter
    if kind == "standard":
        space = standard_space(cfg.space)
        target_id = None
    else:
        target_id = store.find_task(target_name)
        which = "farthest" if kind == "farthest" else "nearest"
        ranked = (ctx.dictionary.farthest if kind == "farthest" else ctx.dictionary.nearest)(
            target_id, cfg.dictionary.k, cfg.dictionary.method)
        neighbors = []
        for n in ranked:
            genotype = store.task(n.task_id).get("best_genotype")
            if not genotype:
                reporter.emit("warning", message=f"{which} task {n.name} has no best genotype; left out of the space",
                              code="no-genotype")
                continue
            neighbors.append((n.task_id, n.name, float(n.distance), Genotype.from_dict(genotype)))
        if not neighbors:
            raise SpaceError(f"no {which} task of {target_name!r} has a best genotype: assign the base tasks' "
                             f"genotypes first (dictionary.genotype_rounds)")
        scale = TRANSFER_SCALE if cfg.dictionary.method == "transfer" else 1.0
        space = task_aware_space(neighbors, cfg.space, scale=scale, kind=kind)
    reporter.emit("space_built", target=target_id or target_name, kind=kind, space=space.to_dict())
    return space


# -- one search ----------------------------------------------------------------------------------------------------
def _fuse(store, task, space, section, run_id, device, seed, reporter, attrs=None, retrain=True) -> SearchResult:
    if run_id in {s["id"] for s in store.list_searches()}:
        return Fuse.resume(store, run_id, task, space, section, device, reporter)
    return Fuse(task, space, section, store=store, run_id=run_id, device=device, seed=seed, reporter=reporter,
                attrs=attrs, retrain=retrain).run()


def run_search(ctx, target_name: str, space_kind: str, *, run_id: str | None = None, seed: int | None = None,
               task: TaskData | None = None, space: SearchSpace | None = None) -> dict[str, Any]:
    """Runs (or resumes, or returns the stored result of) one FUSE search on `target_name`; returns the result dict.

    A task-aware search first makes sure the dictionary holds the base tasks and the target (probes, distances) and
    that every base task has a best genotype. A resumed run reuses the space stored with it, so a dictionary that
    grew in between does not change a running search.
    A caller that already built the space (the pipeline) passes it as `space`.
    """
    if space_kind not in SPACE_KINDS:
        raise ConfigError(f"unknown space kind {space_kind!r}; use one of {', '.join(SPACE_KINDS)}", key="space.kind")
    store, cfg, device, reporter = ctx.store, ctx.config, ctx.device, ctx.reporter
    seed = cfg.project.seed if seed is None else int(seed)
    run_id = run_id or run_id_for(target_name, space_kind, seed)
    task = task if task is not None else ctx.dictionary.task_for(cfg.task(target_name))
    existing = {s["id"]: s for s in store.list_searches()}
    if run_id in existing:
        attrs = existing[run_id]
        problems = config_differences(attrs.get("config", {}), dataclasses.asdict(cfg.search))
        if attrs.get("space_kind") != space_kind:
            problems.append(f"space kind (stored {attrs.get('space_kind')!r}, now {space_kind!r})")
        if problems:
            raise ResumeMismatch(f"search {run_id!r} exists with a different configuration: " + "; ".join(problems)
                                 + " (use another --seed or run id for a new search)",
                                 key=", ".join(p.split(" ")[0] for p in problems))
        space = SearchSpace.from_dict(attrs["space"])
        result = Fuse.resume(store, run_id, task, space, cfg.search, device, reporter)
        return {"run_id": run_id, **result.to_dict()}
    if space is None:
        if space_kind != "standard":
            _ensure_dictionary(ctx, target_name)
            assign_base_genotypes(ctx, only=space_tasks(ctx, target_name, [space_kind]))
        space = build_space(ctx, target_name, space_kind)
    attrs = {"space_kind": space_kind, "purpose": "target", "arm": f"fuse-{space_kind}"}
    result = Fuse(task, space, cfg.search, store=store, run_id=run_id, device=device, seed=seed, reporter=reporter,
                  attrs=attrs).run()
    return {"run_id": run_id, **result.to_dict()}


def _ensure_dictionary(ctx, target_name: str) -> None:
    store, cfg, dictionary = ctx.store, ctx.config, ctx.dictionary
    target = cfg.task(target_name)
    dictionary.ensure([t for t in cfg.tasks if t.name != target_name], "base")
    if not any(t.get("name") == target_name and t.get("role", "base") == "base" for t in store.list_tasks()):
        dictionary.ensure([target], "target")
    dictionary.compute_distances(cfg.dictionary.method)


# -- the comparison table ------------------------------------------------------------------------------------------
def _stored_result(store, run_id: str, section) -> SearchResult | None:
    for s in store.list_searches():
        if s["id"] == run_id:
            # only the keys that change a result count: more repeats or another list of arms reuse finished runs
            if s.get("status") == "done" and s.get("result") and not config_differences(
                    s.get("config") or {}, dataclasses.asdict(section)):
                return SearchResult.from_dict(s["result"])
            raise ResumeMismatch(f"baseline run {run_id!r} exists but is unfinished or has another configuration; "
                                 f"remove it or use another seed", key="search")
    return None


def _record_baseline(store, run_id: str, task: TaskData, section, seed: int, result: SearchResult,
                     extra: dict[str, Any]) -> None:
    record = SearchRunRecord.from_attrs(extra)
    record.kind, record.target, record.target_name = result.kind, task.id, task.definition.name
    record.config, record.seed, record.status, record.device = dataclasses.asdict(section), seed, "running", result.device
    writer = store.create_search(run_id, record.to_attrs(), 1)
    writer.flush()
    if result.test_correct is not None:
        store.save_test_outcome(run_id, result.test_correct, task.id)
    store.update_search(run_id, status="done", result=result.to_dict())


def run_comparison(ctx, target_name: str, *, seeds: list[int] | None = None) -> list[dict[str, Any]]:
    """Table rows for the arms of `search.arms`, each run once per seed (`search.repeats` seeds from project.seed).

    The FUSE arms (standard, task-aware and the farthest-tasks control) share FUSE's [search] budget; random search
    trains as many distinct candidates as FUSE does, each for a FUSE round's weight epochs; every run records its
    budget, and which test samples it got right. Every method reads the test split once. Finished runs in the store
    are reused, so an interrupted comparison continues where it stopped.
    """
    store, cfg, device, reporter = ctx.store, ctx.config, ctx.device, ctx.reporter
    seeds = seeds if seeds is not None else [cfg.project.seed + i for i in range(max(1, cfg.search.repeats))]
    arms = tuple(cfg.search.arms)
    if "fixed" in arms:
        for name in cfg.search.fixed_networks:
            if name not in FIXED_NETWORKS:
                raise ConfigError(f"unknown fixed network {name!r}; known: {', '.join(FIXED_NETWORKS)}",
                                  key="search.fixed_networks", file=cfg.file)
    task = ctx.dictionary.task_for(cfg.task(target_name))
    rows: list[dict[str, Any]] = []
    section = cfg.search
    if getattr(getattr(ctx, "executor", None), "remote", False):
        _remote_comparison(ctx, target_name, task, seeds, arms)
    for seed in seeds:
        for arm in arms:
            if arm == "random":
                run_id = run_id_for(target_name, "random", seed)
                result = _stored_result(store, run_id, section)
                if result is None:
                    result = random_arm(store, task, cfg.space, section, seed, device, reporter, run_id)
                rows.append(table_row(COMPARISON_LABELS["random"], result))
            elif arm in ARM_SPACE:
                kind = ARM_SPACE[arm]
                out = run_search(ctx, target_name, kind, seed=seed, task=task)
                rows.append(table_row(COMPARISON_LABELS[kind], out))
            else:
                for name in cfg.search.fixed_networks:
                    run_id = run_id_for(target_name, name, seed)
                    result = _stored_result(store, run_id, section)
                    if result is None:
                        result = fixed_arm(store, name, task, section, seed, device, reporter, run_id)
                    rows.append(table_row(FIXED_NETWORKS[name][0], result, searched=False))
    return rows




def random_arm(store, task: TaskData, space_section, section, seed: int, device, reporter, run_id: str) -> SearchResult:
    """The random-search arm of the comparison, recorded in `store` (the engine's, or a unit's recording)."""
    space = standard_space(space_section)
    result, model, records = random_search(task, space, section, seed=seed, device=device, reporter=reporter,
                                           run_id=run_id)
    budget = random_budget(section)
    _record_baseline(store, run_id, task, section, seed, result,
                     {"space_kind": "standard", "space": space.to_dict(), "candidates_evaluated": records,
                      "budget_candidates": budget["candidates"], "arm": "random", "budget": budget})
    save_final_weights(store, run_id, Genotype.from_dict(result.genotype), model, task.num_classes,
                       int(task.train_x.shape[1]))
    reporter.emit("search_done", run_id=run_id, result=result.to_dict())
    return result


def fixed_arm(store, name: str, task: TaskData, section, seed: int, device, reporter, run_id: str) -> SearchResult:
    """A fixed network's arm of the comparison, recorded in `store`."""
    result, _ = fixed_network(name, task, section, seed=seed, device=device, reporter=reporter, run_id=run_id)
    _record_baseline(store, run_id, task, section, seed, result,
                     {"network": name, "arm": "fixed", "budget": fixed_budget(section)})
    reporter.emit("search_done", run_id=run_id, result=result.to_dict())
    return result


def _remote_comparison(ctx, target_name: str, task: TaskData, seeds: list[int], arms: tuple[str, ...]) -> None:
    """Every arm and repeat not yet in the store as one unit each; their recorded writes are replayed here as they
    arrive, so the table below reads them like finished local runs."""
    from store.recording import replay

    store, cfg, ex = ctx.store, ctx.config, ctx.executor
    stored = {s["id"] for s in store.list_searches()}
    task_ref = None
    spaces: dict[str, SearchSpace] = {}
    units: list[Any] = []

    def submit(fn, run_id: str, *args: Any) -> None:
        nonlocal task_ref
        task_ref = task_ref if task_ref is not None else ex.put(task)
        units.append(ex.submit(fn, task_ref, *args, ex.unit_reporter(run_id), name=run_id))

    space_kinds = [ARM_SPACE[arm] for arm in arms if arm in ARM_SPACE]
    for seed in seeds:
        run_id = run_id_for(target_name, "random", seed)
        if "random" in arms and run_id not in stored:
            submit(arm_unit, run_id, "random", cfg.space, cfg.search, seed, ex.device, run_id)
        for kind in space_kinds:
            run_id = run_id_for(target_name, kind, seed)
            if run_id in stored:
                continue
            if kind not in spaces:
                if kind != "standard":
                    _ensure_dictionary(ctx, target_name)
                    assign_base_genotypes(ctx, only=space_tasks(ctx, target_name, [kind]))
                spaces[kind] = build_space(ctx, target_name, kind)
            submit(fuse_unit, run_id, spaces[kind], cfg.search, run_id, ex.device, seed,
                   {"space_kind": kind, "purpose": "target", "arm": f"fuse-{kind}"}, True)
        for name in (cfg.search.fixed_networks if "fixed" in arms else ()):
            run_id = run_id_for(target_name, name, seed)
            if run_id not in stored:
                submit(arm_unit, run_id, name, cfg.space, cfg.search, seed, ex.device, run_id)
    for done, (_, (ops, _)) in enumerate(ex.completed(units, ctx.reporter), 1):
        replay(ops, store)
        ctx.reporter.emit("job_progress", job=ctx.job_id, stage="comparison arms", done=done, total=len(units))


# -- units of work for a remote executor ---------------------------------------------------------------------------
# Each runs the same code as the local path against a `store.recording.RecordingStore` and returns (recorded writes,
# result); the engine replays the writes onto its store, staying the single writer.

def fuse_unit(task, space, section, run_id: str, device: str, seed: int, attrs: dict[str, Any], retrain: bool,
              reporter=None) -> tuple[list[tuple], dict[str, Any]]:
    """One FUSE search: a base task's genotype search, or a comparison arm in the standard or task-aware space."""
    from engine.runtime.reporting import SILENT
    from store.recording import RecordingStore

    store = RecordingStore()
    result = Fuse(task, space, section, store=store, run_id=run_id, device=device, seed=seed,
                  reporter=reporter or SILENT, attrs=attrs, retrain=retrain).run()
    return store.ops, result.to_dict()


def arm_unit(task, arm: str, space_section, section, seed: int, device: str, run_id: str,
             reporter=None) -> tuple[list[tuple], dict[str, Any]]:
    """The random-search arm ("random") or a fixed network's arm of the comparison, one seed."""
    from engine.runtime.reporting import SILENT
    from store.recording import RecordingStore

    store = RecordingStore()
    if arm == "random":
        result = random_arm(store, task, space_section, section, seed, device, reporter or SILENT, run_id)
    else:
        result = fixed_arm(store, arm, task, section, seed, device, reporter or SILENT, run_id)
    return store.ops, result.to_dict()
