"""Why the shared-body Fisher misses on binary tasks, and what fixes it (docs/SIMILARITY.md, issue 14, second round).

Hypothesis: a linear head on good features fits a balanced one-vs-rest task almost perfectly, so the empirical
Fisher's per-sample weight (1 - p_y)² vanishes on all but a handful of boundary samples: the Fisher, and the distance,
are decided by those few samples and move with the body's seed. Remedies computed here from the same per-sample
logit Jacobians J_i (one vmap per sample batch; the tasks, body and heads of benchmarks/bench_similarity.py):

  emp-T1     today: g_i = (e_y - p) J_i                         (empirical Fisher)
  emp-T4     the head's logits divided by T = 4 (softer p)
  uniform    T -> inf: every sample weighs the same, g_i = (e_y - 1/K) J_i  (the Fisher at a uniform prediction)
each × normalisation (global unit trace | per layer) × aggregation (per weight | per filter, summed per output channel).

    OMP_NUM_THREADS=1 python experiments/fisher_variants.py --seed 0 --out /tmp/fv/s0.npz [--epochs 3]
    python experiments/fisher_variants.py --report /tmp/fv/s0.npz /tmp/fv/s1.npz /tmp/fv/s2.npz
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_similarity as bs  # noqa: E402  (sets one thread, the repository on sys.path)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.func import functional_call, jacrev, vmap  # noqa: E402

from engine.data import get_source  # noqa: E402
from engine.data.tasks import to_input  # noqa: E402
from engine.similarity import quality as sq  # noqa: E402
from engine.similarity.dictionary import fisher_sample_index  # noqa: E402
from engine.runtime.batchnorm import recalibrate_batchnorm  # noqa: E402
from engine.similarity.fisher import diagonal_fisher  # noqa: E402
from engine.similarity.probe import make_probe  # noqa: E402
from engine.similarity.shared_probe import SharedBody, broad_task, task_view, train_shared_body  # noqa: E402

TEMPS = {"emp-T1": 1.0, "emp-T4": 4.0, "uniform": math.inf}


def fishers(view, task, samples: int) -> dict[str, dict[str, np.ndarray]]:
    """{kind: {param name: diagonal}} from one pass of per-sample logit Jacobians over the body's parameters."""
    idx = fisher_sample_index(task, samples)
    x, y = task.train_x[idx], task.train_y[idx]
    params = {n: p.detach() for n, p in view.named_parameters() if not n.startswith("head")}
    fixed = {n: p.detach() for n, p in view.named_parameters() if n.startswith("head")}
    fixed.update({n: b for n, b in view.named_buffers()})

    def logits(theta, xi):
        return functional_call(view, {**fixed, **theta}, (xi[None],))[0]

    jac = vmap(jacrev(logits), in_dims=(None, 0))
    sums = {k: {n: torch.zeros_like(p) for n, p in params.items()} for k in TEMPS}
    with torch.no_grad():
        z_all = view(to_input(x, "cpu"))
    k_cls = z_all.shape[1]
    for s in range(0, len(x), 64):
        xb, yb, zb = x[s:s + 64], y[s:s + 64], z_all[s:s + 64]
        j = jac(params, to_input(xb, "cpu"))                     # {name: [B, K, *shape]}
        onehot = torch.nn.functional.one_hot(yb, k_cls).float()
        for kind, temp in TEMPS.items():
            if math.isinf(temp):
                w = onehot - 1.0 / k_cls
            else:
                w = (onehot - torch.softmax(zb / temp, 1)) / temp
            for n, jn in j.items():
                g = torch.einsum("bk,bk...->b...", w, jn)
                sums[kind][n] += g.pow(2).sum(0)
    return {k: {n: v.numpy().astype(np.float64) for n, v in d.items()} for k, d in sums.items()}


