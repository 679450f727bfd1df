"""Transform-network task distance (METHOD.md 3b, `method = "transfer"`, the ICASSP poster's definition).

    d(A, B) = min O(N_t) over transform networks N_t with  L_B(N_t ∘ N_A) ≥ 1 − ε

N_t is an MLP from N_A's penultimate features (on B's samples) to N_B's, trained by MSE. It is adequate when
N_B's own frozen head applied to N_t's output reaches val accuracy ≥ 1 − ε on B. Its complexity O is the
percentage of its weights (biases excluded) left after global magnitude pruning in `prune_step` steps with
fine-tuning after each step, at the last level that still passes.

Both probes are frozen, so their features are computed once up front; every epoch of training and fine-tuning
then works on small in-memory feature tensors only. N_t's input is standardised per feature with the statistics
of N_A's train features (a fixed affine map, not counted as weights), so the distance does not depend on the
arbitrary scale of N_A's features.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from engine.config import TransferSection
from engine.runtime.device import autocast
from engine.runtime.finite import Watch, check_module
from engine.runtime.reporting import SILENT, Reporter
from engine.data.tasks import to_input

_FEATURE_BATCH = 512
# Level arithmetic in float: 0.05 * 20 is 1.0000000000000002, so compare with a margin.
_LEVEL_EPS = 1e-9

BatchSource = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""Given a tensor of sample indices, the (input features, target features) of those samples."""


@dataclass
class TransferResult:
    distance: float                    # percent of N_t's weights kept at the chosen level; 0 for d(A, A)
    adequate: bool                     # whether any N_t (at least the unpruned one) reached 1 − ε
    kept_fraction: float               # exact fraction of weights kept at the chosen level (by count)
    val_acc: float                     # val accuracy of head_B ∘ N_t ∘ N_A at the chosen level
    curve: list[tuple[float, float]] = field(default_factory=list)   # (kept %, val acc) per level tried, in order
    reference_acc: float = float("nan")  # N_B's own val accuracy on B: the ceiling any N_t can reach
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "distance": self.distance,
            "adequate": self.adequate,
            "kept_fraction": self.kept_fraction,
            "val_acc": self.val_acc,
            "curve": [list(p) for p in self.curve],
            "reference_acc": self.reference_acc,
            "seconds": self.seconds,
        }


@dataclass
class PairFeatures:
    """Frozen-probe features for one ordered pair (A, B) on task B's data."""

    train_a: torch.Tensor   # [n, feat_a] N_A on B's train samples (subset of at most max_samples)
    train_b: torch.Tensor   # [n, feat_b] N_B on the same samples
    val_a: torch.Tensor     # [m, feat_a] N_A on B's val samples
    val_b: torch.Tensor     # [m, feat_b] N_B on B's val samples
    val_y: torch.Tensor     # [m] B's val labels
    train_index: torch.Tensor  # [n] which rows of B's train split were used (CPU, int64)


# ---------------------------------------------------------------------------------------------------------------
# public entry point


