"""Shared pieces of the similarity experiments (docs/SIMILARITY.md): the dictionaries D1/D2, held-out targets and
the distance variants (normalisation × which layers) computed from raw diagonal Fishers."""
from __future__ import annotations

import dataclasses
import math
import os
import sys
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

SKETCHES = ("circle", "square", "triangle", "star", "moon")
D1 = [TaskDef(name=f"mnist-{k}", source="mnist-5k", positive=(str(k),)) for k in range(5)] + \
     [TaskDef(name=f"sketch-{s}", source="sketches", positive=(s,)) for s in SKETCHES]
D2_EXTRA = [TaskDef(name=f"uci-{k}", source="uci-digits", positive=(str(k),)) for k in range(5, 10)]
TARGETS = [TaskDef(name="mnist-7", source="mnist-5k", positive=("7",)),
           TaskDef(name="uci-3", source="uci-digits", positive=("3",), test_fraction=0.3, val_fraction=0.2)]
ALL = D1 + D2_EXTRA + TARGETS           # matrix columns; rows are the 15 bases D1 + D2_EXTRA
N_D1, N_BASES = len(D1), len(D1) + len(D2_EXTRA)

NORMS = ("global", "layer", "none")
LAYER_SETS = {"all": None, "no-first": ("body.0", "body.1"), "last": ("body.0", "body.1", "body.4", "body.5")}


def config(seed: int = 0):
    cfg = load_config(str(ROOT / "tanas.toml"))
    return dataclasses.replace(cfg, project=dataclasses.replace(cfg.project, seed=seed))


def build_all(cfg) -> list:
    cache = {}
    out = []
    for t in ALL:
        if t.source not in cache:
            cache[t.source] = get_source(t.source, cfg.sources, cfg.data_dir, base_dir=cfg.root)
        out.append(build_task(t, cache[t.source]))
    return out


def module_blocks(layout: list[tuple[str, int]]) -> list[tuple[str, slice]]:
    """Contiguous slices of the Fisher vector per module (conv or batch-norm layer)."""
    out: list[tuple[str, slice]] = []
    start = 0
    for name, n in layout:
        mod = name.rsplit(".", 1)[0]
        if out and out[-1][0] == mod:
            out[-1] = (mod, slice(out[-1][1].start, start + n))
        else:
            out.append((mod, slice(start, start + n)))
        start += n
    return out


def _normalise(f: np.ndarray, blocks, norm: str) -> np.ndarray:
    if norm == "global":
        return f / max(f.sum(), 1e-30)
    if norm == "layer":
        parts = [f[s] / max(f[s].sum(), 1e-30) / len(blocks) for _, s in blocks]
        return np.concatenate(parts)
    if norm == "none":
        return f
    raise ValueError(norm)


def variant_distances(f_bt, f_tt, layout) -> dict[str, float]:
    """{"<norm>/<layers>": d} for every normalisation × layer set (Hellinger form of METHOD 3a)."""
    fb = np.asarray(f_bt, dtype=np.float64)
    ft = np.asarray(f_tt, dtype=np.float64)
    blocks = module_blocks(layout)
    out = {}
    for lname, drop in LAYER_SETS.items():
        kept = [(m, s) for m, s in blocks if drop is None or m not in drop]
        idx = np.concatenate([np.arange(s.start, s.stop) for _, s in kept])
        rel = []
        pos = 0
        for m, s in kept:
            rel.append((m, slice(pos, pos + s.stop - s.start)))
            pos += s.stop - s.start
        a, b = fb[idx], ft[idx]
        for norm in NORMS:
            p, q = _normalise(a, rel, norm), _normalise(b, rel, norm)
            out[f"{norm}/{lname}"] = math.sqrt(0.5) * float(np.linalg.norm(np.sqrt(p) - np.sqrt(q)))
    return out