def embed(f: dict[str, np.ndarray], norm: str, agg: str) -> np.ndarray:
    """A unit-trace (global or per layer) vector from a diagonal, per weight or summed per output channel."""
    parts: dict[str, list[np.ndarray]] = {}
    for name, v in f.items():
        module = name.rsplit(".", 1)[0]
        parts.setdefault(module, []).append(v.reshape(v.shape[0], -1).sum(1) if agg == "filter" else v.reshape(-1))
    blocks = [np.concatenate(p) for p in parts.values()]
    if norm == "layer":
        blocks = [b / max(b.sum(), 1e-30) / len(blocks) for b in blocks]
    out = np.concatenate(blocks)
    return out / max(out.sum(), 1e-30)


def hellinger(p: np.ndarray, q: np.ndarray) -> float:
    return math.sqrt(0.5) * float(np.linalg.norm(np.sqrt(p) - np.sqrt(q)))


KINDS = (*TEMPS, "data", "feat", "mix-emp-T1", "mix-uniform")
LABEL_FREE = ("data", "feat")
VARIANTS = [(k, n, "weight") for k in KINDS for n in ("global", "layer")]


def feature_fisher(model, x: torch.Tensor, seed: int) -> dict[str, np.ndarray]:
    """Label- and head-free: the Fisher of an isotropic Gaussian model of the body's pooled features, i.e. the
    diagonal of E[J^T J] with J = d features / d theta, estimated with one random direction v per sample:
    E_v[(v . J)^2] = diag(J^T J) for v ~ N(0, I)."""
    params = {n: p.detach() for n, p in model.named_parameters() if not n.startswith("head")}
    fixed = {n: b for n, b in model.named_buffers()}
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(len(x), model.head.in_features, generator=gen)

    def proj(theta, xi, vi):
        feats = torch.flatten(model.pool(torch.func.functional_call(model.body, {k[5:]: t for k, t in theta.items()}
                                                                    | {k[5:]: b for k, b in fixed.items()
                                                                       if k.startswith("body.")}, (xi[None],))), 1)
        return (feats[0] * vi).sum()

    per = vmap(torch.func.grad(proj), in_dims=(None, 0, 0))
    sums = {n: torch.zeros_like(p) for n, p in params.items()}
    for s in range(0, len(x), 64):
        g = per(params, to_input(x[s:s + 64], "cpu"), v[s:s + 64])
        for n in sums:
            sums[n] += g[n].pow(2).sum(0)
    return {n: t.numpy().astype(np.float64) for n, t in sums.items()}


def data_fisher(model, x: torch.Tensor, seed: int) -> dict[str, np.ndarray]:
    """Label-free: the body's Fisher under its own broad head's predictive distribution (labels drawn from it)."""
    flat = diagonal_fisher(model, x, None, mode="model", generator=torch.Generator().manual_seed(seed)).numpy()
    out, start = {}, 0
    for name, p in model.named_parameters():
        if name.startswith("head"):
            continue
        out[name] = flat[start:start + p.numel()].astype(np.float64).reshape(p.shape)
        start += p.numel()
    return out


def vector(f: dict, kind: str, norm: str, agg: str) -> np.ndarray:
    if kind.startswith("mix-"):
        return 0.5 * np.concatenate([embed(f["data"], norm, agg), embed(f[kind[4:]], norm, agg)])
    return embed(f[kind], norm, agg)


