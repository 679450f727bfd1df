"""Transform-network task distance (engine/transfer.py) on tiny synthetic tasks and probe-like modules."""
from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import pytest
import torch
from torch import nn

from engine.config import TransferSection
from engine.runtime.reporting import JobStopped, RecordingReporter, Reporter
from engine.similarity.transfer import (
    TransferResult,
    prune_global,
    pruning_levels,
    train_epochs,
    transfer_distance,
    transform_network,
)

CPU = torch.device("cpu")
CFG = TransferSection(epsilon=0.05, epochs=40, finetune_epochs=3, prune_step=0.05, lr=3e-3, batch_size=64,
                      max_samples=400)
FEAT = 24


@dataclass
class _Def:
    name: str


@dataclass
class FakeTask:
    """The TaskData fields transfer_distance reads."""

    definition: _Def
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor


def grid_images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise images with one bright square in a random cell of a 3×3 grid; returns (uint8 images, cell 0..8)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 60, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
    cell = torch.randint(0, 9, (n,), generator=g)
    for i in range(n):
        r, c = divmod(int(cell[i]), 3)
        dr, dc = torch.randint(0, 3, (2,), generator=g).tolist()
        x[i, 0, r * 9 + dr:r * 9 + dr + 6, c * 9 + dc:c * 9 + dc + 6] = 230
    return x, cell


def make_task(name: str, labels, n_train: int = 400, n_val: int = 200, seed: int = 0) -> FakeTask:
    """`labels` maps grid cell → class label."""
    x, cell = grid_images(n_train + n_val, seed)
    y = torch.tensor(labels)[cell]
    return FakeTask(_Def(name), x[:n_train], y[:n_train], x[n_train:], y[n_train:])


