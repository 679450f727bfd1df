"""Batch-norm statistics for small data.

With a few hundred training samples an epoch is only a handful of batches, and the running mean / variance
(momentum 0.1, initialised to 0 / 1) lag far behind the weights: in eval mode such a network predicts one class while
in train mode it is already accurate. Before evaluating, the statistics are recomputed exactly over the training
split (a cumulative average over one no-grad pass), which is what the weights were trained against. Only training
data is used, never val or test.
"""
from __future__ import annotations

import torch
from torch import nn

from engine.runtime.device import autocast
from engine.data.tasks import to_input

_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, _BN) and m.track_running_stats for m in model.modules())


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, x: torch.Tensor, *, batch_size: int = 256,
                          max_samples: int | None = 2048) -> None:
    """Recomputes every batch-norm layer's running statistics over uint8 images `x` (the train split)."""
    layers = [m for m in model.modules() if isinstance(m, _BN) and m.track_running_stats]
    if not layers or len(x) == 0:
        return
    device = next(model.parameters()).device
    if max_samples is not None and len(x) > max_samples:
        x = x[:max_samples]
    saved = [(m, m.momentum) for m in layers]
    was_training = model.training
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: the exact mean over the batches below
    model.train()
    try:
        for start in range(0, len(x), batch_size):
            xb = x[start:start + batch_size]
            if len(xb) < 2:
                break
            with autocast(device):
                model(to_input(xb, device))
    finally:
        for m, momentum in saved:
            m.momentum = momentum
        model.train(was_training)