def compute(seed: int, out: Path, epochs: int, samples: int, label_free_only: bool = False) -> None:
    variants = [v for v in VARIANTS if not label_free_only or v[0] in LABEL_FREE]
    t0 = time.perf_counter()
    cfg = bs.config(seed)
    d = cfg.dictionary
    tasks = bs.build(cfg, [t.name for t in bs.ALL])
    x, y, classes = broad_task([get_source(s, cfg.sources, cfg.data_dir, base_dir=cfg.root).load()
                                for s in bs.BODY_SOURCES], [t._test_x for t in tasks.values()])
    if epochs == 0:          # an untrained body: random filters, batch-norm statistics of the broad data
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed * 1_000_003 + 424_242)
            model = make_probe(d.probe, len(classes))
        recalibrate_batchnorm(model, x)
        body = SharedBody(model.eval(), tuple(classes), 0.0, float("nan"))
    else:
        body = train_shared_body(x, y, classes, arch=d.probe, seed=seed * 1_000_003 + 424_242, epochs=epochs,
                                 lr=d.lr, batch_size=d.batch_size)
    bs.log(f"seed {seed}: body {body.seconds:.0f}s acc {body.train_acc:.3f}")
    def all_fishers(task, rows=None):
        f = {} if label_free_only else fishers(task_view(body.model, task, rows=rows), task, samples)
        idx = fisher_sample_index(task, samples) if rows is None else rows[:samples]
        f["data"] = data_fisher(body.model, task.train_x[idx], 7 + task.definition.seed)
        f["feat"] = feature_fisher(body.model, task.train_x[idx], 11 + task.definition.seed)
        return f

    own = [all_fishers(tasks[t.name]) for t in bs.ALL]
    bs.log(f"seed {seed}: own Fishers {time.perf_counter() - t0:.0f}s")
    n = len(bs.ALL)
    res = {}
    for kind, norm, agg in variants:
        emb = [vector(f, kind, norm, agg) for f in own]
        m = np.zeros((n, n))
        for i in range(n):
            for j in range(i + 1, n):
                m[i, j] = m[j, i] = hellinger(emb[i], emb[j])
        res[f"m|{kind}|{norm}|{agg}"] = m
    floor = {v: [] for v in variants}
    for k, name in enumerate(bs.FLOOR_TASKS):
        task = tasks[name]
        mm = len(task.train_y)
        perm = torch.randperm(mm, generator=torch.Generator().manual_seed(5 + k))
        fa, fb = (all_fishers(task, rows=r) for r in (perm[: mm // 2], perm[mm // 2:]))
        for kind, norm, agg in variants:
            floor[(kind, norm, agg)].append(hellinger(vector(fa, kind, norm, agg), vector(fb, kind, norm, agg)))
    for (kind, norm, agg), v in floor.items():
        res[f"f|{kind}|{norm}|{agg}"] = np.array(v)
    np.savez_compressed(out, seconds=np.array(time.perf_counter() - t0), **res)
    bs.log(f"seed {seed}: done {time.perf_counter() - t0:.0f}s")


def report(paths: list[str]) -> None:
    runs = [np.load(p) for p in paths]
    print("variant | dict | hit per seed | contrast per seed (max p) | seed r | floor below (seeds) | held-out")
    for kind, norm, agg in VARIANTS:
        key = f"{kind}|{norm}|{agg}"
        if f"m|{key}" not in runs[0]:
            continue
        for dname in ("D1", "D2", "D3"):
            names = bs.DICTS[dname]
            groups = [bs.group_of(n) for n in names]
            per = [bs.block(r[f"m|{key}"], names, names) for r in runs]
            hits = [sq.hit_rate(m, groups)[0] for m in per]
            cons = [sq.contrast(m, groups, permutations=1000, seed=0) for m in per]
            r = sq.seed_stability(per).r_mean if len(per) > 1 else float("nan")
            rows = [bs.FLOOR_TASKS.index(n) for n in names if n in bs.FLOOR_TASKS]
            below = sum(sq.noise_floor(run[f"f|{key}"][rows], m, groups).below for run, m in zip(runs, per))
            held = []
            for target in bs.HELD_OUT[dname]:
                same = sum(bs.group_of(names[int(np.argmin(bs.block(run[f"m|{key}"], names, [target])[:, 0]))])
                           == bs.group_of(target) for run in runs)
                held.append(f"{target} {same}/{len(runs)}")
            print(f"{key} | {dname} | {' '.join(f'{h:.2f}' for h in hits)} | "
                  f"{' '.join(f'{c.contrast:.2f}' for c in cons)} ({max(c.p_value for c in cons):.3f}) | {r:.2f} | "
                  f"{below}/{len(runs)} | {', '.join(held)}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int)
    ap.add_argument("--out")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--report", nargs="+")
    ap.add_argument("--label-free-only", action="store_true")
    args = ap.parse_args()
    if args.report:
        report(args.report)
    else:
        compute(args.seed, Path(args.out), args.epochs, args.samples, args.label_free_only)


if __name__ == "__main__":
    main()
