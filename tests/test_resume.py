"""A FUSE run stopped mid-search and resumed equals an uninterrupted run with the same seed (CPU, bit for bit)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from engine.config import SearchSection
from engine.search.fuse import Fuse
from engine.search.method import ResumeMismatch
from engine.runtime.reporting import JobStopped, Reporter
from engine.space.spaces import SearchSpace
from engine.data.tasks import TaskData
from store import Store
from synthetic import synthetic_task as _synthetic

CHEAP_OPS = {"conv_7x1_1x7": 1.0, "dil_conv_3x3": 1.0, "skip_connect": 1.0, "avg_pool_3x3": 1.0}
CFG = SearchSection(rounds=2, candidates=2, alternations=2, w_epochs=1, alpha_epochs=2, batch_size=32,
                    final_epochs=1, alpha_lr=0.05, checkpoint_minutes=60.0, alpha_batch_size=10)
ALPHA_STEPS_PER_EPOCH = 3        # val split of 24 in minibatches of 10


def synthetic_task(n: int = 168) -> TaskData:
    return _synthetic(n, seed=7)


SPACE = SearchSpace(kind="standard", op_weights=CHEAP_OPS, nodes=(1,), channels=(4,), layers=(3,))


class StopAfter(Reporter):
    """Stops the job at the first check after `k` α steps (like `tanas-tui engine stop` would)."""

    def __init__(self, k: int):
        super().__init__()
        self.k, self.steps = k, 0

    def emit(self, event, **data):
        if event == "alpha_step":
            self.steps += 1

    def check(self):
        if self.steps >= self.k:
            raise JobStopped()


def _open(tmp_path, name):
    return Store.open(tmp_path / f"{name}.zarr", mode="w", create=True)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    with _open(tmp_path_factory.mktemp("straight"), "a") as sa:
        straight = Fuse(synthetic_task(), SPACE, CFG, store=sa, run_id="r", seed=11).run()
        return straight, sa.read_search("r")


@pytest.mark.parametrize("k,ckpt_minutes", [(7, 0.0), (14, 60.0)],
                         ids=["mid-round-alternation-checkpoint", "round-end-checkpoint"])
def test_resume_after_stop_matches_uninterrupted_run(tmp_path, uninterrupted, k, ckpt_minutes):
    straight, rec_a = uninterrupted

    # checkpoint_minutes does not change what a search computes: 0 checkpoints at every alternation boundary
    cfg_b = dataclasses.replace(CFG, checkpoint_minutes=ckpt_minutes)
    with _open(tmp_path, "b") as sb:
        with pytest.raises(JobStopped):
            Fuse(synthetic_task(), SPACE, cfg_b, store=sb, run_id="r", seed=11, reporter=StopAfter(k)).run()
        stopped = sb.search("r")
        assert stopped["status"] == "stopped"
        assert sb.read_search("r").steps == k          # flushed on stop; resume cuts back to the checkpoint
        task_b = synthetic_task()
        resumed = Fuse.resume(sb, "r", task_b, SPACE, cfg_b)
        rec_b = sb.read_search("r")
        assert task_b.test_reads == 1

    assert rec_b.steps == rec_a.steps == CFG.rounds * CFG.alternations * CFG.alpha_epochs * ALPHA_STEPS_PER_EPOCH
    assert np.array_equal(rec_a.alpha, rec_b.alpha)
    for name in ("round", "step_kind", "loss_train", "loss_val", "val_acc"):
        assert np.array_equal(getattr(rec_a, name), getattr(rec_b, name)), name
    assert rec_a.candidates == rec_b.candidates
    assert resumed.genotype == straight.genotype and resumed.hash == straight.hash
    assert resumed.test_error == straight.test_error and resumed.params == straight.params


def test_resume_with_a_different_config_is_refused_naming_the_keys(tmp_path):
    with _open(tmp_path, "c") as st:
        with pytest.raises(JobStopped):
            Fuse(synthetic_task(), SPACE, CFG, store=st, run_id="r", reporter=StopAfter(0)).run()
        changed = dataclasses.replace(CFG, w_lr=5e-3, rounds=3, checkpoint_minutes=1.0)
        with pytest.raises(ResumeMismatch) as info:
            Fuse.resume(st, "r", synthetic_task(), SPACE, changed)
        message = str(info.value)
        assert "w_lr" in message and "rounds" in message and "checkpoint_minutes" not in message
        other_space = dataclasses.replace(SPACE, channels=(8,))
        with pytest.raises(ResumeMismatch, match="space"):
            Fuse.resume(st, "r", synthetic_task(), other_space, CFG)
