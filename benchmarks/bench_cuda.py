"""The CUDA fast paths (bf16 autocast + channels-last) against plain fp32 on the same GPU, in one run: a probe
training, a Fisher pass and a FUSE round, each timed both ways, with the results checked for agreement.

    .venv/bin/python benchmarks/bench_cuda.py [--samples 4096] [--fisher-samples 1000]

Tolerances (bf16 keeps 8 mantissa bits, so results agree to about 1e-2, not bit for bit):
- probe:  |val acc(bf16) - val acc(fp32)| <= 0.05, both probes from the same seed
- Fisher: the Fisher distance between one probe's Fisher computed both ways <= 0.05 (distances are in [0, 1];
          two different tasks are typically 0.1 - 0.6 apart)
- FUSE:   |test error(bf16) - test error(fp32)| <= 5 percentage points for one round from the same seed
Prints throughput ratios fp32 time / fast time (> 1: the fast path is faster). Without a CUDA device it says so and
exits (status 0: nothing to measure on this machine).
"""
from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.config import DictionarySection, SearchSection, SpaceSection  # noqa: E402
from engine.data.tasks import TaskData, TaskDef  # noqa: E402
from engine.runtime.device import cuda_fast_paths, prepare_model  # noqa: E402

TOL = {"probe_acc": 0.05, "fisher_distance": 0.05, "fuse_test_error": 5.0}


def synthetic(n: int, device: torch.device) -> TaskData:
    """Three template classes plus noise, uint8 28x28, split 70/15/15."""
    gen = torch.Generator().manual_seed(0)
    templates = (torch.rand(3, 1, 28, 28, generator=gen) > 0.6).float() * 200
    y = torch.randint(0, 3, (n,), generator=gen)
    x = (templates[y] + torch.rand(n, 1, 28, 28, generator=gen) * 55).to(torch.uint8)
    a, b = int(n * 0.7), int(n * 0.85)
    task = TaskData(id="bench", definition=TaskDef(name="bench", source="synthetic", classes=("0", "1", "2")),
                    class_names=("0", "1", "2"), num_classes=3, train_x=x[:a], train_y=y[:a], val_x=x[a:b],
                    val_y=y[a:b], _test_x=x[b:], _test_y=y[b:])
    return task.to(device)


def timed(fn):
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    sync()
    t0 = time.perf_counter()
    out = fn()
    sync()
    return out, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=4096)
    ap.add_argument("--fisher-samples", type=int, default=1000)
    ap.add_argument("--cpu-dry-run", action="store_true",
                    help="run the script's steps on the CPU (both modes are then the same fp32 path): checks the script")
    args = ap.parse_args()
    if not torch.cuda.is_available() and not args.cpu_dry_run:
        print("no CUDA device: torch.cuda.is_available() is False on this machine; bench_cuda.py measures the "
              "bf16 / channels-last paths and needs a GPU")
        return 0
    from engine.search.fuse import Fuse
    from engine.similarity.distance import fisher_distance
    from engine.similarity.fisher import diagonal_fisher
    from engine.similarity.probe import train_probe
    from engine.space.spaces import standard_space
    from store import Store

    device = torch.device("cpu" if args.cpu_dry_run else "cuda")
    print(f"device {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu (dry run)'}, "
          f"torch {torch.__version__}")
    task = synthetic(args.samples, device)
    dcfg = DictionarySection(max_epochs=3, min_epochs=3, batch_size=128)
    scfg = SearchSection(rounds=1, candidates=4, alternations=2, final_epochs=2, batch_size=128)
    space = standard_space(SpaceSection(channels=(16,), layers=(5,), nodes=(4,)) if not args.cpu_dry_run else
                           SpaceSection(channels=(4,), layers=(3,), nodes=(2,)))
    if args.cpu_dry_run:
        scfg = SearchSection(rounds=1, candidates=2, alternations=1, final_epochs=1, batch_size=128)
    results: dict[str, dict] = {}
    with cuda_fast_paths(False):  # warm-up (CUDA context, cuDNN) and the probe both Fisher passes evaluate
        reference = train_probe(task, dcfg, seed=0, device=device).model
    for label, fast in (("fp32", False), ("bf16+channels-last", True)):
        with cuda_fast_paths(fast):
            probe, t_probe = timed(lambda: train_probe(task, dcfg, seed=1, device=device))
            idx = torch.arange(min(args.fisher_samples, len(task.train_y)), device=device)
            net = prepare_model(copy.deepcopy(reference), device).eval()
            fisher, t_fisher = timed(lambda: diagonal_fisher(net, task.train_x[idx], task.train_y[idx]))
            with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "s.zarr", "w", create=True) as st:
                fuse, t_fuse = timed(lambda: Fuse(task, space, scfg, store=st, run_id="b", device=device,
                                                  seed=0).run())
        results[label] = {"probe": probe, "t_probe": t_probe, "fisher": fisher, "t_fisher": t_fisher,
                          "fuse": fuse, "t_fuse": t_fuse}
        print(f"{label:20s} probe {t_probe:.2f} s (val acc {probe.val_acc:.4f}), Fisher pass {t_fisher:.3f} s, "
              f"FUSE round {t_fuse:.2f} s (test error {fuse.test_error:.2f} %)")
    a, b = results["fp32"], results["bf16+channels-last"]
    checks = {
        "probe_acc": abs(a["probe"].val_acc - b["probe"].val_acc),
        "fisher_distance": fisher_distance(a["fisher"], b["fisher"]),
        "fuse_test_error": abs(a["fuse"].test_error - b["fuse"].test_error),
    }
    ok = True
    for key, value in checks.items():
        good = value <= TOL[key]
        ok &= good
        print(f"agreement {key}: {value:.4g} (tolerance {TOL[key]}) {'ok' if good else 'EXCEEDED'}")
    for key in ("probe", "fisher", "fuse"):
        print(f"throughput ratio {key}: fp32 / fast = {a['t_' + key] / b['t_' + key]:.2f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
