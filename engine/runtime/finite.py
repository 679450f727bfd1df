"""The NaN / inf guard every training loop calls: a diverged quantity ends the job at once, naming where.

`check(value, stage, step, quantity, where)` raises `Diverged("FUSE alpha step 3: alpha became nan")` when a float or
any element of a tensor is NaN or infinite; `check_module(model, stage, step)` does the same for every parameter and
buffer. The job then fails (exit 5 in the CLI) and the caller stores nothing of the phase that diverged.

Stages are fixed names (`STAGES`); `where` adds which task or run. `TANAS_POISON=<stage>@<n>` (tests and benchmarks)
makes the n-th check in that stage see NaN, so a divergence can be forced through the CLI; unset, a check costs one
environment lookup more than the finiteness test itself.
"""
from __future__ import annotations

import math
import os
from collections import Counter
from typing import Any

import numpy as np
import torch

POISON_ENV = "TANAS_POISON"
_hits: Counter[str] = Counter()

__all__ = ["Diverged", "Watch", "check", "check_module", "poisoned", "reset_poison", "POISON_ENV", "STAGES"]

STAGES = ("probe", "shared body", "Fisher head", "Fisher", "transform network", "FUSE weights", "FUSE alpha",
          "random-search candidate", "final retraining", "premise training", "genotype check", "training")


class Diverged(RuntimeError):
    """A training quantity became NaN or infinite."""

    def __init__(self, stage: str, step: int | str, quantity: str, value: Any, where: str = ""):
        self.stage, self.step, self.quantity, self.value = stage, step, quantity, value
        place = f"{stage} ({where})" if where else stage
        super().__init__(f"{place} step {step}: {quantity} became {value} (training diverged; try a lower learning "
                         f"rate; nothing of this phase was stored)")


def poisoned(name: str) -> bool:
    """True when TANAS_POISON arms `name` and this is its n-th check."""
    spec = os.environ.get(POISON_ENV)
    if not spec:
        return False
    point, _, nth = spec.partition("@")
    if point != name:
        return False
    _hits[name] += 1
    return _hits[name] == int(nth or 1)


def reset_poison() -> None:
    """Forgets the checks counted so far (a test arming TANAS_POISON again in the same process)."""
    _hits.clear()


def _bad(value: Any) -> Any:
    """The first non-finite value in `value` (float, tensor or numpy array), or None."""
    if isinstance(value, torch.Tensor):
        v = value.detach()
        if not v.is_floating_point():
            return None
        bad = ~torch.isfinite(v)
        if not bool(bad.any()):
            return None
        return float(v[bad].flatten()[0])
    if isinstance(value, np.ndarray):
        if not np.issubdtype(value.dtype, np.floating):
            return None
        bad = ~np.isfinite(value)
        return float(value[bad].flat[0]) if bad.any() else None
    value = float(value)
    return None if math.isfinite(value) else value


def check(value: Any, stage: str, step: int | str, quantity: str, where: str = "", *, counted: bool = True) -> Any:
    """Returns `value` when it is finite; raises Diverged naming `stage` (+ `where`), `step` and `quantity`.
    `counted=False`: a second quantity of the same step, not counted by TANAS_POISON."""
    bad = _bad(value)
    if bad is None and counted and poisoned(stage):
        bad = float("nan")
    if bad is not None:
        raise Diverged(stage, step, quantity, _word(bad), where)
    return value


def check_module(model: torch.nn.Module, stage: str, step: int | str, where: str = "") -> None:
    """Every floating parameter and buffer of `model` finite (one pass, after a phase, before anything is kept)."""
    for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
        bad = _bad(tensor)
        if bad is not None:
            raise Diverged(stage, step, f"weight {name}", _word(bad), where)


def _word(value: float) -> str:
    if math.isnan(value):
        return "nan"
    return "inf" if value > 0 else "-inf"


class Watch:
    """The per-step loss check of one training loop (`watch(loss)` after each forward pass, `watch.end()` after each
    epoch). On the CPU each step is checked at once; on another device the losses stay there until `end()`, so the
    loop synchronises once per epoch instead of once per step, and the error still names the first bad step."""

    def __init__(self, stage: str, where: str = "", quantity: str = "loss", device: torch.device | None = None):
        self.stage, self.where, self.quantity = stage, where, quantity
        self.lazy = device is not None and torch.device(device).type != "cpu"
        self.step = 0
        self._pending: list[torch.Tensor] = []

    def __call__(self, loss: torch.Tensor) -> None:
        self.step += 1
        if self.lazy:
            self._pending.append(loss.detach().float().reshape(()))
        else:
            check(loss, self.stage, self.step, self.quantity, self.where)

    def end(self) -> None:
        if not self._pending:
            return
        values = torch.stack(self._pending).cpu().tolist()
        first = self.step - len(values) + 1
        self._pending = []
        for i, value in enumerate(values):
            check(value, self.stage, first + i, self.quantity, self.where)
