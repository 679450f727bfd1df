"""The shared frozen feature extractor: broad task, body training, fitted heads and the Fisher through a task view."""
from __future__ import annotations

import torch

from engine.data import Dataset
from engine.similarity.fisher import diagonal_fisher, fisher_reference
from engine.similarity.probe import accuracy
from engine.similarity.shared_probe import TaskView, broad_task, fit_head, task_view, train_shared_body
from tests.synthetic import synthetic_task


def _dataset(name: str, classes: int, n: int, seed: int) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    x = (torch.rand(n, 1, 28, 28, generator=g) * 60).to(torch.uint8)
    for c in range(classes):            # class c: a bright horizontal band at row 4c
        x[y == c, :, 4 * c:4 * c + 3, :] += 180
    return Dataset(source=name, images=x, labels=y, classes=tuple(str(c) for c in range(classes)))


def test_broad_task_offsets_labels_per_source():
    x, y, names = broad_task([_dataset("a", 3, 30, 0), _dataset("b", 2, 20, 1)])
    assert x.shape == (50, 1, 28, 28)
    assert names == ("a:0", "a:1", "a:2", "b:0", "b:1")
    assert int(y[:30].max()) <= 2 and int(y[30:].min()) >= 3


def test_shared_body_learns_the_broad_task_and_a_head_fits_a_task():
    x, y, names = broad_task([_dataset("a", 4, 160, 0)])
    body = train_shared_body(x, y, names, seed=0, epochs=3)
    assert body.train_acc > 0.9
    before = {k: v.clone() for k, v in body.model.body.state_dict().items()}
    task = synthetic_task(n=168, size=28)
    view = task_view(body.model, task)
    assert accuracy(view, task.val_x, task.val_y) > 0.8
    for k, v in body.model.body.state_dict().items():     # the body stays frozen
        assert torch.equal(v, before[k])
    assert view.body is body.model.body


def test_fisher_through_a_task_view_matches_the_per_sample_loop():
    x, y, names = broad_task([_dataset("a", 3, 60, 0)])
    body = train_shared_body(x, y, names, seed=1, epochs=1)
    task = synthetic_task(n=84, size=28)
    view = task_view(body.model, task)
    fast = diagonal_fisher(view, task.train_x[:20], task.train_y[:20])
    ref = fisher_reference(view, task.train_x[:20], task.train_y[:20])
    n_body = sum(p.numel() for p in body.model.body.parameters())
    assert fast.shape == (n_body,)
    torch.testing.assert_close(fast, ref, rtol=1e-4, atol=1e-7)


def test_fit_head_separates_linearly_separable_features():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(200, 8, generator=g) * 3 + 10
    y = (f[:, 0] > 10).long()
    head = fit_head(f, y, 2)
    assert float((head(f).argmax(1) == y).float().mean()) > 0.95


def test_broad_task_leaves_out_excluded_test_images():
    ds = _dataset("a", 3, 30, 0)
    x, y, _ = broad_task([ds], exclude=[ds.images[:5]])
    assert len(x) == 25
    keys = {bytes(img.numpy().tobytes()) for img in x}
    assert not any(bytes(img.numpy().tobytes()) in keys for img in ds.images[:5])
