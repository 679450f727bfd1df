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


def tiny_project(*, store: str = "store.zarr", tasks: tuple[str, ...] = ("circle",), target: str = "moon",
                 k: int = 1, nodes: int = 2, search: str = "") -> str:
    """The TOML of a CI-sized project on the embedded sketches: 1-epoch probes, 16 Fisher samples, one FUSE round of
    2 candidates, a 1-epoch final training; base tasks "is it <shape>" for `tasks`, the target "is it <target>".
    `search` adds lines to [search] (compare, repeats, fixed_networks...)."""
    text = f"""
[project]
store = "{store}"
device = "cpu"
threads = 1
seed = 0

[dictionary]
max_epochs = 1
batch_size = 64
fisher_samples = 16
k = {k}
genotype_rounds = 1

[space]
channels = [4]
layers = [3]
nodes = [{nodes}]

[search]
rounds = 1
candidates = 2
alternations = 1
batch_size = 64
final_epochs = 1
{search}
[sources.sketches]
per_class = 24
seed = 0
"""
    for name in tasks:
        text += f'\n[[tasks]]\nname = "{name}"\nsource = "sketches"\npositive = ["{name}"]\n'
    return text + f'\n[target]\nname = "{target}"\nsource = "sketches"\npositive = ["{target}"]\n'
