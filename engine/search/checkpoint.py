"""FUSE's persistence format: the resumable search checkpoint and the final network, as bytes in the store.

`engine.search.fuse` decides what goes into a checkpoint (its search state); this module owns how it is written
and read back (torch.save, weights-only loading, the format number) and the final-weights blob export reads.
"""
from __future__ import annotations

import io
import random
from typing import Any

import torch
from torch import nn

from engine.space.genotype import Genotype

CHECKPOINT_FORMAT = 1


def save_search_checkpoint(store, run_id: str, state: dict[str, Any]) -> None:
    """Atomically replaces the run's checkpoint with `state` (tensors, optimizer states, RNG states, plain data)."""
    buf = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "kind": "search", **state}, buf)
    store.save_checkpoint(run_id, buf.getvalue())


def load_search_checkpoint(store, run_id: str) -> dict[str, Any] | None:
    """The run's search checkpoint, or None when it has none (stopped before the first one, or finished)."""
    raw = store.load_checkpoint(run_id)
    blob = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True) if raw else None
    if blob is None or blob.get("kind") != "search":
        return None
    if blob.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"search {run_id!r}: checkpoint format {blob.get('format')} is not supported "
                         f"(expected {CHECKPOINT_FORMAT})")
    return blob


def save_final_weights(store, run_id: str, genotype: Genotype, model: nn.Module, num_classes: int,
                       in_channels: int = 1) -> None:
    """The final network replaces the run's checkpoint: a finished run no longer needs one, and export reads this."""
    buf = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "kind": "final", "genotype": genotype.to_dict(),
                "num_classes": num_classes, "in_channels": in_channels, "state_dict": cpu_state(model)}, buf)
    store.save_checkpoint(run_id, buf.getvalue())


def load_final_weights(store, run_id: str) -> tuple[Genotype, dict[str, torch.Tensor], int]:
    """(genotype, state_dict, num_classes) of a finished run's final network."""
    raw = store.load_checkpoint(run_id)
    blob = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True) if raw else None
    if not blob or blob.get("kind") != "final":
        status = store.search(run_id).get("status", "unknown")
        raise ValueError(f"search {run_id!r} has no final weights yet (status: {status}); "
                         f"finish or resume it first")
    return Genotype.from_dict(blob["genotype"]), blob["state_dict"], int(blob["num_classes"])


def cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def py_state() -> list:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def py_unstate(state: list) -> tuple:
    return (state[0], tuple(state[1]), state[2])
