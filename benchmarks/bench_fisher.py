"""Diagonal Fisher throughput: the hooks fast path (and torch.func vmap) against an explicit per-sample loop, on the
default probe with 1,000 samples; prints samples/s, the speed-up and the max relative difference (target ≥ 20×).

    .venv/bin/python benchmarks/bench_fisher.py [--samples 1000] [--probe cnn] [--device cpu] [--batch 256]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from engine.similarity.fisher import diagonal_fisher, fisher_reference  # noqa: E402
from engine.similarity.probe import make_probe  # noqa: E402


def timed(fn, device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--probe", default="cnn")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = make_probe(args.probe, 2)
    model.train()
    with torch.no_grad():                       # non-trivial batch-norm statistics
        for _ in range(5):
            model(torch.rand(64, 1, 28, 28))
    model = model.to(device).eval()
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (args.samples, 1, 28, 28), generator=gen, dtype=torch.uint8)
    y = torch.randint(0, 2, (args.samples,), generator=gen)
    print(f"probe {args.probe}, {args.samples} samples, device {device}, threads {torch.get_num_threads()}")

    diagonal_fisher(model, x[:64], y[:64], batch_size=args.batch)          # warm-up
    fast, t_fast = timed(lambda: diagonal_fisher(model, x, y, batch_size=args.batch, method="hooks"), device)
    vm, t_vmap = timed(lambda: diagonal_fisher(model, x, y, batch_size=min(args.batch, 64), method="vmap"), device)
    ref, t_ref = timed(lambda: fisher_reference(model, x, y), device)

    def rel(a):
        return float((a - ref).abs().max() / ref.abs().max())

    for label, t, out in (("hooks (default)", t_fast, fast), ("torch.func vmap", t_vmap, vm),
                          ("per-sample loop", t_ref, ref)):
        print(f"{label:<16} {t:8.3f} s  {args.samples / t:10.0f} samples/s  max rel diff {rel(out):.2e}")
    print(f"speed-up hooks / loop: {t_ref / t_fast:.1f}x   vmap / loop: {t_ref / t_vmap:.1f}x   [target ≥ 20x]")


if __name__ == "__main__":
    main()
