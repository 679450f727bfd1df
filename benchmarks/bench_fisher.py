"""Diagonal Fisher cost: ours (hooks) against the libraries people would use instead, on the default probe.

Every method computes the same per-sample diagonal Fisher F = (1/M) Σ_i (∇θ log p(y_i | x_i))² over the probe's body
(head excluded) on the same samples, in eval mode:
- ours: engine.fisher.diagonal_fisher (hooks, one batched backward),
- BackPACK: SumGradSquared on a sum-reduced cross-entropy,
- Opacus: GradSampleModule per-sample gradients, squared and summed,
- torch.func: vmap(grad(log-likelihood)) (engine.fisher's generic path),
- the explicit per-sample loop (fisher_reference) as the check.
Each is checked against the loop (max |diff| / max |F| ≤ 1e-5), timed as a ratio to ours, and ours is timed as a ratio
to one batched forward + backward with parameter gradients over the same samples and batches (the floor).
Targets: no peer faster than ours; ours ≤ 1.5× the floor.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_fisher.py [--samples 1000] [--batch 256] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from engine.similarity.fisher import diagonal_fisher, fisher_parameters, fisher_reference  # noqa: E402
from engine.similarity.probe import make_probe  # noqa: E402
from engine.data.tasks import to_input  # noqa: E402


def best_time(fn, repeats: int):
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return out, best


def flat(sums: dict, names: list[str], count: int) -> torch.Tensor:
    return torch.cat([sums[n].reshape(-1).double() for n in names]).float() / count


def floor_pass(model, x, y, batch):
    """One batched forward + backward with parameter gradients: what any exact method must at least do."""
    model.zero_grad(set_to_none=True)
    for s in range(0, len(x), batch):
        logp = torch.log_softmax(model(to_input(x[s:s + batch])), 1)
        (-logp.gather(1, y[s:s + batch, None]).sum()).backward()
    return None


def backpack_fisher(model, x, y, batch, names):
    from backpack import backpack, extend
    from backpack.extensions import SumGradSquared

    net = extend(model)
    loss_fn = extend(nn.CrossEntropyLoss(reduction="sum"))
    params = dict(net.named_parameters())
    sums = {n: torch.zeros_like(params[n]) for n in names}
    for s in range(0, len(x), batch):
        net.zero_grad(set_to_none=True)
        loss = loss_fn(net(to_input(x[s:s + batch])), y[s:s + batch])
        with backpack(SumGradSquared()):
            loss.backward()
        for n in names:
            sums[n] += params[n].sum_grad_squared
    return flat(sums, names, len(x))


class BufferFreeBatchNorm(nn.Module):
    """Eval-mode batch-norm with its running statistics as plain tensors: Opacus refuses layers with buffers (it
    targets training, where batch-norm mixes samples), but in eval mode this is the same function of the same
    parameters, and Opacus's functorch fallback gives its per-sample gradients."""

    def __init__(self, bn: nn.BatchNorm2d):
        super().__init__()
        self.weight, self.bias = bn.weight, bn.bias
        self.mean, self.inv_std = bn.running_mean.clone(), torch.rsqrt(bn.running_var + bn.eps)

    def forward(self, x):
        shape = (1, -1, 1, 1)
        return (x - self.mean.view(shape)) * (self.inv_std * self.weight).view(shape) + self.bias.view(shape)


def buffer_free(model: nn.Module) -> nn.Module:
    for name, child in model.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(model, name, BufferFreeBatchNorm(child))
        else:
            buffer_free(child)
    return model


