"""Probe networks and their ε-representative training (METHOD.md section 2).

Every probe exposes `features(x) -> [B, feat]` (the penultimate representation) and `head` (the final
`nn.Linear`); `forward(x) == head(features(x))`. All tasks of one dictionary use the same probe architecture.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from engine.runtime.batchnorm import recalibrate_batchnorm
from engine.runtime.device import autocast, prepare_model
from engine.runtime.finite import check, check_module
from engine.runtime.reporting import SILENT, Reporter
from engine.data.tasks import batches, to_input

if TYPE_CHECKING:  # pragma: no cover
    from engine.config import DictionarySection

PROBE_ARCHS = ("cnn", "resnet18")


class CNNProbe(nn.Module):
    """3 × [conv 3×3, batch-norm, ReLU, max-pool 2] with 32/64/64 channels, global average pool, linear head."""

    def __init__(self, num_classes: int, channels: tuple[int, ...] = (32, 64, 64), in_channels: int = 1):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = in_channels
        for c in channels:
            # No conv bias: the following batch-norm's shift makes it redundant.
            layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d(2)]
            c_in = c
        self.body = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(c_in, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.body(x)), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class ResNet18Probe(nn.Module):
    """torchvision's ResNet-18 for 1-channel 28×28 input: a 3×3 stride-1 stem and no stem max-pool."""

    def __init__(self, num_classes: int):
        super().__init__()
        from torchvision.models import resnet18

        net = resnet18(num_classes=num_classes)
        net.conv1 = nn.Conv2d(1, 64, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
        self.head = net.fc
        net.fc = nn.Identity()
        self.body = net

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def make_probe(arch: str, num_classes: int) -> nn.Module:
    if num_classes < 2:
        raise ValueError(f"a probe needs at least 2 classes, got {num_classes}")
    if arch == "cnn":
        return CNNProbe(num_classes)
    if arch == "resnet18":
        return ResNet18Probe(num_classes)
    raise ValueError(f"unknown probe architecture {arch!r}: use one of {', '.join(PROBE_ARCHS)}")


def probe_state(model: nn.Module) -> dict[str, np.ndarray]:
    """Parameters and buffers as CPU numpy arrays (what the store keeps)."""
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def load_probe(arch: str, num_classes: int, state: dict[str, np.ndarray]) -> nn.Module:
    model = make_probe(arch, num_classes)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"stored probe does not match a {arch!r} probe with {num_classes} classes"
            f" (missing: {missing[:5]}, unexpected: {unexpected[:5]})"
        )
    bad = [k for k, v in state.items() if tuple(np.shape(v)) != tuple(expected[k].shape) and np.size(v) != 1]
    if bad:
        raise ValueError(f"stored probe does not match a {arch!r} probe with {num_classes} classes "
                         f"({bad[0]}: stored shape {tuple(np.shape(state[bad[0]]))}, "
                         f"expected {tuple(expected[bad[0]].shape)})")
    model.load_state_dict({k: torch.as_tensor(np.asarray(v)).reshape(expected[k].shape) for k, v in state.items()})
    model.eval()
    return model


def slices(n: int, batch_size: int) -> Iterator[slice]:
    for start in range(0, n, batch_size):
        yield slice(start, start + batch_size)


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, *, batch_size: int = 512) -> torch.Tensor:
    """Logits (float32, on the model's device) for uint8 images `x`, in eval mode."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    for idx in slices(len(x), batch_size):
        with autocast(device):
            out.append(model(to_input(x[idx], device)).float())
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, device=device)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 512) -> float:
    if len(x) == 0:
        raise ValueError("accuracy on an empty split")
    logits = predict_logits(model, x, batch_size=batch_size)
    return int((logits.argmax(1).cpu() == y.cpu()).sum()) / len(y)  # integer count: float32 makes 72/80 < 0.9


@dataclass
class ProbeResult:
    model: nn.Module
    val_acc: float
    epochs: int
    seconds: float
    representative: bool


def train_probe(task, cfg: "DictionarySection", *, seed: int, device: torch.device | str = "cpu",
                reporter: Reporter = SILENT, seed_index: int = 0, order_seed: int | None = None) -> ProbeResult:
    """Train the dictionary's probe on `task` (a TaskData) with Adam until val accuracy ≥ 1 − ε or `max_epochs`.

    The 1 − ε stop is only checked from epoch `min_epochs` on, and the kept best-validation weights are chosen among
    those epochs, so every probe of a dictionary has at least the same training budget.

    Returns the best-validation weights in eval mode. Deterministic on the CPU for a fixed seed: initialisation and
    shuffling draw from generators seeded by `seed`, leaving the global RNG untouched. `order_seed` (default `seed`)
    seeds the shuffling alone, so two probes can share an initialisation and differ only in data order.
    """
    device = torch.device(device)
    if len(task.train_x) == 0 or len(task.val_x) == 0:
        raise ValueError(f"task {task.definition.name!r} has an empty train or val split")
    if cfg.max_epochs < 1:
        raise ValueError(f"dictionary.max_epochs must be ≥ 1, got {cfg.max_epochs}")
    min_epochs = cfg.min_epochs
    if not 1 <= min_epochs <= cfg.max_epochs:
        raise ValueError(f"dictionary.min_epochs must be in [1, max_epochs={cfg.max_epochs}], got {min_epochs}")
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = make_probe(cfg.probe, task.num_classes)
    model = prepare_model(model, device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(seed if order_seed is None else order_seed)
    train_x, train_y = task.train_x.to(device), task.train_y.to(device)
    target = 1.0 - cfg.epsilon
    best_acc, best_state, epochs, step = -1.0, None, 0, 0
    where = f"task {task.definition.name!r}, seed {seed_index}"
    for epoch in range(1, cfg.max_epochs + 1):
        model.train()
        total, count = 0.0, 0
        for xb, yb in batches(train_x, train_y, cfg.batch_size, shuffle=True, generator=gen):
            xb = to_input(xb)
            if len(yb) < 2 and count > 0:
                continue  # batch-norm cannot train on a single sample
            with autocast(device):
                loss = F.cross_entropy(model(xb).float(), yb)
            step += 1
            value = check(float(loss.detach()), "probe", step, "loss", where)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += value * len(yb)
            count += len(yb)
            reporter.check()
        recalibrate_batchnorm(model, train_x, batch_size=max(cfg.batch_size, 256))
        val_acc = accuracy(model, task.val_x, task.val_y, batch_size=max(cfg.batch_size, 256))
        epochs = epoch
        if epoch >= min_epochs and val_acc > best_acc:
            best_acc, best_state = val_acc, copy.deepcopy(model.state_dict())
        reporter.emit("probe_progress", task_id=task.id, name=task.definition.name, seed_index=seed_index,
                      epoch=epoch, max_epochs=cfg.max_epochs, val_acc=val_acc, loss=total / max(count, 1))
        reporter.check()
        if epoch >= min_epochs and val_acc >= target:
            break
    model.load_state_dict(best_state)
    check_module(model, "probe", step, where)
    model.eval()
    return ProbeResult(model=model, val_acc=best_acc, epochs=epochs, seconds=time.perf_counter() - start,
                       representative=best_acc >= target)
