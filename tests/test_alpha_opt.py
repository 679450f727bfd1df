"""FUSE's α optimiser on cached logits: minibatch steps per α epoch, full-batch as the special case, reproducible."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from engine.search.alpha_opt import alpha_steps, mix_logits, steps_per_epoch


def _cached(n=50, c=3, k=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, k, (n,), generator=g)
    logits = torch.randn(c, n, k, generator=g)
    logits[1] += 4.0 * F.one_hot(y, k)  # candidate 1 is right on every sample
    return logits, y


def _fresh(c=3, lr=0.05):
    alpha = torch.nn.Parameter(torch.zeros(c))
    return alpha, torch.optim.Adam([alpha], lr=lr)


@pytest.mark.parametrize("n,batch,expected", [(50, 16, 4), (50, 50, 1), (50, 64, 1), (50, 0, 1), (48, 16, 3)])
def test_steps_per_epoch(n, batch, expected):
    assert steps_per_epoch(n, batch) == expected


def test_one_step_per_minibatch_and_alpha_moves_to_the_accurate_candidate():
    logits, y = _cached()
    alpha, opt = _fresh()
    losses = list(alpha_steps(alpha, opt, logits, y, epochs=5, batch_size=16,
                              generator=torch.Generator().manual_seed(1)))
    assert len(losses) == 5 * 4
    assert int(torch.argmax(alpha)) == 1
    assert losses[-1] < losses[0]
    with torch.no_grad():
        assert losses[-1] == pytest.approx(float(F.cross_entropy(mix_logits(alpha, logits), y)))


def test_full_batch_is_one_adam_step_on_the_whole_val_loss():
    logits, y = _cached()
    alpha, opt = _fresh()
    list(alpha_steps(alpha, opt, logits, y, epochs=1, batch_size=0))
    ref, ref_opt = _fresh()
    loss = F.cross_entropy(mix_logits(ref, logits), y)
    loss.backward()
    ref_opt.step()
    assert torch.equal(alpha.detach(), ref.detach())


def test_same_generator_seed_gives_bit_identical_alpha_and_a_different_one_does_not():
    logits, y = _cached()
    runs = []
    for seed in (3, 3, 4):
        alpha, opt = _fresh()
        list(alpha_steps(alpha, opt, logits, y, epochs=2, batch_size=8, generator=torch.Generator().manual_seed(seed)))
        runs.append(alpha.detach().clone())
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


def test_logits_shape_mismatch_is_refused():
    logits, y = _cached()
    alpha, opt = _fresh(c=2)
    with pytest.raises(ValueError, match="candidates=2"):
        list(alpha_steps(alpha, opt, logits, y, epochs=1, batch_size=8))
