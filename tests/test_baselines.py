"""Baselines: random search with FUSE's budget, the adapted ResNet-18, and the comparison table."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from rich.console import Console

import engine.search.baselines as baselines
import engine.search.runs as runs
from engine.search.baselines import FixedNetwork, RandomSearch, fuse_candidate_count, resnet_28
from engine.search.runs import execute
from store import Store
from store.records import SearchRunRecord, table_row
from tanas_tui.tables import comparison_table
from engine.config import SearchSection
from engine.space.spaces import SearchSpace
from engine.data.tasks import TaskData
from synthetic import synthetic_task as _synthetic

CFG = SearchSection(rounds=2, candidates=2, alternations=1, w_epochs=1, alpha_epochs=1, batch_size=32,
                    final_epochs=1)
SPACE = SearchSpace(kind="standard", op_weights={"conv_7x1_1x7": 1.0, "dil_conv_3x3": 1.0, "avg_pool_3x3": 1.0},
                    nodes=(1,), channels=(4,), layers=(3,))


def synthetic_task(n: int = 140) -> TaskData:
    return _synthetic(n, seed=3)


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "s.zarr", mode="w", create=True) as st:
        yield st


def test_random_search_matches_fuse_budget_and_picks_best_by_val(monkeypatch, store):
    trained, final = [], []
    real, real_final = baselines.train_from_scratch, runs.train_network

    def spy(genotype, task, epochs, **kw):
        trained.append((genotype.hash, epochs, kw["on"]))
        return real(genotype, task, epochs, **kw)

    def spy_final(model, x, y, epochs, **kw):
        final.append((len(y), epochs))
        return real_final(model, x, y, epochs, **kw)

    monkeypatch.setattr(baselines, "train_from_scratch", spy)
    monkeypatch.setattr(runs, "train_network", spy_final)
    task = synthetic_task()
    result = execute(RandomSearch(task, SPACE, CFG, seed=0), store, "r")
    records = store.search("r")["candidates_evaluated"]
    n = fuse_candidate_count(CFG)
    assert n == 3 and len(records) == n and len({r["hash"] for r in records}) == n
    # each candidate alone on train for a FUSE round's weight epochs, then the winner on train+val once
    assert trained == [(r["hash"], CFG.alternations * CFG.w_epochs, "train") for r in records]
    assert final == [(len(task.train_y) + len(task.val_y), CFG.final_epochs)]
    best = max(records, key=lambda r: (r["val_acc"], -r["val_loss"]))
    assert result.hash == best["hash"]
    assert task.test_reads == 1
    assert 0 <= result.test_error <= 100 and result.cost_device_hours > 0 and result.kind == "random"
    record = SearchRunRecord.from_attrs(store.search("r"))
    assert record.status == "done" and record.budget_record.candidates == n and record.space_kind == "standard"
    assert store.load_test_outcome("r") is not None


def test_resnet18_adapted_to_28x28x1():
    model = resnet_28(18, num_classes=2)
    assert model.conv1.in_channels == 1 and model.conv1.stride == (1, 1) and model.conv1.kernel_size == (3, 3)
    assert isinstance(model.maxpool, torch.nn.Identity)
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 2)
    assert 11.1e6 < sum(p.numel() for p in model.parameters()) < 11.2e6


def test_fixed_network_trains_final_budget_reads_test_once_and_costs_its_training_time(store):
    task = synthetic_task(n=70)
    result = execute(FixedNetwork("resnet18", task, dataclasses.replace(CFG, batch_size=64), seed=0), store, "f")
    assert task.test_reads == 1 and result.kind == "fixed:ResNet-18" and result.params_m > 11
    # its cost is its device time, as for every other arm (it was 0.0 while only searches had a cost)
    assert result.cost_device_hours == pytest.approx(result.seconds / 3600) and result.cost_device_hours > 0
    assert store.search("f")["network"] == "resnet18" and store.search("f")["result"]["hash"] == "resnet18"
    with pytest.raises(ValueError, match="unknown fixed network 'vgg'"):
        FixedNetwork("vgg", task, CFG)


def test_comparison_table_merges_seeds_into_mean_and_std():
    rows = [
        {"architecture": "FUSE, task-aware space", "test_error": 1.0, "params_m": 2.0, "cost_device_hours": 0.5},
        {"architecture": "FUSE, task-aware space", "test_error": 3.0, "params_m": 2.0, "cost_device_hours": 0.7},
        table_row("ResNet-18", {"test_error": 1.42, "params_m": 11.44, "cost_device_hours": 0.0}, searched=False),
    ]
    console = Console(record=True, width=160)
    console.print(comparison_table(rows, title="t"))
    text = console.export_text()
    assert "Test error (%)" in text and "Params (M)" in text and "Search cost (device-hours)" in text
    assert "2.00 ± 1.41" in text          # mean ± sample std of 1 and 3
    assert "0.60 ± 0.14" in text
    resnet = next(line for line in text.splitlines() if "ResNet-18" in line)
    assert "1.42" in resnet and "11.440" in resnet and "–" in resnet
