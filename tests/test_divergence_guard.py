"""NaN / inf in any training loop ends the job at once: exit 5 naming the stage, the step and the quantity, and
nothing of the diverged phase is stored as a result (engine/runtime/finite.py).

Real divergence comes from learning rates far beyond what the config accepts (sections built in code are not
checked); through the CLI, `TANAS_POISON=<stage>@<n>` makes the n-th check of a stage read NaN."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from engine.config import SearchSection, TransferSection
from engine.runtime.finite import POISON_ENV, Diverged, check, reset_poison
from engine.search.fuse import Fuse
from engine.search.training import train_from_scratch
from engine.similarity.shared_probe import fit_head
from engine.similarity.transfer import prune_search
from engine.space.spaces import SearchSpace
from store import Store
from tanas_tui.cli import app
from tests.synthetic import synthetic_task, tiny_project

CHEAP_OPS = {"conv_7x1_1x7": 1.0, "dil_conv_3x3": 1.0, "skip_connect": 1.0, "avg_pool_3x3": 1.0}
TINY = SearchSection(rounds=1, candidates=2, alternations=2, w_epochs=1, alpha_epochs=2, batch_size=32,
                     final_epochs=1, alpha_lr=0.05, checkpoint_minutes=60.0, alpha_batch_size=10)


@pytest.fixture(autouse=True)
def _fresh_poison():
    reset_poison()
    yield
    reset_poison()


def tiny_space() -> SearchSpace:
    return SearchSpace(kind="standard", op_weights=dict(CHEAP_OPS), nodes=(1,), channels=(4,), layers=(3,))


def test_check_names_stage_step_and_quantity():
    assert check(1.5, "FUSE alpha", 3, "alpha") == 1.5
    with pytest.raises(Diverged, match=r"^FUSE alpha step 3: alpha became nan"):
        check(torch.tensor([0.0, float("nan")]), "FUSE alpha", 3, "alpha")
    with pytest.raises(Diverged, match=r"^probe \(task 'a', seed 0\) step 7: loss became -inf"):
        check(np.array([1.0, -np.inf]), "probe", 7, "loss", "task 'a', seed 0")


def test_final_retraining_with_a_huge_learning_rate_fails_naming_the_step():
    task = synthetic_task()
    genotype = tiny_space().sample_many(1, 0)[0]
    with pytest.raises(Diverged, match=r"final retraining \(run r\) step \d+: (loss|weight .*) became (nan|-?inf)"):
        train_from_scratch(genotype, task, 3, lr=1e30, stage="final retraining", where="run r")


def test_fuse_alpha_divergence_stores_no_result_and_no_nan(tmp_path, monkeypatch):
    # α alone does not reach NaN (softmax saturates); NaN logits would, and the weight guard stops those first
    monkeypatch.setenv(POISON_ENV, "FUSE alpha@4")
    task = synthetic_task()
    with Store.open(tmp_path / "s.zarr", mode="w", create=True) as store:
        with pytest.raises(Diverged, match=r"^FUSE alpha \(run r1, round 1\) step 4: alpha became nan"):
            Fuse(task, tiny_space(), TINY, store=store, run_id="r1", seed=0).run()
        attrs = store.search("r1")
        assert attrs["status"] == "failed" and "FUSE alpha" in attrs["error"]
        assert not attrs.get("result")
        rec = store.read_search("r1")
        assert np.isfinite(rec.alpha).all() and np.isfinite(rec.loss_val).all()


def test_fuse_weight_divergence_is_named_and_stores_no_result(tmp_path):
    task = synthetic_task()
    cfg = dataclasses.replace(TINY, w_lr=1e30)
    with Store.open(tmp_path / "s.zarr", mode="w", create=True) as store:
        with pytest.raises(Diverged, match=r"FUSE weights \(run r2, round 1, alternation 1\) step \d+"):
            Fuse(task, tiny_space(), cfg, store=store, run_id="r2", seed=0).run()
        assert store.search("r2")["status"] == "failed" and not store.search("r2").get("result")
        assert store.read_search("r2").alpha.shape[0] == 0


def test_transform_network_divergence_is_named():
    g = torch.Generator().manual_seed(0)
    xs, ys = torch.randn(64, 8, generator=g), torch.randn(64, 4, generator=g)
    cfg = TransferSection(lr=1e30, epochs=3)
    with pytest.raises(Diverged, match=r"transform network \(to task 'b'\) step \d+"):
        prune_search(lambda idx: (xs[idx], ys[idx]), 64, 8, 4, lambda net: 1.0, cfg, device=torch.device("cpu"),
                     seed=0, where="to task 'b'")


def test_fisher_head_with_poisoned_fit_is_named(monkeypatch):
    monkeypatch.setenv(POISON_ENV, "Fisher head")
    with pytest.raises(Diverged, match=r"Fisher head step \d+: loss became nan"):
        fit_head(torch.randn(20, 5), torch.randint(0, 2, (20,)), 2)


def _project(tmp_path):
    (tmp_path / "tanas.toml").write_text(tiny_project())
    return str(tmp_path / "tanas.toml"), tmp_path / "store.zarr"


def test_cli_run_with_diverging_alpha_exits_5_naming_it_and_stores_no_result(tmp_path, monkeypatch):
    cfg, store_path = _project(tmp_path)
    monkeypatch.setenv(POISON_ENV, "FUSE alpha@2")
    runner = CliRunner()
    result = runner.invoke(app, ["run", cfg])
    assert result.exit_code == 5, result.output
    # the base task's search takes one α step (check 1); the target's first step is the poisoned second check
    assert "FUSE alpha (run moon-task-aware-0, round 1) step 1: alpha became nan" in result.output, result.output
    assert "Traceback" not in result.output
    with Store.open(store_path) as store:
        target = store.search("moon-task-aware-0")
        assert target["status"] == "failed" and not target.get("result"), target
        assert store.read_search("moon-task-aware-0").alpha.shape[0] == 0
        assert store.search("circle-genotype-0")["status"] == "done"   # the phase before is kept
    monkeypatch.delenv(POISON_ENV)
    again = runner.invoke(app, ["run", cfg])        # a run that no longer diverges goes on from the store
    assert again.exit_code == 0, again.output


def test_cli_tasks_add_with_diverging_probe_exits_5_and_stores_no_probe(tmp_path, monkeypatch):
    cfg, store_path = _project(tmp_path)
    monkeypatch.setenv(POISON_ENV, "probe@1")
    runner = CliRunner()
    result = runner.invoke(app, ["tasks", "add", "circle", "--config", cfg])
    assert result.exit_code == 5, result.output
    assert "probe (task 'circle', seed 0) step 1: loss became nan" in result.output, result.output
    with Store.open(store_path) as store:
        for tid in store.task_ids():
            assert store.task(tid).get("status") != "ready"
            assert not store.has_probe(tid, 0)
