"""Genotype -> nn.Module, DARTS style (no auxiliary head, no drop-path).

stem (3x3 stride-2 conv to C channels + BN) -> `layers` cells -> global average pool -> linear. Cells at layers//3 and
2*layers//3 are reduction cells (stride 2, channels doubled). The stem halves the resolution (28 -> 14): at 28x28
the first cells would cost four times as much for little gain on digit- and sketch-sized images, and the CPU budget
of the default preset depends on it. Each cell preprocesses its two inputs to C channels
(ReLU-conv1x1-BN, or FactorizedReduce when the previous cell halved the resolution so the inputs disagree in size).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from engine.space.ops import OPS, FactorizedReduce, ReLUConvBN

if TYPE_CHECKING:
    from engine.space.genotype import Cell, Genotype

__all__ = ["Network", "CellModule", "reduction_layers", "build_network", "count_params", "count_macs"]


def reduction_layers(layers: int) -> frozenset[int]:
    return frozenset({layers // 3, 2 * layers // 3})


class CellModule(nn.Module):
    def __init__(self, cell: "Cell", C_prev_prev: int, C_prev: int, C: int, reduction: bool, reduction_prev: bool):
        super().__init__()
        self.reduction = reduction
        self.pre0 = FactorizedReduce(C_prev_prev, C) if reduction_prev else ReLUConvBN(C_prev_prev, C, 1, 1, 0)
        self.pre1 = ReLUConvBN(C_prev, C, 1, 1, 0)
        self.ops = nn.ModuleList()
        inputs: list[int] = []
        for node in cell.edges:
            for op, src in node:
                stride = 2 if reduction and src < 2 else 1
                self.ops.append(OPS[op](C, stride, True))
                inputs.append(src)
        self.inputs = tuple(inputs)
        self.concat = tuple(cell.concat)
        self.out_channels = len(self.concat) * C

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        for k in range(0, len(self.ops), 2):
            a = self.ops[k](states[self.inputs[k]])
            b = self.ops[k + 1](states[self.inputs[k + 1]])
            states.append(a + b)
        return torch.cat([states[i] for i in self.concat], dim=1)


class Network(nn.Module):
    def __init__(self, genotype: "Genotype", num_classes: int, in_channels: int = 1):
        super().__init__()
        if num_classes < 1 or in_channels < 1:
            raise ValueError(f"num_classes and in_channels must be positive, got {num_classes}, {in_channels}")
        genotype.validate()
        C = genotype.channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(C))
        reductions = reduction_layers(genotype.layers)
        C_prev_prev, C_prev, C_curr = C, C, C
        reduction_prev = False
        self.cells = nn.ModuleList()
        for i in range(genotype.layers):
            reduction = i in reductions
            if reduction:
                C_curr *= 2
            cell = CellModule(genotype.reduce if reduction else genotype.normal,
                              C_prev_prev, C_prev, C_curr, reduction, reduction_prev)
            self.cells.append(cell)
            C_prev_prev, C_prev = C_prev, cell.out_channels
            reduction_prev = reduction
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(self.pool(s1).flatten(1))


def build_network(genotype: "Genotype", num_classes: int, in_channels: int = 1, seed: int | None = None) -> nn.Module:
    """The network for `genotype`. Weights come from torch's global RNG, or from `seed` without touching it."""
    genotype.validate()
    if seed is None:
        return Network(genotype, num_classes, in_channels)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Network(genotype, num_classes, in_channels)


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_macs(model: nn.Module, input_size: tuple[int, ...] = (1, 1, 28, 28)) -> int:
    """Multiply-accumulates of one forward pass of a zero input of `input_size` (conv and linear layers only).

    Counted per batch, so with the default batch of 1 this is per sample. Good for comparing candidates, not a profiler.
    """
    total = 0

    def conv_hook(module: nn.Conv2d, inputs, output) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        total += output.numel() * (module.in_channels // module.groups) * kh * kw

    def linear_hook(module: nn.Linear, inputs, output) -> None:
        nonlocal total
        total += output.numel() * module.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    try:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
        model.eval()
        with torch.no_grad():
            model(torch.zeros(input_size, device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total
