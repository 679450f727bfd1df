"""Per-task probes (today's Fisher distance) under one global seed: every base × column pair, for the Fisher variants
empirical/200 samples (today), empirical/1000, model/200, each under every normalisation × layer set; plus the noise
floor (same task, probes differing only in data order / train half).

    OMP_NUM_THREADS=1 python experiments/fisher_per_task.py --seed 0 --out /tmp/sim/pt0.npz [--big] [--noise]
"""
from __future__ import annotations

import argparse
import dataclasses
import time

from sim_common import ALL, N_BASES, N_D1, build_all, config, variant_distances  # noqa: I001

import numpy as np
import torch

from engine.similarity.dictionary import fisher_sample_index, probe_seed
from engine.similarity.fisher import diagonal_fisher, fisher_layout
from engine.similarity.probe import train_probe


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--big", action="store_true", help="also the empirical Fisher on 1000 samples (D1 block)")
    ap.add_argument("--noise", action="store_true", help="also the same-task noise floor (D1 tasks)")
    args = ap.parse_args()
    t_start = time.perf_counter()
    cfg = config(args.seed)
    d = cfg.dictionary
    tasks = build_all(cfg)
    log = lambda msg: print(f"[{time.perf_counter() - t_start:7.1f}s] {msg}", flush=True)  # noqa: E731

    probes, probe_s = [], 0.0
    for t in tasks:
        r = train_probe(t, d, seed=probe_seed(cfg, t.definition, 0))
        probes.append(r.model)
        probe_s += r.seconds
        log(f"probe {t.definition.name}: val {r.val_acc:.3f} epochs {r.epochs} {r.seconds:.1f}s")
    layout = fisher_layout(probes[0])
    torch.save({t.definition.name: p.state_dict() for t, p in zip(tasks, probes)}, args.out.replace(".npz", "_probes.pt"))

    def fisher(net, t, rows, mode="empirical"):
        gen = torch.Generator().manual_seed(31_337 + 1000 * t.definition.seed)
        return diagonal_fisher(net, t.train_x[rows], t.train_y[rows], mode=mode, generator=gen).numpy()

    idx200 = [fisher_sample_index(t, 200) for t in tasks]
    idx1000 = [fisher_sample_index(t, 1000) for t in tasks]
    n_cols = len(tasks)
    # Columns needing the extra Fisher variants: the D1 block plus the mnist-7 target.
    extra_cols = list(range(N_D1)) + [ALL.index(next(x for x in ALL if x.name == "mnist-7"))]
    results: dict[str, np.ndarray] = {}

    def put(kind, b, t, dists):
        for var, v in dists.items():
            key = f"{kind}|{var}"
            if key not in results:
                results[key] = np.full((N_BASES, n_cols), np.nan)
            results[key][b, t] = v

    own = {}
    fisher_s = {"emp200": 0.0, "emp1000": 0.0, "model200": 0.0}
    for j, t in enumerate(tasks):
        t0 = time.perf_counter()
        own["emp200"] = fisher(probes[j], t, idx200[j])
        results.setdefault("own_emp200", np.zeros((n_cols, len(own["emp200"]))))[j] = own["emp200"]
        extra = j in extra_cols
        if extra:
            own["model200"] = fisher(probes[j], t, idx200[j], "model")
            if args.big:
                own["emp1000"] = fisher(probes[j], t, idx1000[j])
        for b in range(N_BASES):
            if b == j:
                continue
            s0 = time.perf_counter()
            put("emp200", b, j, variant_distances(fisher(probes[b], t, idx200[j]), own["emp200"], layout))
            fisher_s["emp200"] += time.perf_counter() - s0
            if extra:
                s0 = time.perf_counter()
                put("model200", b, j, variant_distances(fisher(probes[b], t, idx200[j], "model"), own["model200"],
                                                        layout))
                fisher_s["model200"] += time.perf_counter() - s0
                if args.big:
                    s0 = time.perf_counter()
                    put("emp1000", b, j, variant_distances(fisher(probes[b], t, idx1000[j]), own["emp1000"], layout))
                    fisher_s["emp1000"] += time.perf_counter() - s0
        log(f"column {t.definition.name} ({time.perf_counter() - t0:.1f}s)")

    if args.noise:
        # Noise floor: same init seed, other data order; and two probes on disjoint train halves.
        for j in range(N_D1):
            t = tasks[j]
            seed = probe_seed(cfg, t.definition, 0)
            other = train_probe(t, d, seed=seed, order_seed=seed + 77_777).model
            n = len(t.train_y)
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(5 + j))
            halves = []
            for h in (perm[: n // 2], perm[n // 2:]):
                ht = dataclasses.replace(t, train_x=t.train_x[h], train_y=t.train_y[h])
                halves.append(train_probe(ht, d, seed=seed).model)
            f_ref = fisher(probes[j], t, idx200[j])
            for kind, (na, nb) in (("noise_order", (other, None)), ("noise_half", tuple(halves))):
                fa = fisher(na, t, idx200[j])
                fb = f_ref if nb is None else fisher(nb, t, idx200[j])
                for var, v in variant_distances(fa, fb, layout).items():
                    results.setdefault(f"{kind}|{var}", np.full(N_D1, np.nan))[j] = v
            log(f"noise floor {t.definition.name}")

    results["names"] = np.array([t.definition.name for t in tasks])
    results["groups"] = np.array([t.definition.source for t in tasks])
    results["probe_seconds"] = np.array(probe_s)
    for k, v in fisher_s.items():
        results[f"fisher_seconds_{k}"] = np.array(v)
    np.savez_compressed(args.out, **results)
    log(f"done: probes {probe_s:.0f}s, fisher {fisher_s}")


if __name__ == "__main__":
    main()
