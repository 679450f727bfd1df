"""Baselines for the comparison table, as search methods (`engine.search.method`): random search with FUSE's budget,
and fixed torchvision networks.

Random search evaluates as many distinct candidates as FUSE does (`fuse_candidate_count`), each trained alone on the
TRAIN split for as many weight epochs as a FUSE candidate gets in one round (alternations × w_epochs), and selects the
best by VAL accuracy; `engine.search.runs.execute` retrains it from scratch on train + val for `final_epochs` and reads
the TEST split once. A fixed network selects itself: it is trained on train + val for `final_epochs` (the same final
budget) and tested once.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from engine.config import SearchSection
from engine.search.method import SearchMethod, Selection, derive_seed
from store.records import BudgetRecord
from engine.search.training import evaluate, train_from_scratch

__all__ = ["FIXED_NETWORKS", "resnet_28", "densenet161_28", "RandomSearch", "FixedNetwork", "fuse_candidate_count",
           "random_budget", "fixed_budget"]


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


class RandomSearch(SearchMethod):
    """`candidates` (default: FUSE's count) distinct genotypes of `space`, each trained alone; the best by val
    accuracy wins (ties: the lower val loss, then the earlier sample)."""

    kind = "random"
    config_keys = ("rounds", "candidates", "alternations", "w_epochs", "w_lr", "batch_size", "final_epochs")

    def __init__(self, task, space, cfg: SearchSection, *, seed: int = 0, device: torch.device | str = "cpu",
                 candidates: int | None = None):
        super().__init__(task, cfg, seed=seed, device=device, space=space)
        self.candidates = candidates if candidates is not None else fuse_candidate_count(cfg)

    def budget(self) -> dict[str, Any]:
        return random_budget(self.section, self.candidates)

    def record_extra(self) -> dict[str, Any]:
        return {"budget_candidates": self.candidates}

    def search(self, run) -> Selection:
        cfg, n = self.section, self.candidates
        epochs = cfg.alternations * cfg.w_epochs
        records, best = [], None
        for i, g in enumerate(self.space.sample_many(n, derive_seed(self.seed, "random-search"))):
            model, _ = train_from_scratch(g, self.task, epochs, on="train", seed=derive_seed(self.seed, "random-init", i),
                                          device=self.device, batch_size=cfg.batch_size, lr=cfg.w_lr,
                                          reporter=run.reporter, stage="random-search candidate",
                                          where=f"run {run.run_id}, candidate {i + 1}")
            val_loss, val_acc = evaluate(model, self.task.val_x, self.task.val_y, self.device)
            records.append({"hash": g.hash, "genotype": g.to_dict(), "val_acc": val_acc, "val_loss": val_loss})
            run.reporter.emit("job_progress", job=run.run_id, stage="candidates", done=i + 1, total=n)
            if best is None or (val_acc, -val_loss) > (best[1], -best[2]):
                best = (g, val_acc, val_loss)
        return Selection(name=best[0].hash, genotype=best[0], attrs={"candidates_evaluated": records})


class FixedNetwork(SearchMethod):
    """A network of `FIXED_NETWORKS`, nothing searched."""

    config_keys = ("w_lr", "batch_size", "final_epochs")

    def __init__(self, name: str, task, cfg: SearchSection, *, seed: int = 0, device: torch.device | str = "cpu"):
        if name not in FIXED_NETWORKS:
            raise ValueError(f"unknown fixed network {name!r} in search.fixed_networks; "
                             f"known: {', '.join(FIXED_NETWORKS)}")
        super().__init__(task, cfg, seed=seed, device=device)
        self.name = name
        self.kind = f"fixed:{FIXED_NETWORKS[name][0]}"

    def budget(self) -> dict[str, Any]:
        return fixed_budget(self.section)

    def record_extra(self) -> dict[str, Any]:
        return {"network": self.name}

    def search(self, run) -> Selection:
        return Selection(name=self.name)

    def final_model(self, selection: Selection) -> tuple[nn.Module, int]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(self.seed, "fixed", self.name))
            model = FIXED_NETWORKS[self.name][1](self.task.num_classes, self.in_channels)
        return model, derive_seed(self.seed, "fixed-data", self.name)
