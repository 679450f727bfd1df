"""Shared frozen feature extractor (engine/shared_probe.py) under one global seed: one body trained on every class of
the three embedded sources, a fitted head per task, Fishers of the shared body. Writes the "embedding" (Task2Vec,
symmetric) and "pair" (METHOD's asymmetric form) matrices for every normalisation × layer set, and the noise floor
(heads fitted on the two halves of a task's train split).

    OMP_NUM_THREADS=1 python experiments/fisher_shared_body.py --seed 0 --out /tmp/sim/sb0.npz [--epochs 3]
"""
from __future__ import annotations

import argparse
import time

from sim_common import N_BASES, N_D1, build_all, config, variant_distances  # noqa: I001

import numpy as np
import torch

from engine.data import get_source
from engine.similarity.dictionary import fisher_sample_index
from engine.similarity.fisher import diagonal_fisher, fisher_layout
from engine.similarity.shared_probe import broad_task, task_view, train_shared_body

SOURCES = ("mnist-5k", "uci-digits", "sketches")


def t2v_cosine(fa: np.ndarray, fb: np.ndarray) -> float:
    """Task2Vec's normalised cosine distance between two diagonal Fishers."""
    s = fa + fb
    s[s == 0] = 1.0
    a, b = fa / s, fb / s
    return float(1.0 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--max-samples", type=int, default=None)
    ap.add_argument("--no-pair", action="store_true")
    ap.add_argument("--exclude-test", action="store_true", help="keep every task's test images out of the body")
    args = ap.parse_args()
    t_start = time.perf_counter()
    log = lambda msg: print(f"[{time.perf_counter() - t_start:7.1f}s] {msg}", flush=True)  # noqa: E731
    torch.manual_seed(0)
    cfg = config(args.seed)
    tasks = build_all(cfg)
    x, y, classes = broad_task([get_source(s, cfg.sources, cfg.data_dir, base_dir=cfg.root).load() for s in SOURCES],
                               [t._test_x for t in tasks] if args.exclude_test else ())
    body = train_shared_body(x, y, classes, seed=cfg.project.seed * 1_000_003 + 424_242, epochs=args.epochs,
                             max_samples=args.max_samples)
    log(f"body: {len(x)} samples, {len(classes)} classes, train acc {body.train_acc:.3f}, {body.seconds:.1f}s")
    t0 = time.perf_counter()
    views = [task_view(body.model, t) for t in tasks]
    head_s = time.perf_counter() - t0
    log(f"heads: {head_s:.1f}s")
    layout = fisher_layout(views[0])

    def fisher(net, t, rows, mode="empirical"):
        gen = torch.Generator().manual_seed(31_337 + 1000 * t.definition.seed)
        return diagonal_fisher(net, t.train_x[rows], t.train_y[rows], mode=mode, generator=gen).numpy()

    n = len(tasks)
    results: dict[str, np.ndarray] = {}

    def put(kind, b, t, dists, size=(N_BASES, n)):
        for var, v in dists.items():
            results.setdefault(f"{kind}|{var}", np.full(size, np.nan))[b, t] = v

    own_s = {}
    for kind, mode, m in (("emb-emp200", "empirical", 200), ("emb-emp1000", "empirical", 1000),
                          ("emb-model200", "model", 200)):
        s0 = time.perf_counter()
        own = [fisher(views[j], t, fisher_sample_index(t, m), mode) for j, t in enumerate(tasks)]
        own_s[kind] = time.perf_counter() - s0
        for b in range(N_BASES):
            for j in range(n):
                if b != j:
                    put(kind, b, j, {**variant_distances(own[b], own[j], layout), "t2v": t2v_cosine(own[b], own[j])})
        log(f"{kind}: own Fishers {own_s[kind]:.1f}s")
        if kind == "emb-emp200":
            own200 = own
    pair_s = 0.0
    if not args.no_pair:
        s0 = time.perf_counter()
        for j, t in enumerate(tasks):
            idx = fisher_sample_index(t, 200)
            for b in range(N_BASES):
                if b != j:
                    put("pair-emp200", b, j, variant_distances(fisher(views[b], t, idx), own200[j], layout))
        pair_s = time.perf_counter() - s0
        log(f"pair-emp200: {pair_s:.1f}s")
    for j in range(N_D1):          # noise floor: heads fitted on the two halves of the train split
        t = tasks[j]
        m = len(t.train_y)
        perm = torch.randperm(m, generator=torch.Generator().manual_seed(5 + j))
        va, vb = task_view(body.model, t, rows=perm[: m // 2]), task_view(body.model, t, rows=perm[m // 2:])
        for kind, mode, size in (("emb-emp200", "empirical", 200), ("emb-model200", "model", 200)):
            idx = fisher_sample_index(t, size)
            fa, fb = fisher(va, t, idx, mode), fisher(vb, t, idx, mode)
            for var, v in {**variant_distances(fa, fb, layout), "t2v": t2v_cosine(fa, fb)}.items():
                results.setdefault(f"noise_half_{kind}|{var}", np.full(N_D1, np.nan))[j] = v
                if kind == "emb-emp200" and var != "t2v":
                    results.setdefault(f"noise_half_pair-emp200|{var}", np.full(N_D1, np.nan))[j] = v
    log("noise floor done")
    results["names"] = np.array([t.definition.name for t in tasks])
    results["groups"] = np.array([t.definition.source for t in tasks])
    results["body_seconds"] = np.array(body.seconds)
    results["body_train_acc"] = np.array(body.train_acc)
    results["head_seconds"] = np.array(head_s)
    results["pair_seconds"] = np.array(pair_s)
    for k, v in own_s.items():
        results[f"own_seconds_{k}"] = np.array(v)
    np.savez_compressed(args.out, **results)
    log("done")


if __name__ == "__main__":
    main()
