"""Acceptance figures of issue 14 (docs/SIMILARITY.md): does the task distance find related tasks?

Over global seeds (default 0 1 2), embedded data only:
  D1  mnist-5k "is k" (k = 0-4) + the five sketches "is s"            (the default dictionary)
  D2  D1 + uci-digits "is k" (k = 5-9)                                (three sources)
  D3  D1 rebuilt from multi-class tasks: per source, 3-way tasks over the first five classes, (k, k+1, k+2) mod 5
Held-out targets: mnist-5k "is 7" (D1, D2), uci-digits "is 3" (D2), mnist-5k "5|6|7" (D3).

Distances:
  fisher    the default of tanas.toml: one shared body per seed (every class of the three sources, the tasks' test
            images left out) and each task's own Fisher of the body in the form the config names (fisher_form:
            "domain", the default: head-free, label-free; "embedding": through a fitted head), Hellinger
  transfer  the transform network's best variant of the research (docs/SIMILARITY.md): 1 - R^2 of the unpruned
            N_t mapping A's probe features onto B's (per-task probes as the dictionary trains them). Run on D1 and D3.
Noise floor (fisher): the two halves of a task's train split (domain: their inputs; embedding: heads fitted on
them), Fisher as above; against the smallest between-group distance.

Each seed's work is cached in --cache (one npz per seed and stage), so seeds can run as separate processes:
    OMP_NUM_THREADS=1 python benchmarks/bench_similarity.py --seeds 0 --compute-only &   (and 1, 2)
    OMP_NUM_THREADS=1 python benchmarks/bench_similarity.py                              # report (computes what is missing)
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

from engine.config import load_config  # noqa: E402
from engine.data import get_source  # noqa: E402
from engine.data.tasks import TaskDef, build_task  # noqa: E402
from engine.similarity import quality as sq  # noqa: E402
from engine.similarity.distance import fisher_distance  # noqa: E402
from engine.similarity.fisher import feature_fisher, fisher_samples  # noqa: E402
from engine.similarity.measures import own_fisher_fn  # noqa: E402
from engine.similarity.probe import train_probe  # noqa: E402
from engine.similarity.shared_probe import broad_task, task_view, train_shared_body  # noqa: E402
from engine.similarity.transfer import (compute_pair_features, standardize, train_epochs,  # noqa: E402
                                        transform_network, _slice_source)

SKETCHES = ("circle", "square", "triangle", "star", "moon")
D1 = [TaskDef(name=f"mnist-{k}", source="mnist-5k", positive=(str(k),)) for k in range(5)] + \
     [TaskDef(name=f"sketch-{s}", source="sketches", positive=(s,)) for s in SKETCHES]
D2_EXTRA = [TaskDef(name=f"uci-{k}", source="uci-digits", positive=(str(k),)) for k in range(5, 10)]
D3 = [TaskDef(name=f"mnist-{k}{(k + 1) % 5}{(k + 2) % 5}", source="mnist-5k",
              classes=(str(k), str((k + 1) % 5), str((k + 2) % 5))) for k in range(5)] + \
     [TaskDef(name=f"sketch-{k}", source="sketches", classes=(SKETCHES[k], SKETCHES[(k + 1) % 5],
                                                              SKETCHES[(k + 2) % 5])) for k in range(5)]
TARGETS = {"mnist-7": TaskDef(name="mnist-7", source="mnist-5k", positive=("7",)),
           "uci-3": TaskDef(name="uci-3", source="uci-digits", positive=("3",), test_fraction=0.3, val_fraction=0.2),
           "mnist-567": TaskDef(name="mnist-567", source="mnist-5k", classes=("5", "6", "7"))}
ALL = D1 + D2_EXTRA + D3 + list(TARGETS.values())
INDEX = {t.name: i for i, t in enumerate(ALL)}
DICTS = {"D1": [t.name for t in D1], "D2": [t.name for t in D1 + D2_EXTRA], "D3": [t.name for t in D3]}
HELD_OUT = {"D1": ["mnist-7"], "D2": ["mnist-7", "uci-3"], "D3": ["mnist-567"]}
FLOOR_TASKS = [t.name for t in D1 + D3]
TRANSFER_TASKS = [t.name for t in D1 + D3] + ["mnist-7", "mnist-567"]
BODY_SOURCES = ("mnist-5k", "uci-digits", "sketches")
PERMUTATIONS = 1000

# The bars
BAR_HIT, BAR_CONTRAST, BAR_P, BAR_R = 0.9, 1.0, 0.01, 0.7


def config(seed: int):
    cfg = load_config(str(ROOT / "tanas.toml"))
    return dataclasses.replace(cfg, project=dataclasses.replace(cfg.project, seed=seed))


def build(cfg, names):
    sources = {}
    out = {}
    for name in names:
        t = ALL[INDEX[name]]
        if t.source not in sources:
            sources[t.source] = get_source(t.source, cfg.sources, cfg.data_dir, base_dir=cfg.root)
        out[name] = build_task(t, sources[t.source])
    return out


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------------- computing

def fisher_stage(seed: int, path: Path) -> None:
    """The default Fisher distance (shared body, the config's form) for every task of ALL, plus the noise floor."""
    cfg = config(seed)
    d = cfg.dictionary
    start = time.perf_counter()
    tasks = build(cfg, [t.name for t in ALL])
    x, y, classes = broad_task([get_source(s, cfg.sources, cfg.data_dir, base_dir=cfg.root).load()
                                for s in BODY_SOURCES], [t._test_x for t in tasks.values()])
    # the seed SharedBodies uses for seed index 0 of a dictionary built under this global seed
    body = train_shared_body(x, y, classes, arch=d.probe, seed=seed * 1_000_003 + 424_242, epochs=d.shared_epochs,
                             lr=d.lr, batch_size=d.batch_size)
    log(f"seed {seed}: body {len(x)} images, {len(classes)} classes, {body.seconds:.0f}s")

    def own_fisher(net, task):            # what the dictionary stores as the task's own Fisher
        return own_fisher_fn(d)(net, fisher_samples(task, d.fisher_samples), 0, d)

    fishers = [own_fisher(task_view(body.model, tasks[t.name]), tasks[t.name]) for t in ALL]
    n = len(ALL)
    matrix = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            matrix[i, j] = matrix[j, i] = fisher_distance(fishers[i], fishers[j])
    log(f"seed {seed}: {n} own Fishers and distances")
    floor = []
    for k, name in enumerate(FLOOR_TASKS):   # as `Dictionary.noise_floor` measures it
        task = tasks[name]
        m = len(task.train_y)
        perm = torch.randperm(m, generator=torch.Generator().manual_seed(5 + k))
        halves = [perm[: m // 2], perm[m // 2:]]
        if d.fisher_form == "domain":      # label-free: the two halves' own inputs
            view = task_view(body.model, task)
            pair = [feature_fisher(view, task.train_x[h[:d.fisher_samples]], generator=torch.Generator().manual_seed(31_337))
                    for h in halves]
        else:                              # heads fitted on the two halves
            pair = [own_fisher(task_view(body.model, task, rows=h), task) for h in halves]
        floor.append(fisher_distance(*pair))
    log(f"seed {seed}: noise floor of {len(floor)} tasks")
    np.savez_compressed(path, matrix=matrix, floor=np.array(floor), seconds=np.array(time.perf_counter() - start),
                        names=np.array([t.name for t in ALL]))


def r2(pred: torch.Tensor, target: torch.Tensor) -> float:
    ss_res = ((pred - target) ** 2).sum()
    ss_tot = ((target - target.mean(0, keepdim=True)) ** 2).sum().clamp_min(1e-12)
    return float(1.0 - ss_res / ss_tot)


def transfer_stage(seed: int, path: Path) -> None:
    """1 - R^2 of the unpruned transform network, per-task probes: D3 (+ mnist-567) first, then D1 (+ mnist-7).

    The matrix is saved after each block, so a run cut short keeps the blocks it finished (NaN elsewhere)."""
    cfg = config(seed)
    tc = cfg.transfer
    start = time.perf_counter()
    tasks = build(cfg, TRANSFER_TASKS)
    n = len(ALL)
    matrix = np.full((n, n), np.nan)
    probes = {}
    for names in (DICTS["D3"] + ["mnist-567"], DICTS["D1"] + ["mnist-7"]):
        for name in names:
            probes[name] = train_probe(tasks[name], cfg.dictionary, seed=seed * 7919 + INDEX[name]).model.eval()
        log(f"seed {seed}: probes of {names[0]}.. {time.perf_counter() - start:.0f}s")
        for b_name in names:                       # target (column) b, base a: how well A's features give B's
            task_b = tasks[b_name]
            for a_name in names:
                if a_name == b_name:
                    continue
                feats = compute_pair_features(probes[a_name], probes[b_name], task_b, tc.max_samples,
                                              device=torch.device("cpu"), seed=seed)
                train_a, val_a = standardize(feats.train_a, feats.val_a)
                train_b, val_b = standardize(feats.train_b, feats.val_b)
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed)
                    net = transform_network(train_a.shape[1], train_b.shape[1])
                opt = torch.optim.Adam(net.parameters(), lr=tc.lr)
                train_epochs(net, opt, _slice_source(train_a, train_b), train_a.shape[0], tc.epochs, tc.batch_size,
                             torch.Generator().manual_seed(seed))
                net.eval()
                with torch.no_grad():
                    matrix[INDEX[a_name], INDEX[b_name]] = 1.0 - r2(net(val_a), val_b)
        log(f"seed {seed}: transfer block {names[0]}.. done, {time.perf_counter() - start:.0f}s")
        np.savez_compressed(path, matrix=matrix, seconds=np.array(time.perf_counter() - start),
                            names=np.array([t.name for t in ALL]))


# ---------------------------------------------------------------------------------------------------- reporting

def block(matrix: np.ndarray, rows: list[str], cols: list[str]) -> np.ndarray:
    return matrix[np.ix_([INDEX[r] for r in rows], [INDEX[c] for c in cols])]


def group_of(name: str) -> str:
    return ALL[INDEX[name]].source


def mark(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report(method: str, mats: dict[int, np.ndarray], floors: dict[int, np.ndarray] | None, dicts: list[str]) -> None:
    all_seeds = sorted(mats)
    print(f"\n== {method}: seeds {all_seeds}")
    for dname in dicts:
        seeds = all_seeds
        names = DICTS[dname]
        groups = [group_of(n) for n in names]
        # query rows: d[q, c] = d(c, q) (the store's value.T); the Fisher matrix is symmetric, transfer is not
        per = {s: block(mats[s], names, names).T for s in seeds}
        complete = [s for s in seeds if np.isfinite(per[s][~np.eye(len(names), dtype=bool)]).all()]
        if len(complete) < len(seeds):
            print(f"{dname}: computed for seeds {complete} only (the run was cut short)")
        if not complete:
            continue
        per = {s: per[s] for s in complete}
        seeds = complete
        hits, cons, ps = [], [], []
        for s in seeds:
            h, _, _ = sq.hit_rate(per[s], groups)
            c = sq.contrast(per[s], groups, permutations=PERMUTATIONS, seed=0)
            hits.append(h)
            cons.append(c.contrast)
            ps.append(c.p_value)
        print(f"{dname} ({len(names)} tasks, groups {sorted(set(groups))})")
        print(f"  hit rate per seed {', '.join(f'{h:.2f}' for h in hits)}; mean {np.mean(hits):.2f}, "
              f"worst {min(hits):.2f}  (bar >= {BAR_HIT} in every seed: {mark(min(hits) >= BAR_HIT)})")
        print(f"  contrast per seed {', '.join(f'{c:.2f}' for c in cons)}; p {', '.join(f'{p:.3f}' for p in ps)}; "
              f"mean {np.mean(cons):.2f}, max p {max(ps):.3f}  (bar >= {BAR_CONTRAST} with p < {BAR_P} in every seed: "
              f"{mark(min(cons) >= BAR_CONTRAST and max(ps) < BAR_P)})")
        if len(seeds) >= 2:
            stab = sq.seed_stability([per[s] for s in seeds])
            print(f"  seed r {stab.r_mean:.2f} (pairs {', '.join(f'{r:.2f}' for r in stab.r_pairs)}); nearest "
                  f"unchanged across seeds {stab.nearest_unchanged:.2f}  (bar r >= {BAR_R}: {mark(stab.r_mean >= BAR_R)})")
            mean = np.mean([per[s] for s in seeds], axis=0)
            h, _, _ = sq.hit_rate(mean, groups)
            c = sq.contrast(mean, groups, permutations=PERMUTATIONS, seed=0)
            print(f"  matrix averaged over the seeds: hit {h:.2f}, contrast {c.contrast:.2f} (p {c.p_value:.3f})")
        if floors:
            rows = [FLOOR_TASKS.index(n) for n in names if n in FLOOR_TASKS]
            verdicts = []
            for s in seeds:
                if s not in floors or not rows:
                    continue
                nf = sq.noise_floor(floors[s][rows], per[s], groups)
                verdicts.append(nf.below)
                print(f"  noise floor seed {s}: mean {nf.floor_mean:.3f} max {nf.floor_max:.3f} vs smallest "
                      f"between-group {nf.min_between:.3f}  ({'below' if nf.below else 'NOT below'})")
            if verdicts:
                print(f"  noise floor below the smallest between-group distance in {sum(verdicts)}/{len(verdicts)} "
                      f"seeds  (bar: every seed: {mark(all(verdicts))})")
        for target in HELD_OUT[dname]:
            same = 0
            found = []
            for s in seeds:
                col = block(mats[s], names, [target])[:, 0]
                nearest = names[int(np.nanargmin(col))]
                found.append(nearest)
                same += group_of(nearest) == group_of(target)
            print(f"  held-out {target}: same-source nearest in {same}/{len(seeds)} seeds ({', '.join(found)})  "
                  f"(bar {len(seeds)}/{len(seeds)}: {mark(same == len(seeds))})")


def seconds(runs: dict) -> str:
    return ", ".join(f"{float(z['seconds']):.0f}" for z in runs.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--cache", default="/tmp/bench_similarity")
    ap.add_argument("--no-transfer", action="store_true")
    ap.add_argument("--compute-only", action="store_true")
    ap.add_argument("--stage", choices=("fisher", "transfer"), help="compute only this stage")
    ap.add_argument("--report-only", action="store_true", help="compute nothing: report what the cache holds")
    args = ap.parse_args()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    wall = time.perf_counter()
    stages = [("fisher", fisher_stage)] + ([] if args.no_transfer else [("transfer", transfer_stage)])
    if args.stage:
        stages = [st for st in stages if st[0] == args.stage]
    for s in [] if args.report_only else args.seeds:
        for name, fn in stages:
            path = cache / f"{name}_seed{s}.npz"
            if not path.exists():
                log(f"computing {name}, seed {s}")
                fn(s, path)
    if args.compute_only:
        log(f"done in {time.perf_counter() - wall:.0f}s")
        return
    fisher = {s: np.load(cache / f"fisher_seed{s}.npz") for s in args.seeds if (cache / f"fisher_seed{s}.npz").exists()}
    print(f"\ncompute seconds per seed (fisher): {seconds(fisher)}")
    report(f"fisher (default: shared body, {config(0).dictionary.fisher_form} form, "
           f"{config(0).dictionary.fisher_samples} samples)",
           {s: z["matrix"] for s, z in fisher.items()}, {s: z["floor"] for s, z in fisher.items()}, ["D1", "D2", "D3"])
    if not args.no_transfer:
        tr = {s: np.load(cache / f"transfer_seed{s}.npz") for s in args.seeds
              if (cache / f"transfer_seed{s}.npz").exists()}
        print(f"\ncompute seconds per seed (transfer): {seconds(tr)}")
        report("transfer (1 - R^2 of the unpruned transform network; noise floor not measured)",
               {s: z["matrix"] for s, z in tr.items()}, None, ["D1", "D3"])
    print(f"\nwall {time.perf_counter() - wall:.0f}s")


if __name__ == "__main__":
    main()
