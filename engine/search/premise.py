"""The premise check (`tanas-tui premise TARGET`): do the genotypes of the target's nearest dictionary tasks do
better on the target than those of farther ones?

The checked tasks are the k nearest base tasks, the k farthest, and tasks spread evenly in between (`tasks` in all,
or every base task when there are fewer). Each one's best genotype (searched first if it has none) is trained from
scratch on the target's train split with one budget (`epochs`) for `seeds` seeds and scored on the target's val
split; the test split is never read. The statistics are engine.results.premise's. The record is stored with the
target task (`premise`), with the settings it was measured with; the same settings return it without training.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from engine.results.premise import premise_stats
from engine.search.method import derive_seed, now
from engine.search.training import evaluate, train_from_scratch
from engine.space.genotype import Genotype
from engine.space.spaces import SpaceError, standard_space

MIN_TASKS = 4


def select_tasks(ranked: list[Any], n: int, k: int) -> list[tuple[Any, str]]:
    """(neighbour, group) for the k nearest ("near"), the k farthest ("far") and evenly spaced ones in between
    ("middle") of `ranked` (nearest first), n in all; every task when there are at most n."""
    total = len(ranked)
    k = min(k, total // 2)
    if total <= n:
        chosen = list(range(total))
    else:
        inner = list(range(k, total - k))
        picks = np.linspace(0, len(inner) - 1, n - 2 * k).round().astype(int) if n > 2 * k else []
        chosen = sorted(set(range(k)) | set(range(total - k, total)) | {inner[i] for i in picks})
    return [(ranked[i], "near" if i < k else "far" if i >= total - k else "middle") for i in chosen]


def _settings(cfg, tasks: int, seeds: int, epochs: int) -> dict[str, Any]:
    return {"tasks": tasks, "seeds": seeds, "epochs": epochs, "k": cfg.dictionary.k, "method": cfg.dictionary.method,
            "genotype_rounds": cfg.dictionary.genotype_rounds, "batch_size": cfg.search.batch_size,
            "lr": cfg.search.w_lr, "seed": cfg.project.seed}


def check_premise(ctx, target_name: str, *, tasks: int = 8, seeds: int = 3, epochs: int = 3) -> dict[str, Any]:
    """The premise record for `target_name` (see the module doc); stored with the target task."""
    from engine.search import searching

    store, cfg, reporter = ctx.store, ctx.config, ctx.reporter
    settings = _settings(cfg, tasks, seeds, epochs)
    searching.ensure_dictionary(ctx, target_name)
    target_id = store.find_task(target_name)
    stored = store.task(target_id).get("premise")
    if stored and stored.get("settings") == settings:
        reporter.emit("log", level="info", message=f"premise check of {target_name}: the stored one (same settings)")
        return stored

    bases = [t for t in store.list_tasks() if t.get("role", "base") == "base" and t["id"] != target_id]
    if len(bases) < MIN_TASKS:
        raise SpaceError(f"the premise check needs at least {MIN_TASKS} base tasks in the dictionary; the "
                                   f"store has {len(bases)}")
    ranked = [n for n in ctx.dictionary.nearest(target_id, len(bases) + 1, cfg.dictionary.method)
              if n.task_id != target_id]
    chosen = select_tasks(ranked, tasks, cfg.dictionary.k)
    searching.assign_base_genotypes(ctx, only=[n.task_id for n, _ in chosen])

    task = ctx.dictionary.task_for(cfg.task(target_name))
    start = time.perf_counter()
    rows, errors = [], np.zeros((len(chosen), seeds))
    total = len(chosen) * seeds
    for i, (n, group) in enumerate(chosen):
        attrs = store.task(n.task_id)
        genotype = Genotype.from_dict(attrs["best_genotype"])
        for s in range(seeds):
            reporter.check()
            seed = derive_seed(cfg.project.seed, "premise", target_name, attrs.get("genotype_hash"), s)
            model, _ = train_from_scratch(genotype, task, epochs, on="train", seed=seed, device=ctx.device,
                                          batch_size=cfg.search.batch_size, lr=cfg.search.w_lr,
                                          stage="premise training", where=f"genotype of task {attrs['name']!r}")
            _, acc = evaluate(model, task.val_x, task.val_y, ctx.device)
            errors[i, s] = 100.0 * (1.0 - acc)
            reporter.emit("job_progress", job=ctx.job_id, stage="premise trainings", done=i * seeds + s + 1,
                          total=total)
        rows.append({"task_id": n.task_id, "name": n.name, "distance": float(n.distance), "group": group,
                     "genotype_hash": attrs.get("genotype_hash"),
                     "genotype_source": (attrs.get("genotype_source") or {}).get("kind", "search"),
                     "val_errors": errors[i].tolist(), "val_error": float(errors[i].mean())})
    near = [i for i, (_, g) in enumerate(chosen) if g == "near"]
    far = [i for i, (_, g) in enumerate(chosen) if g == "far"]
    stats = premise_stats([r["distance"] for r in rows], errors, near, far, seed=cfg.project.seed)
    record = {"target": target_name, "target_id": target_id, "settings": settings, "rows": rows, "stats": stats,
              "val_samples": int(len(task.val_y)), "seconds": time.perf_counter() - start, "finished": now()}
    store.update_task(target_id, premise=record)
    return record


# -- base genotypes worth transferring ------------------------------------------------------------------------------
def percentile(value: float, others: list[float]) -> float:
    """The share (percent) of `others` that `value` beats, ties counting half: 100 = lower error than every one."""
    if not others:
        return float("nan")
    return 100.0 * sum(1.0 if value < o else 0.5 if value == o else 0.0 for o in others) / len(others)


def check_genotypes(ctx, *, random_genotypes: int = 8, epochs: int = 3) -> dict[str, Any]:
    """For every base task: its genotype's val error on its own task against `random_genotypes` random genotypes of
    the standard space, all trained from scratch for `epochs` epochs on its train split; the percentile is stored
    with the task (`genotype_quality`). Tasks without a genotype get one first, as a search would."""
    from engine.search import searching

    store, cfg, reporter = ctx.store, ctx.config, ctx.reporter
    ctx.dictionary.ensure(list(cfg.tasks), "base")
    ctx.dictionary.compute_distances(cfg.dictionary.method)   # a task without a genotype may inherit one
    searching.assign_base_genotypes(ctx)
    bases = [t for t in store.list_tasks() if t.get("role", "base") == "base"]
    space = standard_space(cfg.space)
    settings = {"random": random_genotypes, "epochs": epochs, "seed": cfg.project.seed,
                "batch_size": cfg.search.batch_size, "lr": cfg.search.w_lr}
    rows, total = [], len(bases) * (random_genotypes + 1)
    for i, attrs in enumerate(bases):
        task = ctx.dictionary.task_data(attrs["id"])
        own = Genotype.from_dict(attrs["best_genotype"])
        draws = space.sample_many(random_genotypes, derive_seed(cfg.project.seed, "genotype-quality", attrs["id"]),
                                  exclude=[own.hash])
        errors = []
        for j, genotype in enumerate([own, *draws]):
            reporter.check()
            seed = derive_seed(cfg.project.seed, "genotype-quality", attrs["id"], "train")   # one data order for all
            model, _ = train_from_scratch(genotype, task, epochs, on="train", seed=seed, device=ctx.device,
                                          batch_size=cfg.search.batch_size, lr=cfg.search.w_lr,
                                          stage="genotype check", where=f"task {attrs['name']!r}, genotype {j}")
            errors.append(100.0 * (1.0 - evaluate(model, task.val_x, task.val_y, ctx.device)[1]))
            reporter.emit("job_progress", job=ctx.job_id, stage="genotype trainings",
                          done=i * (random_genotypes + 1) + j + 1, total=total)
        quality = {"settings": settings, "val_error": errors[0], "random_val_errors": errors[1:],
                   "percentile": percentile(errors[0], errors[1:]), "genotype_hash": own.hash, "finished": now()}
        store.update_task(attrs["id"], genotype_quality=quality)
        rows.append({"task_id": attrs["id"], "name": attrs["name"],
                     "source": (store.task(attrs["id"]).get("genotype_source") or {}).get("kind", "search"),
                     **{k: quality[k] for k in ("genotype_hash", "val_error", "random_val_errors", "percentile")}})
    values = [r["percentile"] for r in rows]
    return {"settings": settings, "rows": rows, "mean_percentile": float(np.mean(values)) if values else None,
            "sd_percentile": float(np.std(values, ddof=1)) if len(values) > 1 else None,
            "genotype_rounds": cfg.dictionary.genotype_rounds}
