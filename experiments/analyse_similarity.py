"""Quality table (engine/similarity/quality.py) over the seeds' npz files written by fisher_per_task.py and
fisher_shared_body.py: per variant × dictionary, hit rate, contrast + p, seed r, nearest unchanged, noise floor vs the
smallest between-group distance, held-out targets' nearest source per seed.

    python experiments/analyse_similarity.py /tmp/sim/pt{0,1,2}.npz [--prefix per-task] [--keys emp200|global/all ...]
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.similarity import quality as sq  # noqa: E402

N_D1, N_D2 = 10, 15
MNIST7, UCI3 = 15, 16


def block(m: np.ndarray, n: int) -> np.ndarray:
    """Query-major n × n block: row t holds d(b, t) over bases b (the store's column, transposed)."""
    return m[:n, :n].T.copy()


def target_source(m: np.ndarray, col: int, n: int, groups) -> str:
    column = m[:n, col]
    return str(groups[int(np.nanargmin(column))])


def across_seed_floor(datas, var: str, n: int):
    """Mean / max distance between the same task's own Fishers under different global seeds (other initialisation)."""
    if len(datas) < 2 or any("own_emp200" not in d.files for d in datas):
        return None
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from sim_common import variant_distances
    from engine.similarity.fisher import fisher_layout
    from engine.similarity.probe import make_probe

    layout = fisher_layout(make_probe("cnn", 2))
    vals = [variant_distances(a["own_emp200"][j], b["own_emp200"][j], layout)[var]
            for i, a in enumerate(datas) for b in datas[i + 1:] for j in range(n)]
    return float(np.mean(vals)), float(np.max(vals))


def evaluate(files, key, perms=2000):
    datas = [np.load(f) for f in files]
    groups = datas[0]["groups"]
    mats = [d[key] for d in datas]
    base = key.split("|")[0]
    var = key.split("|")[1]
    rows = []
    for dname, n in (("D1", N_D1), ("D2", N_D2)):
        if any(m.shape[0] < n for m in mats):
            continue
        blocks = [block(m, n) for m in mats]
        if any(np.isnan(b[~np.eye(n, dtype=bool)]).any() for b in blocks):
            continue
        g = groups[:n]
        hits = [sq.hit_rate(b, g)[0] for b in blocks]
        cons = [sq.contrast(b, g, perms, seed=0) for b in blocks]
        mean = np.mean(blocks, axis=0)
        mean_hit = sq.hit_rate(mean, g)[0]
        mean_con = sq.contrast(mean, g, perms, seed=0)
        stab = sq.seed_stability(blocks) if len(blocks) > 1 else None
        floor = None
        names = [f"noise_half_{base}|{var}"] + ([f"noise_order|{var}", f"noise_half|{var}"] if base == "emp200" else [])
        for d in datas:
            for nk in names:
                if nk in d.files:
                    floor = d[nk] if floor is None else np.concatenate([floor, d[nk]])
        seed_floor = across_seed_floor(datas, var, n) if base == "emp200" else None
        nf = sq.noise_floor(floor, blocks[0], g) if floor is not None else None
        held = []
        for col, src_n in ((MNIST7, n), (UCI3, n)):
            if dname == "D1" and col == UCI3:
                continue
            if any(np.isnan(m[:n, col]).any() for m in mats):
                continue
            want = str(groups[col])
            got = [target_source(m, col, n, groups) for m in mats]
            held.append(f"{'m7' if col == MNIST7 else 'u3'} {sum(x == want for x in got)}/{len(got)}")
        rows.append({
            "key": key, "dict": dname, "hit": np.mean(hits), "hit_min": np.min(hits),
            "contrast": np.mean([c.contrast for c in cons]), "p_max": max(c.p_value for c in cons),
            "mean_hit": mean_hit, "mean_contrast": mean_con.contrast, "mean_p": mean_con.p_value,
            "r": stab.r_mean if stab else math.nan, "unchanged": stab.nearest_unchanged if stab else math.nan,
            "floor_max": nf.floor_max if nf else math.nan, "floor_mean": nf.floor_mean if nf else math.nan,
            "min_between": nf.min_between if nf else float(np.min(blocks[0][~np.equal.outer(g, g)])),
            "above": nf.between_above_floor if nf else math.nan, "held": ", ".join(held),
            "seed_floor": seed_floor,
        })
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--prefix", default="")
    ap.add_argument("--keys", nargs="*")
    ap.add_argument("--perms", type=int, default=2000)
    args = ap.parse_args()
    first = np.load(args.files[0])
    keys = args.keys or sorted(k for k in first.files if "|" in k and not k.startswith("noise"))
    print("| variant | dict | hit (min) | contrast | p max | r seeds | nearest same | 3-seed mean: hit / contrast (p) "
          "| floor mean/max | min between | between > floor | seed floor mean/max | held-out same-source |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for key in keys:
        for r in evaluate(args.files, key, args.perms):
            print(f"| {args.prefix}{r['key']} | {r['dict']} | {r['hit']:.2f} ({r['hit_min']:.2f}) | "
                  f"{r['contrast']:.2f} | {r['p_max']:.3f} | {r['r']:.2f} | {r['unchanged']:.2f} | "
                  f"{r['mean_hit']:.2f} / {r['mean_contrast']:.2f} ({r['mean_p']:.3f}) | "
                  f"{r['floor_mean']:.3f}/{r['floor_max']:.3f} | {r['min_between']:.3f} | {r['above']:.2f} | " +
                  (f"{r['seed_floor'][0]:.3f}/{r['seed_floor'][1]:.3f} | " if r['seed_floor'] else "- | ") +
                  f"{r['held']} |", flush=True)


if __name__ == "__main__":
    main()
