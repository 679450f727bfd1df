"""Train and evaluate whole networks on in-memory uint8 task tensors.

Shared by FUSE (weight epochs, final retraining) and the baselines. Batches are index slices of the task's tensors
(`engine.data.tasks.batches`), converted per batch by `engine.data.tasks.to_input`; there is no per-sample Python work.
On CUDA the forward pass runs under bf16 autocast with channels-last inputs; on the CPU everything is exact float32,
so a seeded run is bit-for-bit repeatable there.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.runtime.batchnorm import recalibrate_batchnorm
from engine.runtime.device import autocast, prepare_model
from engine.runtime.finite import Watch, check_module
from engine.runtime.reporting import SILENT, Reporter
from engine.data.tasks import batches, to_input
from engine.space.network import build_network

__all__ = [
    "test_outcome",
    "EVAL_BATCH", "TrainReport", "model_input", "train_epoch", "evaluate", "predict_logits", "train_network",
    "train_from_scratch", "train_split", "data_generator",
]

EVAL_BATCH = 512


def data_generator(seed: int) -> torch.Generator:
    """The CPU generator that fixes the data order (its state goes into checkpoints)."""
    g = torch.Generator()
    g.manual_seed(int(seed))
    return g


def model_input(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 batch -> float input on `device` (channels-last on CUDA, matching `prepare_model`)."""
    x = to_input(x, device)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    device: torch.device,
    batch_size: int,
    generator: torch.Generator,
    reporter: Reporter = SILENT,
    on_batch: Callable[[int, torch.Tensor], None] | None = None,
    watch: Watch | None = None,
) -> float:
    """One shuffled pass over (x, y) in train mode; returns the mean batch loss.

    `model` may be a single network or a FUSE mixture: anything that maps a float batch to logits.
    `reporter.check()` runs before each batch, so pause and stop act within one batch. `watch` (default: a
    "training" one) checks every batch's loss for NaN / inf (engine.runtime.finite) and raises `Diverged`.
    """
    watch = watch or Watch("training", device=device)
    model.train()
    total = torch.zeros((), device=device)
    count = 0
    for xb, yb in batches(x, y, batch_size, True, generator):
        reporter.check()
        inp = model_input(xb, device)
        yb = yb.to(device, non_blocking=True)
        with autocast(device):
            logits = model(inp)
        loss = F.cross_entropy(logits.float(), yb)
        watch(loss)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        # Accumulate on the device: a .item() per batch would synchronise the GPU every step.
        total += loss.detach()
        count += 1
        if on_batch is not None:
            on_batch(count, loss.detach())   # a tensor: the callback decides whether to synchronise
    if count == 0:
        raise ValueError("train_epoch: the training split is empty")
    watch.end()
    return float(total) / count


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, device: torch.device, batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """Eval-mode float32 logits [N, K] on `device`, in the order of `x`."""
    model.eval()
    out = []
    for start in range(0, x.shape[0], batch_size):
        inp = model_input(x[start:start + batch_size], device)
        with autocast(device):
            out.append(model(inp).float())
    if not out:
        raise ValueError("predict_logits: no samples")
    return torch.cat(out)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device,
             batch_size: int = EVAL_BATCH) -> tuple[float, float]:
    """(mean cross-entropy, accuracy in [0, 1]) in eval mode."""
    logits = predict_logits(model, x, device, batch_size)
    y = y.to(logits.device)
    loss = F.cross_entropy(logits, y)
    # counted as an integer: a float32 mean makes 72/80 = 0.89999998, below a 0.9 threshold
    return float(loss), int((logits.argmax(1) == y).sum()) / len(y)


def test_outcome(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device,
                 batch_size: int = EVAL_BATCH) -> tuple[float, np.ndarray]:
    """(accuracy in [0, 1], bool per sample: predicted right) in eval mode, in the order of `x`."""
    logits = predict_logits(model, x, device, batch_size)
    correct = (logits.argmax(1) == y.to(logits.device)).cpu().numpy().astype(bool)
    return float(correct.mean()), correct


def train_split(task, on: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The training tensors for `on` = "train" or "train+val". The test split is never a training split."""
    if on == "train":
        return task.train_x, task.train_y
    if on == "train+val":
        return torch.cat([task.train_x, task.val_x]), torch.cat([task.train_y, task.val_y])
    raise ValueError(f"unknown training split {on!r}: use 'train' or 'train+val'")


@dataclass
class TrainReport:
    epochs: int
    losses: list[float]
    seconds: float


def train_network(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int,
    *,
    device: torch.device,
    seed: int = 0,
    batch_size: int = 128,
    lr: float = 1e-3,
    reporter: Reporter = SILENT,
    on_epoch: Callable[[int, float], None] | None = None,
    stage: str = "training",
    where: str = "",
) -> TrainReport:
    """Adam(lr) for `epochs` shuffled epochs; the model is trained in place on `device`, and its batch-norm
    statistics are then recomputed over `x` so eval mode matches what was learnt. A NaN / inf loss or weight raises
    `engine.runtime.finite.Diverged` naming `stage` (+ `where`) and the step."""
    import time

    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    start = time.perf_counter()
    model = prepare_model(model, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    gen = data_generator(seed)
    x, y = x.to(device), y.to(device)
    losses = []
    watch = Watch(stage, where, device=device)
    for epoch in range(epochs):
        losses.append(train_epoch(model, optimizer, x, y, device=device, batch_size=batch_size, generator=gen,
                                  reporter=reporter, watch=watch))
        if on_epoch is not None:
            on_epoch(epoch + 1, losses[-1])
    recalibrate_batchnorm(model, x)
    check_module(model, stage, watch.step, where)
    return TrainReport(epochs=epochs, losses=losses, seconds=time.perf_counter() - start)


def train_from_scratch(
    genotype,
    task,
    epochs: int,
    *,
    on: str = "train+val",
    seed: int = 0,
    device: torch.device = torch.device("cpu"),
    batch_size: int = 128,
    lr: float = 1e-3,
    reporter: Reporter = SILENT,
    on_epoch: Callable[[int, float], None] | None = None,
    stage: str = "training",
    where: str = "",
) -> tuple[nn.Module, TrainReport]:
    """Fresh weights (from `seed`) for `genotype`, trained on `on` ("train" or "train+val") of `task`."""
    model = build_network(genotype, task.num_classes, in_channels=task.train_x.shape[1], seed=seed)
    x, y = train_split(task, on)
    report = train_network(model, x, y, epochs, device=device, seed=seed, batch_size=batch_size, lr=lr,
                           reporter=reporter, on_epoch=on_epoch, stage=stage, where=where)
    return model, report