def opacus_fisher(model, x, y, batch, names):
    from opacus import GradSampleModule

    model = buffer_free(model)
    gsm = GradSampleModule(model, batch_first=True, loss_reduction="sum", strict=False)
    gsm.train()   # Opacus only records activations in train mode; with batch-norm made buffer-free it is eval's function
    params = dict(model.named_parameters())
    sums = {n: torch.zeros_like(params[n]) for n in names}
    for s in range(0, len(x), batch):
        gsm.zero_grad(set_to_none=True)
        logp = torch.log_softmax(gsm(to_input(x[s:s + batch])), 1)
        (-logp.gather(1, y[s:s + batch, None]).sum()).backward()
        for n in names:
            sums[n] += params[n].grad_sample.pow(2).sum(0)
    gsm._close()
    return flat(sums, names, len(x))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--probe", default="cnn")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    model = make_probe(args.probe, 2)
    model.train()
    with torch.no_grad():                       # non-trivial batch-norm statistics
        for _ in range(5):
            model(torch.rand(64, 1, 28, 28))
    model.eval()
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (args.samples, 1, 28, 28), generator=gen, dtype=torch.uint8)
    y = torch.randint(0, 2, (args.samples,), generator=gen)
    names = [n for n, _ in fisher_parameters(model)]
    print(f"probe {args.probe}, {args.samples} samples, batch {args.batch}, threads {torch.get_num_threads()}, "
          f"{sum(p.numel() for n, p in model.named_parameters() if n in names)} Fisher entries; best of {args.repeats}")

    diagonal_fisher(model, x[:64], y[:64], batch_size=args.batch)          # warm-up
    ref = fisher_reference(model, x[:200], y[:200])
    ours, t_ours = best_time(lambda: diagonal_fisher(model, x, y, batch_size=args.batch, method="hooks"),
                             args.repeats)
    _, t_floor = best_time(lambda: floor_pass(model, x, y, args.batch), args.repeats)
    check_ours = diagonal_fisher(model, x[:200], y[:200], batch_size=args.batch, method="hooks")

    def rel(a):
        return float((a - ref).abs().max() / ref.abs().max())

    rows = [("ours (hooks)", t_ours, rel(check_ours))]
    peers = [
        ("torch.func vmap(grad)", lambda xs, ys: diagonal_fisher(model, xs, ys, batch_size=min(args.batch, 64),
                                                                  method="vmap")),
        ("BackPACK SumGradSquared", lambda xs, ys: backpack_fisher(make_twin(model), xs, ys, args.batch, names)),
        ("Opacus GradSampleModule", lambda xs, ys: opacus_fisher(make_twin(model), xs, ys, args.batch, names)),
    ]
    for label, fn in peers:
        try:
            check = fn(x[:200], y[:200])
            _, t = best_time(lambda: fn(x, y), max(1, args.repeats - 1))
            rows.append((label, t, rel(check)))
        except Exception as exc:  # a peer that cannot run this probe is reported, not hidden
            print(f"{label}: failed: {type(exc).__name__}: {exc}")
    print(f"{'method':<26}{'seconds':>9}{'samples/s':>11}{'/ ours':>9}{'max rel diff':>14}  equal (≤1e-5)")
    for label, t, d in rows:
        print(f"{label:<26}{t:9.3f}{args.samples / t:11.0f}{t / t_ours:9.2f}{d:14.1e}  {'yes' if d <= 1e-5 else 'NO'}")
    print(f"{'floor (fwd+bwd, batched)':<26}{t_floor:9.3f}{args.samples / t_floor:11.0f}{t_floor / t_ours:9.2f}")
    fastest_peer = min((t for label, t, _ in rows[1:]), default=float("inf"))
    print(f"ours / floor: {t_ours / t_floor:.2f}x  [target ≤ 1.5x]   fastest peer / ours: {fastest_peer / t_ours:.2f}x  "
          f"[target ≥ 1x]")


def make_twin(model: nn.Module) -> nn.Module:
    """A fresh copy, so a library's hooks and attributes never touch the model the others use."""
    import copy

    twin = copy.deepcopy(model).eval()
    twin.head.requires_grad_(False)          # the head is excluded from the Fisher, as in ours
    return twin


if __name__ == "__main__":
    main()
