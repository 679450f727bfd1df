"""Baselines for the comparison table: random search with FUSE's budget, and fixed torchvision networks.

Random search evaluates as many distinct candidates as FUSE does (`fuse_candidate_count`), each trained alone on the
TRAIN split for as many weight epochs as a FUSE candidate gets in one round (alternations × w_epochs), picks the best
by VAL accuracy, retrains it from scratch on train + val for `final_epochs` and reads the TEST split once.
Fixed networks are trained on train + val for `final_epochs` (the same final budget) and tested once.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import torch
from torch import nn

from engine.config import SearchSection
from engine.runtime.device import device_label
from engine.search.fuse import SearchResult, derive_seed
from engine.space.network import count_params
from engine.runtime.reporting import SILENT, Reporter
from store.records import BudgetRecord, table_row  # noqa: F401 - rows of the comparison table, built here
from engine.search.training import evaluate, test_outcome, train_from_scratch, train_network, train_split

__all__ = [
    "FIXED_NETWORKS", "resnet_28", "densenet161_28", "fixed_network", "random_search", "fuse_candidate_count", "table_row",
    "random_budget", "fixed_budget",
]


def resnet_28(depth: int, num_classes: int, in_channels: int = 1) -> nn.Module:
    """torchvision ResNet-18/34 for 28×28 inputs: 3×3 stride-1 stem and no max-pool (as is usual for small images)."""
    from torchvision.models import resnet18, resnet34

    model = {18: resnet18, 34: resnet34}[depth](weights=None, num_classes=num_classes)
    model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


def densenet161_28(num_classes: int, in_channels: int = 1) -> nn.Module:
    """torchvision DenseNet-161 for 28×28 inputs: 3×3 stride-1 stem and no max-pool, so its three transitions leave
    3×3 feature maps (the ImageNet stem would shrink 28×28 to nothing before the last transition)."""
    from torchvision.models import densenet161

    model = densenet161(weights=None, num_classes=num_classes)
    model.features.conv0 = nn.Conv2d(in_channels, 96, kernel_size=3, stride=1, padding=1, bias=False)
    model.features.pool0 = nn.Identity()
    return model


FIXED_NETWORKS: dict[str, tuple[str, Callable[[int, int], nn.Module]]] = {
    "resnet18": ("ResNet-18", lambda k, c: resnet_28(18, k, c)),
    "resnet34": ("ResNet-34", lambda k, c: resnet_28(34, k, c)),
    "densenet161": ("DenseNet-161", densenet161_28),
}


def fuse_candidate_count(cfg: SearchSection) -> int:
    """Distinct candidates a FUSE search trains: the first round's set plus candidates − 1 new ones per later round."""
    return cfg.candidates + (cfg.rounds - 1) * (cfg.candidates - 1)


def random_budget(cfg: SearchSection, candidates: int | None = None) -> dict[str, Any]:
    """Random search's budget (BudgetRecord attrs): as many distinct candidates as FUSE trains, each for one FUSE
    round's weight epochs, then the winner's final retraining."""
    n = candidates if candidates is not None else fuse_candidate_count(cfg)
    return BudgetRecord(epochs=n * cfg.alternations * cfg.w_epochs, unit="candidate-epochs",
                        final_epochs=cfg.final_epochs, candidates=n).to_attrs()


def fixed_budget(cfg: SearchSection) -> dict[str, Any]:
    """A fixed network's budget: final_epochs epochs of one network on train + val, nothing searched."""
    return BudgetRecord(epochs=cfg.final_epochs, unit="network-epochs", final_epochs=cfg.final_epochs,
                        candidates=1).to_attrs()


def fixed_network(name: str, task, cfg: SearchSection, *, seed: int = 0, device: torch.device | str = "cpu",
                  reporter: Reporter = SILENT, run_id: str | None = None) -> tuple[SearchResult, nn.Module]:
    if name not in FIXED_NETWORKS:
        raise ValueError(f"unknown fixed network {name!r} in search.fixed_networks; "
                         f"known: {', '.join(FIXED_NETWORKS)}")
    device = torch.device(device)
    label, build = FIXED_NETWORKS[name]
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "fixed", name))
        model = build(task.num_classes, int(task.train_x.shape[1]))
    x, y = train_split(task, "train+val")
    train_network(model, x, y, cfg.final_epochs, device=device, seed=derive_seed(seed, "fixed-data", name),
                  batch_size=cfg.batch_size, lr=cfg.w_lr, reporter=reporter)
    test_x, test_y = task.test_split()
    acc, correct = test_outcome(model, test_x, test_y, device)
    params = count_params(model)
    seconds = time.perf_counter() - start
    result = SearchResult(run_id=run_id or f"{task.definition.name}-{name}-{seed}", genotype={}, hash=name,
                          test_error=100.0 * (1.0 - acc), test_acc=acc, params=params, params_m=params / 1e6,
                          cost_device_hours=0.0, seconds=seconds, device=device_label(device), kind=f"fixed:{label}",
                          final_epochs=cfg.final_epochs, test_correct=correct)
    return result, model


def random_search(task, space, cfg: SearchSection, *, seed: int = 0, device: torch.device | str = "cpu",
                  reporter: Reporter = SILENT, run_id: str | None = None,
                  candidates: int | None = None) -> tuple[SearchResult, nn.Module, list[dict[str, Any]]]:
    """Returns (result, final model, per-candidate records [{hash, val_acc, val_loss}])."""
    device = torch.device(device)
    start = time.perf_counter()
    n = candidates if candidates is not None else fuse_candidate_count(cfg)
    epochs = cfg.alternations * cfg.w_epochs
    genotypes = space.sample_many(n, derive_seed(seed, "random-search"))
    records = []
    best = None
    for i, g in enumerate(genotypes):
        model, _ = train_from_scratch(g, task, epochs, on="train", seed=derive_seed(seed, "random-init", i),
                                      device=device, batch_size=cfg.batch_size, lr=cfg.w_lr, reporter=reporter)
        val_loss, val_acc = evaluate(model, task.val_x, task.val_y, device)
        records.append({"hash": g.hash, "genotype": g.to_dict(), "val_acc": val_acc, "val_loss": val_loss})
        reporter.emit("job_progress", job=run_id or "random-search", stage="candidates", done=i + 1, total=n)
        # Ties go to the lower val loss, then to the earlier sample.
        if best is None or (val_acc, -val_loss) > (best[1], -best[2]):
            best = (g, val_acc, val_loss)
    winner = best[0]
    model, _ = train_from_scratch(winner, task, cfg.final_epochs, on="train+val", seed=derive_seed(seed, "final"),
                                  device=device, batch_size=cfg.batch_size, lr=cfg.w_lr, reporter=reporter)
    test_x, test_y = task.test_split()
    acc, correct = test_outcome(model, test_x, test_y, device)
    params = count_params(model)
    seconds = time.perf_counter() - start
    result = SearchResult(run_id=run_id or f"{task.definition.name}-random-{seed}", test_correct=correct, genotype=winner.to_dict(),
                          hash=winner.hash, test_error=100.0 * (1.0 - acc), test_acc=acc, params=params,
                          params_m=params / 1e6, cost_device_hours=seconds / 3600.0, seconds=seconds,
                          device=device_label(device), kind="random", final_epochs=cfg.final_epochs,
                          parameter_free_share=winner.parameter_free_share())
    return result, model, records


