"""Transform-network distance with the poster's adequacy ("transform N_A's features into N_B's"): N_t is adequate
when the R² of its output against N_B's features on B's val split is ≥ 1 − ε (today's test: N_B's head on N_t's
output reaches val accuracy ≥ 1 − ε). Runs on the per-task probes saved by fisher_per_task.py for one seed, D1 pairs
plus the mnist-7 column. Also records 1 − R² of the unpruned N_t as a continuous distance.

    OMP_NUM_THREADS=1 python experiments/transfer_r2.py --seed 1 --probes /tmp/sim/pt1_probes.pt --out /tmp/sim/tr1.npz
"""
from __future__ import annotations

import argparse
import dataclasses
import time

from sim_common import ALL, N_D1, build_all, config  # noqa: I001

import numpy as np
import torch

from engine.similarity.probe import make_probe
from engine.similarity.transfer import compute_pair_features, prune_search, standardize, _slice_source


def r2(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Pooled R² over every feature dimension."""
    ss_res = ((pred - target) ** 2).sum()
    ss_tot = ((target - target.mean(0, keepdim=True)) ** 2).sum().clamp_min(1e-12)
    return float(1.0 - ss_res / ss_tot)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--probes", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--epsilon", type=float, default=None, help="default: [transfer] epsilon")
    args = ap.parse_args()
    t_start = time.perf_counter()
    cfg = config(args.seed)
    tcfg = cfg.transfer if args.epsilon is None else dataclasses.replace(cfg.transfer, epsilon=args.epsilon)
    tasks = build_all(cfg)
    states = torch.load(args.probes)
    probes = []
    for t in tasks:
        p = make_probe("cnn", t.num_classes)
        p.load_state_dict(states[t.definition.name])
        probes.append(p.eval())
    cols = list(range(N_D1)) + [ALL.index(next(x for x in ALL if x.name == "mnist-7"))]
    n = len(tasks)
    dist = np.full((N_D1, n), np.nan)
    cont = np.full((N_D1, n), np.nan)
    for j in cols:
        t0 = time.perf_counter()
        for b in range(N_D1):
            if b == j:
                continue
            feats = compute_pair_features(probes[b], probes[j], tasks[j], tcfg.max_samples, device=torch.device("cpu"),
                                          seed=args.seed)
            train_a, val_a = standardize(feats.train_a, feats.val_a)
            train_b, val_b = standardize(feats.train_b, feats.val_b)
            result = prune_search(_slice_source(train_a, train_b), train_a.shape[0], train_a.shape[1],
                                  train_b.shape[1], lambda net: r2(net(val_a), val_b), tcfg,
                                  device=torch.device("cpu"), seed=args.seed)
            dist[b, j] = result.distance
            cont[b, j] = 1.0 - result.curve[0][1]
        print(f"[{time.perf_counter() - t_start:7.1f}s] column {tasks[j].definition.name} "
              f"({time.perf_counter() - t0:.1f}s)", flush=True)
    np.savez_compressed(args.out, **{"r2-pruned|transfer": dist, "r2-unpruned|transfer": cont,
                                     "names": np.array([t.definition.name for t in tasks]),
                                     "groups": np.array([t.definition.source for t in tasks])})


if __name__ == "__main__":
    main()
