"""A shared frozen feature extractor for the Fisher distance, as Task2Vec does (issue 14).

One probe body is trained once on a broad task (every class of every source the dictionary draws from, labels offset
per source). Per task only a linear head is fitted on the frozen body's features, and the diagonal Fisher of the
shared body's parameters is taken on the task's data through that head. Every task's Fisher then lives on the same
weights, so its entries correspond across tasks by construction, and the noise of training one probe per task leaves
the distance.

Distances (both use the Hellinger form of METHOD.md 3a on unit-trace diagonals):
- "embedding" (Task2Vec): d(a, b) = H(F_a, F_b), each task's Fisher on its own data through its own head; symmetric,
  and a new task needs one Fisher, not one per stored task.
- "pair" (METHOD's asymmetric form with the shared body): d(b, t) = H(F(body + head_b on t), F(body + head_t on t)).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn
import torch.nn.functional as F

from engine.runtime.batchnorm import recalibrate_batchnorm
from engine.runtime.finite import check, check_module
from engine.similarity.probe import make_probe, predict_logits
from engine.data.tasks import batches, to_input


@dataclass
class SharedBody:
    model: nn.Module              # a probe whose head covers the broad task's classes; body is what the Fishers use
    classes: tuple[str, ...]      # "source:class" per broad-task label
    seconds: float
    train_acc: float


def _image_keys(images: torch.Tensor) -> list[bytes]:
    flat = images.reshape(len(images), -1).contiguous().numpy()
    return [row.tobytes() for row in flat]


def broad_task(datasets: Sequence, exclude: Sequence[torch.Tensor] = ()) -> tuple[torch.Tensor, torch.Tensor,
                                                                                  tuple[str, ...]]:
    """Concatenates `engine.data.Dataset`s into one multi-class task, labels offset per source.

    Images equal to any image in `exclude` (the tasks' test splits) are left out, so no test image shapes the body."""
    if not datasets:
        raise ValueError("the shared body needs at least one source")
    banned = {k for imgs in exclude for k in _image_keys(imgs.cpu())}
    xs, ys, names, offset = [], [], [], 0
    for ds in datasets:
        keep = torch.tensor([k not in banned for k in _image_keys(ds.images)], dtype=torch.bool)
        xs.append(ds.images[keep])
        ys.append(ds.labels[keep] + offset)
        names += [f"{ds.source}:{c}" for c in ds.classes]
        offset += len(ds.classes)
    return torch.cat(xs), torch.cat(ys), tuple(names)


def train_shared_body(x: torch.Tensor, y: torch.Tensor, classes: Sequence[str], *, arch: str = "cnn", seed: int = 0,
                      epochs: int = 3, lr: float = 1e-3, batch_size: int = 128, max_samples: int | None = None,
                      device: torch.device | str = "cpu") -> SharedBody:
    """Trains the probe architecture on the broad task (uint8 images `x`, labels `y`); deterministic for a seed."""
    if epochs < 1:
        raise ValueError(f"the shared body needs at least 1 epoch, got {epochs}")
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    if max_samples is not None and len(x) > max_samples:
        keep = torch.randperm(len(x), generator=gen)[:max_samples]
        x, y = x[keep], y[keep]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = make_probe(arch, len(classes))
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    step = 0
    for _ in range(epochs):
        model.train()
        for xb, yb in batches(x, y, batch_size, shuffle=True, generator=gen):
            if len(yb) < 2:
                continue
            loss = F.cross_entropy(model(to_input(xb, device)), yb.to(device))
            step += 1
            check(loss, "shared body", step, "loss")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    recalibrate_batchnorm(model, x, batch_size=256)
    check_module(model, "shared body", step)
    model.eval()
    acc = float((predict_logits(model, x).argmax(1).cpu() == y).float().mean())
    return SharedBody(model, tuple(classes), time.perf_counter() - start, acc)


class TaskView(nn.Module):
    """The shared body (not copied) with a task's own head: `features`, `head` and `forward` like a probe."""

    def __init__(self, shared: nn.Module, head: nn.Linear):
        super().__init__()
        self.body, self.pool, self.head = shared.body, getattr(shared, "pool", nn.Identity()), head

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.body(x)), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@torch.no_grad()
def body_features(shared: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    shared.eval()
    device = next(shared.parameters()).device
    pool = getattr(shared, "pool", nn.Identity())
    feats = [torch.flatten(pool(shared.body(to_input(x[s:s + batch_size], device))), 1)
             for s in range(0, len(x), batch_size)]
    return torch.cat(feats).float().cpu()


def fit_head(features: torch.Tensor, y: torch.Tensor, num_classes: int, *, weight_decay: float = 1e-3,
             iterations: int = 100) -> nn.Linear:
    """A linear head on frozen features: L2-regularised logistic regression by L-BFGS (deterministic, full batch).

    Features are standardised for the fit and the scaling is folded back into the weights, so the head acts on the
    body's raw features."""
    if len(features) == 0:
        raise ValueError("cannot fit a head on no samples")
    mean, std = features.mean(0), features.std(0).clamp_min(1e-6)
    z = (features - mean) / std
    w = torch.zeros(num_classes, z.shape[1], requires_grad=True)
    b = torch.zeros(num_classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=iterations, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(z @ w.t() + b, y) + weight_decay * (w * w).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    check(loss, "Fisher head", opt.state[w].get("n_iter", iterations), "loss")
    head = nn.Linear(z.shape[1], num_classes)
    with torch.no_grad():
        head.weight.copy_(w / std)
        head.bias.copy_(b - (w * (mean / std)).sum(1))
    check_module(head, "Fisher head", opt.state[w].get("n_iter", iterations))
    return head


def task_view(shared: nn.Module, task, *, rows: torch.Tensor | None = None) -> TaskView:
    """The shared body with a head fitted on `task`'s train split (or on its `rows`)."""
    x, y = task.train_x.cpu(), task.train_y.cpu()
    if rows is not None:
        x, y = x[rows], y[rows]
    head = fit_head(body_features(shared, x), y, task.num_classes)
    device = next(shared.parameters()).device
    return TaskView(shared, head.to(device)).eval()


class SharedBodies:
    """A dictionary's shared body per seed index (`[dictionary] fisher_body = "shared"`).

    The body is part of every stored probe (a probe is the body plus the task's head), so an interrupted or extended
    build recovers it from any stored probe of that seed instead of training it again; only an empty store trains it,
    on every class of the sources the config's tasks and target name."""

    def __init__(self, cfg, store, device: torch.device | str = "cpu", load_source=None, test_images=None):
        self.cfg, self.store, self.device = cfg, store, torch.device(device)
        self._load_source = load_source
        self._test_images = test_images      # () -> the config tasks' test-split images, kept out of the body
        self._bodies: dict[int, nn.Module] = {}
        self._trained_on: dict[int, tuple[str, ...]] = {}

    def sources(self) -> list[str]:
        return list(dict.fromkeys(t.source for t in self.cfg.all_tasks()))

    def trained_on(self, s: int) -> tuple[str, ...]:
        """The sources body s was trained on (recorded with every probe on it as `body_sources`); () when a store
        written before that record does not say."""
        self.body(s)
        return self._trained_on.get(s, ())

    def body(self, s: int) -> nn.Module:
        if s in self._bodies:
            return self._bodies[s]
        from engine.similarity.probe import load_probe

        for tid in self.store.task_ids():
            if self.store.has_probe(tid, s):
                attrs = self.store.task(tid)
                model = load_probe(attrs["probe_arch"], int(attrs["num_classes"]), self.store.load_probe(tid, s))
                self._bodies[s] = model.to(self.device).eval()
                self._trained_on[s] = tuple(attrs.get("body_sources") or ())
                return self._bodies[s]
        from engine.data import get_source

        names = self.sources()
        if not names:
            raise ValueError("the shared body needs the config to name at least one task source")
        load = self._load_source or (lambda n: get_source(n, self.cfg.sources, self.cfg.data_dir,
                                                          base_dir=self.cfg.root).load())
        datasets = [load(n) for n in names]
        x, y, classes = broad_task(datasets, self._test_images() if self._test_images else ())
        d = self.cfg.dictionary
        shared = train_shared_body(x, y, classes, arch=d.probe, seed=self.cfg.project.seed * 1_000_003 + 424_242 + s,
                                   epochs=d.shared_epochs, lr=d.lr, batch_size=d.batch_size, device=self.device)
        self._bodies[s] = shared.model
        self._trained_on[s] = tuple(names)
        return shared.model

    def task_probe(self, task, s: int):
        """The task's probe: the shared body with a head fitted on the task's train split, as a ProbeResult."""
        from engine.similarity.probe import ProbeResult, accuracy, make_probe

        start = time.perf_counter()
        view = task_view(self.body(s), task)
        model = make_probe(self.cfg.dictionary.probe, task.num_classes)
        model.load_state_dict(view.state_dict())
        model = model.to(self.device).eval()
        val_acc = accuracy(model, task.val_x, task.val_y)
        return ProbeResult(model=model, val_acc=val_acc, epochs=self.cfg.dictionary.shared_epochs,
                           seconds=time.perf_counter() - start,
                           representative=val_acc >= 1.0 - self.cfg.dictionary.epsilon)