class TinyProbe(nn.Module):
    def __init__(self, classes: int, feat: int = FEAT, seed: int = 0):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(784, feat), nn.ReLU())
            self.head = nn.Linear(feat, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class NoiseProbe(TinyProbe):
    """Features that are random numbers unrelated to the input: nothing about any task can be recovered."""

    def __init__(self, classes: int, seed: int = 0):
        super().__init__(classes, seed=seed)
        self.noise = torch.Generator().manual_seed(seed)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.rand(x.shape[0], self.head.in_features, generator=self.noise)


def train_probe(task: FakeTask, classes: int, seed: int = 0, epochs: int = 30) -> TinyProbe:
    probe = TinyProbe(classes, seed=seed)
    opt = torch.optim.Adam(probe.parameters(), lr=3e-3)
    x = task.train_x.float() / 255
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=g).split(64):
            loss = nn.functional.cross_entropy(probe(x[idx]), task.train_y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    probe.eval()
    with torch.no_grad():
        acc = (probe(task.val_x.float() / 255).argmax(1) == task.val_y).float().mean().item()
    assert acc >= 0.95, f"test fixture: probe for {task.definition.name} only reaches {acc:.3f}"
    return probe




@pytest.fixture(scope="module")
def world():
    cell = make_task("cell", list(range(9)), seed=1)               # 9 classes: which grid cell
    row = make_task("row", [0, 0, 0, 1, 1, 1, 2, 2, 2], seed=2)    # 3 classes: which grid row
    return {
        "cell": cell, "row": row,
        "p_cell": train_probe(cell, 9, seed=3),
        "p_row": train_probe(row, 3, seed=4),
    }


def test_same_probe_is_zero(world):
    p, task = world["p_cell"], world["cell"]
    for r in (transfer_distance(p, p, task, CFG, device=CPU, seed=0),
              transfer_distance(copy.deepcopy(p), p, task, CFG, device=CPU, seed=0, same_task=True)):
        assert r.distance == 0.0 and r.kept_fraction == 0.0 and r.curve == []
        assert r.adequate and r.val_acc == r.reference_acc >= 0.95


def test_deterministic_given_seed(world):
    args = (world["p_cell"], world["p_row"], world["row"], CFG)
    r1 = transfer_distance(*args, device=CPU, seed=7)
    r2 = transfer_distance(*args, device=CPU, seed=7)
    assert len(r1.curve) > 1
    assert (r1.distance, r1.val_acc, r1.curve, r1.kept_fraction) == (r2.distance, r2.val_acc, r2.curve,
                                                                        r2.kept_fraction)


def _twin_distances(world, seeds):
    p, task = world["p_cell"], world["cell"]
    return [transfer_distance(copy.deepcopy(p), p, task, CFG, device=CPU, seed=s) for s in seeds]


def test_identical_features_are_heavily_prunable(world):
    for r in _twin_distances(world, (0, 1)):
        assert r.adequate and r.distance <= 30.0, r
        assert r.curve[0][0] == 100.0 and r.curve[0][1] >= 0.95


def test_random_features_give_larger_distances_than_identical_ones(world):
    p, task = world["p_cell"], world["cell"]
    twin = sum(r.distance for r in _twin_distances(world, (0, 1))) / 2
    # random projections of the pixels: the information is there but takes more weights to decode
    projected = [transfer_distance(TinyProbe(9, seed=99), p, task, CFG, device=CPU, seed=s).distance
                 for s in (0, 1)]
    assert sum(projected) / 2 > twin, (projected, twin)
    # random numbers unrelated to the input: nothing to decode at all
    noise = transfer_distance(NoiseProbe(9), p, task, CFG, device=CPU, seed=0)
    assert noise.distance == 100.0 and not noise.adequate


def test_pruning_levels_go_in_prune_steps(world):
    assert pruning_levels(0.05) == pytest.approx([0.05 * k for k in range(1, 20)])
    assert pruning_levels(0.25) == [0.25, 0.5, 0.75]
    assert pruning_levels(0.3) == [0.3, 0.6, 0.9]
    cfg = replace(CFG, prune_step=0.25)
    r = transfer_distance(copy.deepcopy(world["p_cell"]), world["p_cell"], world["cell"], cfg, device=CPU, seed=0)
    kept = [k for k, _ in r.curve]
    assert len(kept) > 1 and kept == [100.0, 75.0, 50.0, 25.0][:len(kept)]
    assert r.distance in kept
    # the chosen level is the last passing one: every level up to it passes, the next (if tried) fails
    chosen = kept.index(r.distance)
    assert all(acc >= 1 - cfg.epsilon for _, acc in r.curve[:chosen + 1])
    assert all(acc < 1 - cfg.epsilon for _, acc in r.curve[chosen + 1:])
    assert r.val_acc == dict(r.curve)[r.distance]
    assert r.kept_fraction == pytest.approx(r.distance / 100, abs=0.01)


def test_global_magnitude_pruning_keeps_largest_and_accumulates():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = transform_network(8, 8)
    weights = [m.weight for m in net if isinstance(m, nn.Linear)]
    masks = [torch.ones_like(w, dtype=torch.bool) for w in weights]
    total = sum(w.numel() for w in weights)
    all_abs = torch.cat([w.detach().abs().flatten() for w in weights])
    threshold = all_abs.sort().values[total // 2 - 1]
    assert prune_global(weights, masks, total // 2) == total - total // 2
    for w, m in zip(weights, masks):
        assert torch.all(w[~m] == 0)
        assert torch.all(w.detach().abs()[m] > threshold)
    before = [m.clone() for m in masks]
    prune_global(weights, masks, 3 * total // 4)
    assert all(torch.all(b | ~m) for b, m in zip(before, masks))   # pruned weights stay pruned
    assert sum(int(m.sum()) for m in masks) == total - 3 * total // 4
    assert all(torch.all(m.bias != 0) for m in net if isinstance(m, nn.Linear))   # biases are not pruned

    # fine-tuning with the masks held fixed keeps pruned weights exactly zero despite Adam's momentum
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    x, y = torch.randn(32, 8), torch.randn(32, 8)
    train_epochs(net, opt, lambda idx: (x[idx], y[idx]), 32, 3, 8, torch.Generator().manual_seed(0),
                 masks=list(zip(weights, masks)))
    assert all(torch.all(w[~m] == 0) for w, m in zip(weights, masks))
    assert sum(int((w[m] != 0).sum()) for w, m in zip(weights, masks)) == total - 3 * total // 4


def test_asymmetric(world):
    # The 9-class probe's features know the row; the 3-class probe's features need not know the column.
    cell_to_row = transfer_distance(world["p_cell"], world["p_row"], world["row"], CFG, device=CPU, seed=0)
    row_to_cell = transfer_distance(world["p_row"], world["p_cell"], world["cell"], CFG, device=CPU, seed=0)
    assert cell_to_row.adequate and cell_to_row.distance < 50.0
    assert cell_to_row.distance < row_to_cell.distance


def test_inadequate_transform_gives_100_and_warns(world):
    rec = RecordingReporter()
    r = transfer_distance(NoiseProbe(9, seed=1), world["p_cell"], world["cell"], CFG, device=CPU, seed=0,
                          reporter=rec)
    assert isinstance(r, TransferResult)
    assert r.distance == 100.0 and not r.adequate and r.kept_fraction == 1.0
    assert r.curve == [(100.0, r.val_acc)] and r.val_acc < 0.5
    assert r.reference_acc >= 0.95
    warnings = [d for e, d in rec.events if e == "warning"]
    assert len(warnings) == 1 and "'cell'" in warnings[0]["message"]


def test_stop_request_interrupts(world):
    rep = Reporter()
    rep.stop()
    with pytest.raises(JobStopped):
        transfer_distance(world["p_cell"], world["p_row"], world["row"], CFG, device=CPU, seed=0, reporter=rep)


def test_bad_inputs_are_named(world):
    with pytest.raises(ValueError, match="transfer.prune_step"):
        transfer_distance(world["p_cell"], world["p_row"], world["row"], replace(CFG, prune_step=0.0),
                          device=CPU, seed=0)
    with pytest.raises(ValueError, match="'cell'.*3 outputs"):
        transfer_distance(world["p_cell"], world["p_row"], world["cell"], CFG, device=CPU, seed=0)
