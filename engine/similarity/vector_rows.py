"""Distances of the vector forms (domain, embedding: `Measure.vector_form`) in rows and blocks.

Each task's vector (the square root of its unit-trace own Fisher) is stored once per seed (store/vectors.py); the
distances of a target against many sources are one streamed product over the stored vectors, and they are written
as one slice of the matrix (a column d(·, t) or a row d(t, ·)), not one store operation per entry. The values equal
the per-entry path's (`fisher_distance` on the two Fishers) to ~1e-7 (tests/test_vector_rows.py).
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable

import numpy as np

from store.faults import fault_point

EVENT_LIMIT = 1_000     # at most this many per-entry "distance" events per fill; beyond, progress events only


def ensure_vectors(store, measure, task_ids: Iterable[str]) -> None:
    """Stores the vector of every task (each seed) that lacks one: once per task, e.g. when a store written before
    the vectors were kept is first grown."""
    for s in range(measure.seeds):
        table = store.task_vectors(measure.method, s)
        have = set(table.ids())
        for tid in task_ids:
            if tid not in have:
                store.save_task_vector(measure.method, tid, measure.vector(tid, s), s)


def _groups(pairs: list[tuple[str, str]]) -> list[tuple[str, list[str], bool]]:
    """(fixed task, other tasks, fixed is the target) groups covering `pairs`: by target, then the single-entry
    groups regrouped by source, so a new task's row and column are two writes."""
    by_target: dict[str, list[str]] = defaultdict(list)
    for b, t in pairs:
        by_target[t].append(b)
    out, single = [], []
    for t, bs in by_target.items():
        (out if len(bs) > 1 else single).append((t, bs, True))
    by_source: dict[str, list[str]] = defaultdict(list)
    for t, bs, _ in single:
        by_source[bs[0]].append(t)
    for b, ts in by_source.items():
        out.append((b, ts, False))
    return out


def fill(store, measure, method: str, pairs: list[tuple[str, str]], reporter, job: str) -> int:
    """Computes and writes d(b, t) for every (b, t) of `pairs` (all NaN in the matrix); returns how many."""
    if not pairs:
        return 0
    ensure_vectors(store, measure, sorted({x for p in pairs for x in p}))
    tables = [store.task_vectors(method, s) for s in range(measure.seeds)]
    rows = [t.rows_of() for t in tables]
    groups = _groups(pairs)
    events = len(pairs) <= EVENT_LIMIT
    done = 0
    for fixed, others, fixed_is_target in groups:
        reporter.emit("job_progress", job=job, stage=f"{method} distances", done=done, total=len(pairs))
        reporter.check()
        per_seed = np.empty((len(tables), len(others)), dtype=np.float64)
        for s, table in enumerate(tables):
            q = table.vectors([fixed])[0]
            per_seed[s] = table.distances_to(q, [rows[s][o] for o in others])
        per_seed[:, [i for i, o in enumerate(others) if o == fixed]] = 0.0
        value = per_seed.mean(axis=0)
        std = per_seed.std(axis=0, ddof=1) if len(tables) > 1 else np.zeros_like(value)
        seeds = per_seed if len(tables) > 1 else None
        if fixed_is_target:
            store.set_distances(method, others, [fixed], value[:, None], std[:, None],
                                None if seeds is None else seeds[:, :, None])
        else:
            store.set_distances(method, [fixed], others, value[None, :], std[None, :],
                                None if seeds is None else seeds[:, None, :])
        fault_point("distance-set")
        if events:
            for o, v, sd in zip(others, value.tolist(), std.tolist()):
                b, t = (o, fixed) if fixed_is_target else (fixed, o)
                reporter.emit("distance", method=method, source=b, target=t, value=v, std=sd)
        done += len(others)
    reporter.emit("job_progress", job=job, stage=f"{method} distances", done=done, total=len(pairs))
    return done