def transfer_distance(
    probe_a: nn.Module,
    probe_b: nn.Module,
    task_b: Any,
    cfg: TransferSection,
    *,
    device: torch.device | str,
    seed: int,
    reporter: Reporter = SILENT,
    same_task: bool = False,
) -> TransferResult:
    """d(A, B) in percent. `probe_*` expose `features(x)` and `head` (nn.Linear); `task_b` is a TaskData.

    d(A, A) = 0 by definition (when `probe_a is probe_b` or `same_task=True`); `adequate` then says whether
    N_B itself reaches 1 − ε on B's val split. The probes are used as they are (their device, no mutation
    except eval mode during feature extraction, restored afterwards).
    """
    start = time.perf_counter()
    device = torch.device(device)
    validate_config(cfg)
    name = task_label(task_b)
    head_w, head_b = _head_params(probe_b, name, device)
    _check_task(task_b, name, head_w.shape[0])
    target = 1.0 - cfg.epsilon

    if same_task or probe_a is probe_b:
        val_b = extract_features(probe_b, task_b.val_x, device)
        ref = _accuracy(F.linear(val_b, head_w, head_b), task_b.val_y.to(device))
        if ref < target:
            reporter.emit("warning", code="probe_not_representative", message=f"transfer: probe of task {name!r} reaches val accuracy {ref:.3f} "
                                             f"< 1 − ε = {target:.3f} on its own task")
        return TransferResult(distance=0.0, adequate=ref >= target, kept_fraction=0.0, val_acc=ref,
                              curve=[], reference_acc=ref, seconds=time.perf_counter() - start)

    feats = compute_pair_features(probe_a, probe_b, task_b, cfg.max_samples, device=device, seed=seed)
    if feats.train_b.shape[1] != head_w.shape[1]:
        raise ValueError(f"task {name!r}: probe B's features have {feats.train_b.shape[1]} columns but its head "
                         f"expects {head_w.shape[1]}")
    train_a, val_a = standardize(feats.train_a, feats.val_a)
    source = _slice_source(train_a, feats.train_b)
    result = prune_search(
        source, train_a.shape[0], train_a.shape[1], feats.train_b.shape[1],
        lambda net: _accuracy(F.linear(net(val_a), head_w, head_b), feats.val_y),
        cfg, device=device, seed=seed, reporter=reporter, where=f"to task {name!r}",
    )
    result.reference_acc = _accuracy(F.linear(feats.val_b, head_w, head_b), feats.val_y)
    result.seconds = time.perf_counter() - start
    if not result.adequate:
        reporter.emit("warning", code="transfer_inadequate", message=(
            f"transfer to task {name!r}: the unpruned transform network reaches val accuracy "
            f"{result.val_acc:.3f} < 1 − ε = {target:.3f} (probe B alone: {result.reference_acc:.3f}); "
            f"distance set to 100"))
    reporter.emit("log", level="debug", message=(
        f"transfer to task {name!r}: d = {result.distance:g} (val acc {result.val_acc:.3f}, "
        f"{len(result.curve)} levels, {result.seconds:.1f} s)"))
    return result


# ---------------------------------------------------------------------------------------------------------------
# building blocks (also used by benchmarks/bench_transfer.py)


def validate_config(cfg: TransferSection) -> None:
    problems = []
    if not 0.0 <= cfg.epsilon < 1.0:
        problems.append(f"transfer.epsilon must be in [0, 1), got {cfg.epsilon}")
    if not 0.0 < cfg.prune_step < 1.0:
        problems.append(f"transfer.prune_step must be in (0, 1), got {cfg.prune_step}")
    if cfg.epochs < 1:
        problems.append(f"transfer.epochs must be ≥ 1, got {cfg.epochs}")
    if cfg.finetune_epochs < 0:
        problems.append(f"transfer.finetune_epochs must be ≥ 0, got {cfg.finetune_epochs}")
    if not cfg.lr > 0:
        problems.append(f"transfer.lr must be > 0, got {cfg.lr}")
    if cfg.batch_size < 1:
        problems.append(f"transfer.batch_size must be ≥ 1, got {cfg.batch_size}")
    if cfg.max_samples < 1:
        problems.append(f"transfer.max_samples must be ≥ 1, got {cfg.max_samples}")
    if problems:
        raise ValueError("; ".join(problems))


def pruning_levels(step: float) -> list[float]:
    """Pruned fractions tried in order: step, 2·step, ... while something is still kept (0.05 → 0.05 … 0.95)."""
    levels = []
    k = 1
    while k * step < 1.0 - _LEVEL_EPS:
        levels.append(round(k * step, 12))
        k += 1
    return levels


