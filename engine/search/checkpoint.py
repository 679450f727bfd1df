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


def load_checkpoint_blob(store, run_id: str) -> dict[str, Any] | None:
    """The run's checkpoint as saved (None when there is none). A file that does not load is a corrupt store
    file (StoreCorrupt: exit 4, named, with the repair command), not a job failure."""
    from store import StoreCorrupt

    raw = store.load_checkpoint(run_id)
    if not raw:
        return None
    try:
        blob = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - truncated zip, garbage bytes, foreign pickle: all the same to the user
        # torch's own text would suggest weights_only=False: never for a file that failed to load
        raise StoreCorrupt(store.checkpoint_file(run_id), f"not a checkpoint ({type(exc).__name__})") from None
    if not isinstance(blob, dict):
        raise StoreCorrupt(store.checkpoint_file(run_id), f"not a checkpoint: holds a {type(blob).__name__}")
    return blob


def load_search_checkpoint(store, run_id: str) -> dict[str, Any] | None:
    """The run's search checkpoint, or None when it has none (stopped before the first one, or finished)."""
    blob = load_checkpoint_blob(store, run_id)
    if blob is None or blob.get("kind") != "search":
        return None
    if blob.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"search {run_id!r}: checkpoint format {blob.get('format')} is not supported "
                         f"(expected {CHECKPOINT_FORMAT})")
    return blob


def save_final_weights(store, run_id: str, genotype: Genotype, model: nn.Module, num_classes: int,
                       in_channels: int = 1, result: dict[str, Any] | None = None) -> None:
    """The final network replaces the run's checkpoint: a finished run no longer needs one, and export reads this.
    It carries the run's result, so a run killed before its `done` status was written finishes on resume."""
    buf = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "kind": "final", "genotype": genotype.to_dict(),
                "num_classes": num_classes, "in_channels": in_channels, "state_dict": cpu_state(model),
                "result": result}, buf)
    store.save_checkpoint(run_id, buf.getvalue())


def final_result(store, run_id: str) -> dict[str, Any] | None:
    """The result saved with the run's final weights, or None (no final weights, or saved without a result)."""
    blob = load_checkpoint_blob(store, run_id)
    if blob is not None and blob.get("kind") == "final" and isinstance(blob.get("result"), dict):
        return blob["result"]
    return None


def load_final_weights(store, run_id: str) -> tuple[Genotype, dict[str, torch.Tensor], int]:
    """(genotype, state_dict, num_classes) of a finished run's final network."""
    blob = load_checkpoint_blob(store, run_id)
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
