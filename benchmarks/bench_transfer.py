"""One transform-network distance pair: precomputed probe features vs recomputing them through the probes.

Both paths run the same training, pruning and fine-tuning schedule (`engine.similarity.transfer.prune_search`); they differ
only in where each batch's features come from. The precomputed path is what `transfer_distance` does: the frozen
probes see B's samples once. The naive path runs both probes on every batch of every epoch and re-runs N_A on
B's val split at every level.

    .venv/bin/python benchmarks/bench_transfer.py [--device auto] [--max-samples 1000] [--probe-epochs 20]

Uses the embedded mnist-5k source ("is 0" as A, "is 1" as B) and the default probe; prints both times and the ratio.
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import torch
import torch.nn.functional as F

from engine.config import DictionarySection, TransferSection
from engine.data import get_source
from engine.runtime.device import autocast, device_label, resolve_device
from engine.similarity.probe import train_probe
from engine.data.tasks import TaskDef, build_task, to_input
from engine.similarity.transfer import prune_search, sample_train_index, transfer_distance


def _features(probe, x, device):
    with torch.no_grad(), autocast(device):
        return probe.features(to_input(x, device)).float().flatten(1)


def naive_distance(probe_a, probe_b, task_b, cfg: TransferSection, *, device, seed: int) -> float:
    """The same schedule as transfer_distance, but every batch goes through both probes again."""
    probe_a.eval()
    probe_b.eval()
    train_x = task_b.train_x[sample_train_index(task_b.train_x.shape[0], cfg.max_samples, seed)].to(device)
    val_x, val_y = task_b.val_x.to(device), task_b.val_y.to(device)
    # N_t's input standardisation needs N_A's train statistics: one extra pass.
    stats = torch.cat([_features(probe_a, train_x[i:i + 512], device) for i in range(0, len(train_x), 512)])
    mean, std = stats.mean(0, keepdim=True), stats.std(0, keepdim=True, unbiased=False)
    inv = torch.where(std > 1e-8, 1.0 / std.clamp_min(1e-8), torch.zeros_like(std))
    head_w, head_b = probe_b.head.weight.detach().float(), probe_b.head.bias.detach().float()

    def source(idx):
        xb = train_x[idx.to(device)]
        return (_features(probe_a, xb, device) - mean) * inv, _features(probe_b, xb, device)

    def evaluate(net):
        fa = torch.cat([_features(probe_a, val_x[i:i + 512], device) for i in range(0, len(val_x), 512)])
        return float((F.linear(net((fa - mean) * inv), head_w, head_b).argmax(1) == val_y).float().mean())

    feat = probe_a.head.in_features
    return prune_search(source, len(train_x), feat, probe_b.head.in_features, evaluate, cfg,
                        device=device, seed=seed).distance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--max-samples", type=int, default=1000)
    parser.add_argument("--probe-epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    device = resolve_device(args.device)
    cfg = dataclasses.replace(TransferSection(), max_samples=args.max_samples)

    source = get_source("mnist-5k")
    task_a = build_task(TaskDef(name="mnist-0", source="mnist-5k", positive=("0",)), source)
    task_b = build_task(TaskDef(name="mnist-1", source="mnist-5k", positive=("1",)), source)
    dcfg = DictionarySection(max_epochs=args.probe_epochs)
    t = time.perf_counter()
    probe_a = train_probe(task_a, dcfg, seed=args.seed, device=device)
    probe_b = train_probe(task_b, dcfg, seed=args.seed + 1, device=device)
    print(f"device {device_label(device)}; probes trained in {time.perf_counter() - t:.1f} s "
          f"(val acc {probe_a.val_acc:.3f} / {probe_b.val_acc:.3f}); B: {len(task_b.train_x)} train, "
          f"{len(task_b.val_x)} val samples; transfer config {cfg}")

    def timed(fn):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        value = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return value, time.perf_counter() - start

    result, t_pre = timed(lambda: transfer_distance(probe_a.model, probe_b.model, task_b, cfg,
                                                    device=device, seed=args.seed))
    d_naive, t_naive = timed(lambda: naive_distance(probe_a.model, probe_b.model, task_b, cfg,
                                                    device=device, seed=args.seed))
    print(f"precomputed features: d = {result.distance:g} ({len(result.curve)} levels, "
          f"val acc {result.val_acc:.3f}) in {t_pre:.2f} s")
    print(f"features every epoch: d = {d_naive:g} in {t_naive:.2f} s")
    print(f"speed-up (recompute / precomputed): {t_naive / t_pre:.1f}x")


if __name__ == "__main__":
    main()
