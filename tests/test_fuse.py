"""FUSE on a tiny synthetic task: α moves, the trajectory is stored, α learns on val, the test split is read once."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

import engine.search.fuse as fuse_mod
from engine.config import SearchSection
from engine.search.checkpoint import load_final_weights
from engine.search.fuse import Fuse, Mixture
from engine.runtime.reporting import RecordingReporter
from engine.space.spaces import SearchSpace
from engine.space.network import build_network
from store import Store
from synthetic import synthetic_task

# 12×12 images and cheap operations keep every network tiny (the networks are fully convolutional).
CHEAP_OPS = {"conv_7x1_1x7": 1.0, "dil_conv_3x3": 1.0, "skip_connect": 1.0, "avg_pool_3x3": 1.0, "max_pool_3x3": 1.0}
TINY = SearchSection(rounds=2, candidates=2, alternations=2, w_epochs=1, alpha_epochs=2, batch_size=32,
                     final_epochs=1, alpha_lr=0.05, checkpoint_minutes=60.0, alpha_batch_size=10)
N_VAL = 24                       # synthetic_task()'s val split
PER_EPOCH = 3                    # ceil(24 / 10) α minibatch steps per α epoch


def tiny_space(ops=CHEAP_OPS) -> SearchSpace:
    return SearchSpace(kind="standard", op_weights=dict(ops), nodes=(1,), channels=(4,), layers=(3,))


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "s.zarr", mode="w", create=True) as st:
        yield st


def test_mixture_is_softmax_weighted_sum_of_logits():
    space = tiny_space()
    nets = [build_network(g, 3, seed=i).eval() for i, g in enumerate(space.sample_many(3, 0))]
    alpha = torch.nn.Parameter(torch.tensor([0.5, -1.0, 2.0]))
    x = torch.rand(4, 1, 12, 12)
    with torch.no_grad():
        w = torch.softmax(alpha, 0)
        expected = sum(w[i] * nets[i](x) for i in range(3))
        got = Mixture(nets, alpha)(x)
    torch.testing.assert_close(got, expected)


def test_fuse_search_stores_trajectory_uses_val_for_alpha_and_reads_test_once(store, monkeypatch):
    task = synthetic_task()
    seen = {"train": 0, "alpha_inputs": []}
    real_train_epoch, real_predict = fuse_mod.train_epoch, fuse_mod.predict_logits

    def spy_train_epoch(model, optimizer, x, y, **kw):
        assert x is task.train_x and y is task.train_y, "weight epochs must train on the train split"
        assert not model.alpha.requires_grad, "α must be frozen during weight epochs"
        seen["train"] += 1
        return real_train_epoch(model, optimizer, x, y, **kw)

    def spy_predict(model, x, device, *a, **kw):
        seen["alpha_inputs"].append(x)
        return real_predict(model, x, device, *a, **kw)

    monkeypatch.setattr(fuse_mod, "train_epoch", spy_train_epoch)
    monkeypatch.setattr(fuse_mod, "predict_logits", spy_predict)
    reporter = RecordingReporter()
    result = Fuse(task, tiny_space(), TINY, store=store, run_id="run-a", seed=3, reporter=reporter).run()

    # data: weights on train, α on val (one cached val pass per candidate per alternation), test read exactly once
    assert seen["train"] == TINY.rounds * TINY.alternations * TINY.w_epochs
    assert len(seen["alpha_inputs"]) == TINY.rounds * TINY.alternations * TINY.candidates
    assert all(x is task.val_x for x in seen["alpha_inputs"])
    assert task.test_reads == 1

    assert task.val_x.shape[0] == N_VAL
    per_alt = TINY.alpha_epochs * PER_EPOCH
    steps = TINY.rounds * TINY.alternations * per_alt
    rec = store.read_search("run-a")
    assert rec.steps == steps and rec.attrs["committed_steps"] == steps
    assert rec.alpha.shape == (steps, TINY.candidates)
    assert np.all(np.abs(rec.alpha) > 0), "every α step moves α away from its zero start"
    assert len({tuple(r) for r in rec.alpha}) == steps
    assert rec.round.tolist() == [0] * (2 * per_alt) + [1] * (2 * per_alt)
    assert rec.step_kind.tolist() == ([0] * per_alt + [1] * per_alt) * 2
    assert np.all(np.isfinite(rec.loss_train)) and np.all(np.isfinite(rec.loss_val))
    assert np.all((rec.val_acc >= 0) & (rec.val_acc <= 1))
    # each round's candidate set is recorded; round 1 starts from round 0's argmax-α winner
    assert [c["round"] for c in rec.candidates] == [0, 1]
    last0 = 2 * per_alt - 1
    winner0 = rec.candidates[0]["hashes"][int(np.argmax(rec.alpha[last0]))]
    assert rec.candidates[1]["hashes"][0] == winner0
    assert rec.alpha[last0 + 1].tolist() != rec.alpha[last0].tolist()  # α was reset for round 1
    assert result.hash == rec.candidates[1]["hashes"][int(np.argmax(rec.alpha[-1]))]

    attrs = store.search("run-a")
    assert attrs["status"] == "done" and attrs["config"] == json.loads(json.dumps(dataclasses.asdict(TINY)))
    assert attrs["result"]["hash"] == result.hash and 0 <= attrs["result"]["test_error"] <= 100
    assert attrs["result"]["params"] == result.params > 0
    assert len(attrs["alpha_entropy"]) == steps and len(attrs["rounds"]) == TINY.rounds

    names = [name for name, _ in reporter.events]
    assert names.count("alpha_step") == steps and names.count("search_round") == TINY.rounds
    assert names.count("search_done") == 1
    first = next(d for n, d in reporter.events if n == "alpha_step")
    assert first["step"] == 0 and first["round"] == 0 and len(first["alpha"]) == TINY.candidates

    genotype, state, num_classes = load_final_weights(store, "run-a")
    assert genotype.hash == result.hash and num_classes == 2
    build_network(genotype, num_classes).load_state_dict(state)


def test_collapse_guard_warns_when_winner_is_parameter_free(store):
    task = synthetic_task(seed=1)
    ops = {"skip_connect": 1.0, "avg_pool_3x3": 1.0, "max_pool_3x3": 1.0}
    cfg = dataclasses.replace(TINY, rounds=1, alternations=1, alpha_epochs=1, final_epochs=0)
    reporter = RecordingReporter()
    result = Fuse(task, tiny_space(ops), cfg, store=store, run_id="collapse", reporter=reporter).run()
    warnings = [d for n, d in reporter.events if n == "warning"]
    assert warnings and warnings[0]["code"] == "collapse" and result.hash in warnings[0]["message"]
    assert result.parameter_free_share == 1.0 and result.warnings
    assert store.search("collapse")["warnings"] == result.warnings


def test_search_without_retraining_selects_a_genotype_and_never_reads_test(store):
    task = synthetic_task()
    cfg = dataclasses.replace(TINY, rounds=1)
    result = Fuse(task, tiny_space(), cfg, store=store, run_id="base", seed=0, retrain=False).run()
    assert task.test_reads == 0
    assert result.test_error is None and result.final_epochs == 0
    attrs = store.search("base")
    assert attrs["status"] == "done" and attrs["retrain"] is False
    genotype, state, classes = load_final_weights(store, "base")
    assert genotype.hash == result.hash and classes == task.num_classes and state


def test_rounds_announce_their_candidates_and_weight_phases_report_batches(store, monkeypatch):
    """Issue 11 item 3/4: a round's candidates (incumbent carried over first) are in the store and announced before
    its first α step, and a weight phase reports its batches while it runs."""
    monkeypatch.setattr(fuse_mod, "WEIGHT_PROGRESS_S", 0.0)   # every batch, so the count is exact
    task = synthetic_task()
    seen_at_start: list[list[str]] = []

    class Spy(RecordingReporter):
        def emit(self, event, **data):
            if event == "search_candidates":
                rec = store.read_search("progress")
                seen_at_start.append(next(c["hashes"] for c in rec.candidates if c["round"] == data["round"]))
            super().emit(event, **data)

    reporter = Spy()
    cfg = dataclasses.replace(TINY, final_epochs=0)
    Fuse(task, tiny_space(), cfg, store=store, run_id="progress", reporter=reporter, retrain=False).run()
    names = [n for n, _ in reporter.events]
    rounds = [d for n, d in reporter.events if n == "search_candidates"]
    assert [r["round"] for r in rounds] == [0, 1] and rounds[0]["incumbent"] is None
    assert seen_at_start == [r["candidates"] for r in rounds]          # readable from the store at the round's start
    first_round_end = next(d for n, d in reporter.events if n == "search_round")
    assert rounds[1]["incumbent"] == first_round_end["incumbent"] == rounds[1]["candidates"][0]
    assert names.index("weight_progress") < names.index("alpha_step")   # progress before the first α step
    per_phase = -(-len(task.train_y) // cfg.batch_size) * cfg.w_epochs
    weights = [d for n, d in reporter.events if n == "weight_progress"]
    assert len(weights) == per_phase * cfg.rounds * cfg.alternations
    assert [w["done"] for w in weights[:per_phase]] == list(range(1, per_phase + 1))
    assert all(w["total"] == per_phase for w in weights)