def transform_network(in_dim: int, out_dim: int) -> nn.Sequential:
    """feat → 2·feat → feat/2 → feat with ReLU (METHOD.md 3b); `in_dim` sizes the hidden layers."""
    hidden1, hidden2 = 2 * in_dim, max(1, in_dim // 2)
    return nn.Sequential(
        nn.Linear(in_dim, hidden1), nn.ReLU(),
        nn.Linear(hidden1, hidden2), nn.ReLU(),
        nn.Linear(hidden2, out_dim),
    )


@torch.no_grad()
def extract_features(probe: nn.Module, images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Penultimate features of a frozen probe on uint8 images, float32 on `device`."""
    probe_device = _module_device(probe)
    was_training = probe.training
    probe.eval()
    try:
        out = []
        for i in range(0, images.shape[0], _FEATURE_BATCH):
            x = to_input(images[i:i + _FEATURE_BATCH], probe_device)
            with autocast(probe_device):
                f = probe.features(x)
            out.append(f.float().flatten(1).to(device))
    finally:
        probe.train(was_training)
    if not out:
        raise ValueError("no images to compute features on")
    return torch.cat(out)


def sample_train_index(n: int, max_samples: int, seed: int) -> torch.Tensor:
    """Which rows of B's train split fit the transform: all, or `max_samples` of them chosen by `seed`."""
    if n <= max_samples:
        return torch.arange(n)
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=g)[:max_samples].sort().values


def compute_pair_features(probe_a: nn.Module, probe_b: nn.Module, task_b: Any, max_samples: int, *,
                          device: torch.device, seed: int) -> PairFeatures:
    index = sample_train_index(task_b.train_x.shape[0], max_samples, seed)
    train_x = task_b.train_x[index]
    return PairFeatures(
        train_a=extract_features(probe_a, train_x, device),
        train_b=extract_features(probe_b, train_x, device),
        val_a=extract_features(probe_a, task_b.val_x, device),
        val_b=extract_features(probe_b, task_b.val_x, device),
        val_y=task_b.val_y.to(device),
        train_index=index,
    )


def standardize(train: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    """Per-feature z-scores with `train`'s statistics, applied to `train` and `others`.

    N_t's input is standardised so that neither its training speed nor the magnitude ranking of its first
    layer depends on the arbitrary scale of N_A's features; constant features become 0.
    """
    mean = train.mean(0, keepdim=True)
    std = train.std(0, keepdim=True, unbiased=False)
    inv = torch.where(std > 1e-8, 1.0 / std.clamp_min(1e-8), torch.zeros_like(std))
    return [(t - mean) * inv for t in (train, *others)]


def prune_search(source: BatchSource, n: int, in_dim: int, out_dim: int,
                 evaluate: Callable[[nn.Module], float], cfg: TransferSection, *,
                 device: torch.device, seed: int, reporter: Reporter = SILENT, where: str = "") -> TransferResult:
    """Train N_t on `source`, then prune it level by level; `evaluate(net)` is the val accuracy through B's head.

    Returns a result without `reference_acc` and `seconds` (the caller knows those).
    """
    target = 1.0 - cfg.epsilon
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = transform_network(in_dim, out_dim)
    net = net.to(device)
    weights = [m.weight for m in net if isinstance(m, nn.Linear)]
    masks = [torch.ones_like(w, dtype=torch.bool) for w in weights]
    total = sum(w.numel() for w in weights)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    shuffle = torch.Generator().manual_seed(seed)

    train_epochs(net, opt, source, n, cfg.epochs, cfg.batch_size, shuffle, reporter=reporter, where=where)
    acc = evaluate_eval(net, evaluate)
    curve = [(100.0, acc)]
    if acc < target:
        return TransferResult(distance=100.0, adequate=False, kept_fraction=1.0, val_acc=acc, curve=curve)

    best = TransferResult(distance=100.0, adequate=True, kept_fraction=1.0, val_acc=acc, curve=curve)
    for level in pruning_levels(cfg.prune_step):
        reporter.check()
        kept = prune_global(weights, masks, round(level * total))
        train_epochs(net, opt, source, n, cfg.finetune_epochs, cfg.batch_size, shuffle,
                     masks=list(zip(weights, masks)), reporter=reporter,
                     where=f"{where}, {round(100 * level)}% pruned" if where else f"{round(100 * level)}% pruned")
        acc = evaluate_eval(net, evaluate)
        kept_percent = round(100.0 * (1.0 - level), 9)
        curve.append((kept_percent, acc))
        if acc < target:
            break
        best.distance, best.kept_fraction, best.val_acc = kept_percent, kept / total, acc
    return best


def prune_global(weights: list[torch.Tensor], masks: list[torch.Tensor], n_pruned: int) -> int:
    """Update `masks` in place so the `n_pruned` smallest-magnitude weights over all matrices are pruned.

    Already-pruned weights stay pruned (they rank first). Zeroes the pruned weights; returns the count kept.
    """
    with torch.no_grad():
        scores = torch.cat([torch.where(m, w.abs(), torch.full_like(w, -1.0)).flatten()
                            for w, m in zip(weights, masks)])
        order = torch.argsort(scores, stable=True)
        keep = torch.ones_like(scores, dtype=torch.bool)
        keep[order[:n_pruned]] = False
        offset = 0
        for w, m in zip(weights, masks):
            m.copy_(keep[offset:offset + w.numel()].view_as(m))
            w.mul_(m)
            offset += w.numel()
    return int(keep.sum())


def train_epochs(net: nn.Module, opt: torch.optim.Optimizer, source: BatchSource, n: int, epochs: int,
                 batch_size: int, shuffle: torch.Generator, *,
                 masks: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
                 reporter: Reporter = SILENT, where: str = "") -> None:
    """MSE training of `net` on shuffled batches from `source`; with `masks`, pruned weights stay exactly 0.
    A NaN / inf loss or weight raises `engine.runtime.finite.Diverged` ("transform network", `where`)."""
    net.train()
    watch = Watch("transform network", where, device=next(net.parameters()).device)
    for _ in range(epochs):
        reporter.check()
        order = torch.randperm(n, generator=shuffle)
        for i in range(0, n, batch_size):
            x, y = source(order[i:i + batch_size])
            loss = F.mse_loss(net(x), y)
            watch(loss)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if masks:
                for w, m in masks:
                    w.grad.mul_(m)
            opt.step()
            if masks:
                with torch.no_grad():
                    # Adam's momentum would otherwise move pruned weights off zero.
                    for w, m in masks:
                        w.mul_(m)
        watch.end()
    check_module(net, "transform network", watch.step, where)


def evaluate_eval(net: nn.Module, evaluate: Callable[[nn.Module], float]) -> float:
    net.eval()
    with torch.no_grad():
        return evaluate(net)


# ---------------------------------------------------------------------------------------------------------------
# helpers


def task_label(task: Any) -> str:
    definition = getattr(task, "definition", None)
    return getattr(definition, "name", None) or getattr(task, "name", None) or str(getattr(task, "id", "?"))


def _slice_source(xs: torch.Tensor, ys: torch.Tensor) -> BatchSource:
    def source(idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        idx = idx.to(xs.device)
        return xs[idx], ys[idx]
    return source


def _head_params(probe: nn.Module, name: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    head = getattr(probe, "head", None)
    if not isinstance(head, nn.Linear):
        raise TypeError(f"task {name!r}: probe B must expose `head` as an nn.Linear, got {type(head).__name__}")
    weight = head.weight.detach().to(device, torch.float32)
    bias = head.bias.detach().to(device, torch.float32) if head.bias is not None else None
    return weight, bias


def _check_task(task: Any, name: str, n_classes: int) -> None:
    for split in ("train_x", "train_y", "val_x", "val_y"):
        if getattr(task, split, None) is None:
            raise ValueError(f"task {name!r}: missing {split}")
    if task.train_x.shape[0] == 0:
        raise ValueError(f"task {name!r}: empty train split, cannot fit a transform network")
    if task.val_x.shape[0] == 0:
        raise ValueError(f"task {name!r}: empty val split, cannot measure adequacy")
    if int(task.val_y.max()) >= n_classes or int(task.val_y.min()) < 0:
        raise ValueError(f"task {name!r}: val labels range over [{int(task.val_y.min())}, {int(task.val_y.max())}] "
                         f"but probe B's head has {n_classes} outputs")


def _accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return int((logits.argmax(1) == y).sum()) / len(y)  # an integer count: float32 would make 72/80 < 0.9


def _module_device(module: nn.Module) -> torch.device:
    for p in module.parameters():
        return p.device
    for b in module.buffers():
        return b.device
    return torch.device("cpu")
