"""Search orchestration over the store: what `tanas-tui search` and the engine's search jobs run.

- `assign_base_genotypes`: base tasks get a best genotype (METHOD.md section 4, last paragraph), all of them or
  just those a space is built from (`space_tasks`).
- `build_space`: the standard space, the task-aware space from the target's nearest dictionary tasks, or the control
  space built the same way from its farthest ones.
- `run_search`: one FUSE run, created or resumed by run id; a finished identical run returns its stored result.
- `run_comparison`: the arms of `search.arms` (random search, FUSE standard / task-aware / farthest-tasks with the
  same search budget, the fixed networks), each for `search.repeats` seeds, and at several budgets when asked.
Every run is planned first (`engine.search.plan`) and goes through `run_planned`: on a remote executor the runs not in
the store yet are units whose writes are replayed here as they arrive; then every planned run is executed here, which
resumes what a unit could not (a started run) and returns the stored result of the rest.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import torch

from engine.choices import COMPARISON_LABELS, SPACE_KINDS
from engine.config import Config, ConfigError
from engine.search.method import SearchResult
from engine.search.plan import (ARMS, RunSpec, plan_base_genotype, plan_comparison, plan_search, run_id_for,
                                run_spec, search_unit)
from engine.space.genotype import Genotype
from engine.space.spaces import SearchSpace, SpaceError, standard_space, task_aware_space
from engine.data.tasks import TaskData, build_task
from store.records import table_row

__all__ = [
    "SPACE_KINDS", "run_id_for", "space_tasks", "assign_base_genotypes", "build_space", "run_search", "run_comparison",
    "run_planned", "target_task", "COMPARISON_LABELS",
]

# The transfer distance is a percentage (about 5..90); task_aware_space weighs genotypes by 1 - d / scale.
TRANSFER_SCALE = 100.0
# Spaces built from ranked dictionary tasks: kind -> (which tasks: "nearest" | "farthest", builder). A space formed
# differently from the neighbours' genotypes is one more entry (and an arm in engine.search.plan.ARMS).
NEIGHBOUR_SPACES: dict[str, tuple[str, Callable[..., SearchSpace]]] = {
    "task-aware": ("nearest", task_aware_space),
    "farthest": ("farthest", task_aware_space),
}


def target_task(cfg: Config, target_name: str, device: torch.device | None = None) -> TaskData:
    task = build_task(cfg.task(target_name), cfg)
    return task.to(device) if device is not None else task


def _ranked(ctx, target_id: str, kind: str):
    cfg = ctx.config
    rank = ctx.dictionary.farthest if NEIGHBOUR_SPACES[kind][0] == "farthest" else ctx.dictionary.nearest
    return rank(target_id, cfg.dictionary.k, cfg.dictionary.method)


# -- base genotypes ------------------------------------------------------------------------------------------------
def space_tasks(ctx, target_name: str, kinds) -> list[str]:
    """Ids of the base tasks the given space kinds of `target_name` are built from: its k nearest ("task-aware")
    and k farthest ("farthest") tasks; the standard space uses none."""
    target_id = ctx.store.find_task(target_name)
    ids: list[str] = []
    for kind in kinds:
        if kind in NEIGHBOUR_SPACES:
            ids += [n.task_id for n in _ranked(ctx, target_id, kind) if n.task_id not in ids]
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
    _apply_given(ctx, base)
    every = [store.task(t["id"]) for t in every]
    base = [store.task(t["id"]) for t in base]
    rounds = cfg.dictionary.genotype_rounds
    missing = [t for t in base if not t.get("best_genotype")]
    if rounds > 0 and missing:
        _search_bases(ctx, missing, rounds)
    elif missing:
        first = not any(t.get("best_genotype") for t in every)   # nothing to inherit from yet
        if first:
            _search_bases(ctx, missing[:1], 1)
        for t in missing[1:] if first else missing:
            _inherit(ctx, t, len(every))
    return {t["id"]: store.task(t["id"]).get("genotype_hash") for t in base}


def _apply_given(ctx, base: list[dict[str, Any]]) -> None:
    """Tasks whose config gives a genotype (`[[tasks]] genotype`) hold exactly that one, marked given: never
    searched, and a changed one replaces the stored one."""
    import json

    given = {t.name: t.genotype for t in ctx.config.all_tasks() if t.genotype}
    for attrs in base:
        text = given.get(attrs.get("name"))
        if text is None:
            continue
        genotype = Genotype.from_dict(json.loads(text))
        source = attrs.get("genotype_source") or {}
        if attrs.get("genotype_hash") != genotype.hash or source.get("kind") != "given":
            ctx.store.update_task(attrs["id"], best_genotype=genotype.to_dict(), genotype_hash=genotype.hash,
                                  genotype_source={"kind": "given"})
            ctx.reporter.emit("log", level="info",
                              message=f"task {attrs['name']}: given genotype {genotype.hash} (not searched)")


def _search_bases(ctx, missing: list[dict[str, Any]], rounds: int) -> None:
    """A genotype search per task (FUSE in the standard space, not retrained); each task's genotype is set as its
    search finishes."""
    space = standard_space(ctx.config.space)
    work = [(plan_base_genotype(ctx.config, t["name"], rounds).with_space(space), ctx.dictionary.task_data(t["id"]))
            for t in missing]
    ids = {spec.run_id: t["id"] for (spec, _), t in zip(work, missing)}

    def genotype_found(spec: RunSpec, result: SearchResult) -> None:
        ctx.store.update_task(ids[spec.run_id], best_genotype=result.genotype, genotype_hash=result.hash,
                              genotype_source={"kind": "search", "run_id": spec.run_id})

    run_planned(ctx, work, "genotype searches", genotype_found, local_stage="base-task genotype searches")


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
def build_space(ctx, target_name: str, kind: str, form: str | None = None) -> SearchSpace:
    """The space of this kind for the target, in `form` (default `[space] form`)."""
    if kind not in SPACE_KINDS:
        raise ConfigError(f"unknown space kind {kind!r}; use one of {', '.join(SPACE_KINDS)}", key="space.kind")
    store, cfg, reporter = ctx.store, ctx.config, ctx.reporter
    section = cfg.space if form is None else dataclasses.replace(cfg.space, form=form)
    if kind == "standard":
        space = standard_space(cfg.space)
        target_id = None
    else:
        target_id = store.find_task(target_name)
        which, builder = NEIGHBOUR_SPACES[kind]
        neighbors = []
        for n in _ranked(ctx, target_id, kind):
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
        space = builder(neighbors, section, scale=scale, kind=kind)
    reporter.emit("space_built", target=target_id or target_name, kind=kind, space=space.to_dict(),
                  size_log10=round(space.size_log10(), 3))
    return space


# -- running planned runs ------------------------------------------------------------------------------------------
def run_planned(ctx, work: list[tuple[RunSpec, TaskData]], stage: str,
                on_result: Callable[[RunSpec, SearchResult], None] | None = None,
                local_stage: str | None = None) -> list[SearchResult]:
    """Executes planned runs (each with its space set) and returns their results in plan order; `on_result` sees
    each as it is recorded. On a remote executor the runs the store does not hold yet go out as units first (progress
    as `stage`); every run is then executed here: a replayed one returns its stored result, a started one resumes."""
    executor = getattr(ctx, "executor", None)
    remote = _run_remote(ctx, work, stage, on_result) if getattr(executor, "remote", False) else set()
    local = [spec.run_id for spec, _ in work if spec.run_id not in remote]
    if remote:      # the units counted the work as `stage`; what runs here then only replays stored results
        local_stage = None
    results = []
    for spec, task in work:
        here = spec.run_id not in remote
        if here and local_stage:
            ctx.reporter.emit("job_progress", job=ctx.job_id, stage=local_stage, done=local.index(spec.run_id),
                              total=len(local))
        result = run_spec(ctx.store, spec, task, ctx.device, ctx.reporter)
        if here and on_result is not None:
            on_result(spec, result)
        results.append(result)
    if local_stage and local:
        ctx.reporter.emit("job_progress", job=ctx.job_id, stage=local_stage, done=len(local), total=len(local))
    return results


def _run_remote(ctx, work: list[tuple[RunSpec, TaskData]], stage: str, on_result) -> set[str]:
    """The planned runs not in the store as one unit each; their recorded writes are replayed as they arrive.
    Returns the run ids replayed."""
    from store.recording import replay

    store, ex = ctx.store, ctx.executor
    stored = {s["id"] for s in store.list_searches()}
    refs: dict[int, Any] = {}
    units: dict[Any, RunSpec] = {}
    for spec, task in work:
        if spec.run_id in stored:
            continue
        if id(task) not in refs:
            refs[id(task)] = ex.put(task)
        name = spec.run_id if spec.arm else spec.label
        units[ex.submit(search_unit, refs[id(task)], spec, ex.device, ex.unit_reporter(name),
                        name=name.replace(" ", ":", 1))] = spec
    for done, (ref, (ops, result)) in enumerate(ex.completed(list(units), ctx.reporter), 1):
        replay(ops, store)
        if on_result is not None:
            on_result(units[ref], SearchResult.from_dict(result))
        ctx.reporter.emit("job_progress", job=ctx.job_id, stage=stage, done=done, total=len(units))
    return {spec.run_id for spec in units.values()}


class _Spaces:
    """The space of each arm, built once per job (its base tasks' genotypes first); a stored run keeps its own."""

    def __init__(self, ctx, target_name: str):
        self.ctx, self.target_name, self.built = ctx, target_name, {}
        self.stored = {s["id"]: s for s in ctx.store.list_searches()}

    def attach(self, spec: RunSpec) -> RunSpec:
        if spec.space_kind is None:
            return spec
        stored = (self.stored.get(spec.run_id) or {}).get("space")
        if stored is not None:
            return spec.with_space(SearchSpace.from_dict(stored))
        key = (spec.space_kind, spec.space_form)
        if key not in self.built:
            if spec.space_kind != "standard":
                ensure_dictionary(self.ctx, self.target_name)
                assign_base_genotypes(self.ctx, only=space_tasks(self.ctx, self.target_name, [spec.space_kind]))
            self.built[key] = build_space(self.ctx, self.target_name, spec.space_kind, spec.space_form)
        return spec.with_space(self.built[key])


# -- one search ----------------------------------------------------------------------------------------------------
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
    cfg = ctx.config
    spec = plan_search(cfg, target_name, space_kind, cfg.project.seed if seed is None else int(seed), run_id)
    task = task if task is not None else ctx.dictionary.task_for(cfg.task(target_name))
    spaces = _Spaces(ctx, target_name)
    spec = spaces.attach(spec) if space is None or spec.run_id in spaces.stored else spec.with_space(space)
    result = run_spec(ctx.store, spec, task, ctx.device, ctx.reporter)   # here, also beside a cluster: followed live
    return {"run_id": spec.run_id, **result.to_dict(), "space_form": spec.space.form,
            "space_size_log10": round(spec.space.size_log10(), 3)}


def ensure_dictionary(ctx, target_name: str) -> None:
    store, cfg, dictionary = ctx.store, ctx.config, ctx.dictionary
    target = cfg.task(target_name)
    dictionary.ensure([t for t in cfg.tasks if t.name != target_name], "base")
    if not any(t.get("name") == target_name and t.get("role", "base") == "base" for t in store.list_tasks()):
        dictionary.ensure([target], "target")
    dictionary.compute_distances(cfg.dictionary.method)


# -- the comparison table ------------------------------------------------------------------------------------------
def run_comparison(ctx, target_name: str, *, seeds: list[int] | None = None,
                   budgets: list[Mapping[str, Any]] | None = None,
                   run_ids: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Table rows for the arms of `search.arms`, each run once per seed (`search.repeats` seeds from project.seed)
    and budget (`budgets`: [search] overrides such as {"rounds": 4}; default the config's own).

    The FUSE arms (standard, task-aware and the farthest-tasks control) share FUSE's [search] budget; random search
    trains as many distinct candidates as FUSE does, each for a FUSE round's weight epochs; every run records its
    budget, and which test samples it got right. Every method reads the test split once. Finished runs in the store
    are reused, so an interrupted comparison continues where it stopped.
    """
    plan = plan_comparison(ctx.config, target_name, seeds, budgets)
    if run_ids:     # a planned run the caller ran under its own id (`run --run-id`): the comparison reuses it
        plan = [dataclasses.replace(spec, run_id=run_ids.get(spec.run_id, spec.run_id)) for spec in plan]
    task = ctx.dictionary.task_for(ctx.config.task(target_name))
    spaces = _Spaces(ctx, target_name)
    results = run_planned(ctx, [(spaces.attach(spec), task) for spec in plan], "comparison arms",
                          local_stage="comparison arms")
    return [table_row(spec.label, result, searched=spec.method != "fixed") for spec, result in zip(plan, results)]
