"""A tiny synthetic binary task for FUSE, resume and baseline tests: fast to train, uint8 like real tasks."""
from __future__ import annotations

import torch

from engine.data.tasks import TaskData, TaskDef


def synthetic_task(n: int = 168, size: int = 12, seed: int = 0) -> TaskData:
    """Label 1: a bright top-left quadrant; label 0: a bright bottom-right one. Split 4/7 train, 1/7 val, 2/7 test."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = (torch.rand(n, 1, size, size, generator=g) * 80).to(torch.uint8)
    h = size // 2
    x[y == 1, :, :h, :h] += 150
    x[y == 0, :, h:, h:] += 150
    a, b = n * 4 // 7, n * 5 // 7
    return TaskData(id=f"synth{seed}", definition=TaskDef(name="synth", source="synthetic", positive=("1",)),
                    class_names=("rest", "1"), num_classes=2, train_x=x[:a], train_y=y[:a], val_x=x[a:b],
                    val_y=y[a:b], _test_x=x[b:], _test_y=y[b:])
