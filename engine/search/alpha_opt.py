"""FUSE's α optimiser on cached candidate logits (METHOD 5, step 2): minibatch Adam steps over the val split.

During an α phase the candidates' weights are frozen and the networks are in eval mode, so each candidate's val
logits are constant: they are computed once ([C, N, K]) and every α step only mixes them. A step is then a few
microseconds, and an α epoch can take one Adam step per val minibatch instead of a single full-batch step.
"""
from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F

__all__ = ["mix_logits", "alpha_steps", "steps_per_epoch"]


def mix_logits(alpha: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Cached per-candidate logits [C, N, K] mixed by softmax(α) -> [N, K]."""
    return torch.einsum("c,cnk->nk", torch.softmax(alpha, 0), logits)


def steps_per_epoch(n_val: int, batch_size: int) -> int:
    """α steps in one α epoch: one per minibatch; batch_size 0 (or >= n_val) is one full-batch step."""
    if batch_size <= 0 or batch_size >= n_val:
        return 1
    return math.ceil(n_val / batch_size)


def alpha_steps(alpha: torch.nn.Parameter, optimizer: torch.optim.Optimizer, logits: torch.Tensor,
                y: torch.Tensor, *, epochs: int, batch_size: int,
                generator: torch.Generator | None = None) -> Iterator[float]:
    """Runs `epochs` α epochs of minibatch Adam steps and yields, after each step, the mixture's full val loss at
    the new α (the caller records α itself). The val order is reshuffled each epoch from `generator`; batch_size 0
    takes one full-batch step per epoch (the scheme before minibatches). The last minibatch may be smaller."""
    n = int(y.shape[0])
    if logits.dim() != 3 or logits.shape[1] != n or logits.shape[0] != alpha.shape[0]:
        raise ValueError(f"logits must be [candidates={alpha.shape[0]}, n={n}, classes], got {tuple(logits.shape)}")
    per_epoch = steps_per_epoch(n, batch_size)
    for _ in range(epochs):
        if per_epoch == 1:
            batches = [None]
        else:
            order = torch.randperm(n, generator=generator).to(y.device)
            batches = [order[i:i + batch_size] for i in range(0, n, batch_size)]
        for idx in batches:
            z, t = (logits, y) if idx is None else (logits[:, idx], y[idx])
            loss = F.cross_entropy(mix_logits(alpha, z), t)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                yield float(F.cross_entropy(mix_logits(alpha, logits), y))
