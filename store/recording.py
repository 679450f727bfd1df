"""A stand-in store for a search that runs away from the engine (a Ray unit): it records the search's writes in
memory, in order, and the engine replays them onto the real store when the unit's result arrives. The worker never
opens the store; the engine stays its single writer, and the replayed search is what a local run would have written.

Covers what a new search writes: `create_search` and its writer (`append`, `set_candidates`, `flush`),
`update_search`, `save_checkpoint` / `load_checkpoint`, and the reads a new run makes of its own record.
"""
from __future__ import annotations

from typing import Any

import numpy as np


class RecordingWriter:
    def __init__(self, ops: list[tuple], run_id: str):
        self._ops, self.run_id = ops, run_id
        self._steps = 0
        self.committed_steps = 0

    def append(self, alpha, round, step_kind, loss_train, loss_val, val_acc) -> int:
        self._ops.append(("append", self.run_id, (np.asarray(alpha, np.float32).copy(), int(round), int(step_kind),
                                                  float(loss_train), float(loss_val),
                                                  np.asarray(val_acc, np.float32).copy())))
        self._steps += 1
        return self._steps - 1

    @property
    def steps(self) -> int:
        """The index the next appended step gets (as `store.search.SearchWriter.steps`)."""
        return self._steps

    def set_candidates(self, round: int, genotypes: list[dict[str, Any]], hashes: list[str]) -> None:
        self._ops.append(("set_candidates", self.run_id, (int(round), list(genotypes), list(hashes))))

    def flush(self) -> None:
        self._ops.append(("flush", self.run_id, ()))
        self.committed_steps = self._steps

    def close(self) -> None:
        self.flush()


class RecordingStore:
    writable = True

    def __init__(self):
        self.ops: list[tuple] = []
        self._searches: dict[str, dict[str, Any]] = {}
        self._blobs: dict[str, bytes] = {}

    def list_searches(self) -> list[dict[str, Any]]:
        return [{**attrs, "id": rid} for rid, attrs in self._searches.items()]

    def search(self, run_id: str) -> dict[str, Any]:
        return dict(self._searches[run_id])

    def create_search(self, run_id: str, attrs: dict[str, Any], candidates: int) -> RecordingWriter:
        self._searches[run_id] = dict(attrs)
        self.ops.append(("create_search", run_id, (dict(attrs), int(candidates))))
        return RecordingWriter(self.ops, run_id)

    def update_search(self, run_id: str, **attrs: Any) -> None:
        self._searches[run_id].update(attrs)
        self.ops.append(("update_search", run_id, (dict(attrs),)))

    def save_checkpoint(self, run_id: str, blob: bytes) -> None:
        self._blobs[run_id] = bytes(blob)
        self.ops.append(("save_checkpoint", run_id, (bytes(blob),)))

    def load_checkpoint(self, run_id: str) -> bytes | None:
        return self._blobs.get(run_id)

    def save_test_outcome(self, run_id: str, correct: Any, task_id: str) -> None:
        self.ops.append(("save_test_outcome", run_id, (np.asarray(correct).copy(), str(task_id))))


def replay(ops: list[tuple], store: Any) -> None:
    """Applies recorded writes to `store` in their order. Intermediate checkpoints are skipped (only the last one per
    run is kept: the store keeps only the latest anyway)."""
    last_blob = {run_id: i for i, (op, run_id, _) in enumerate(ops) if op == "save_checkpoint"}
    writers: dict[str, Any] = {}
    for i, (op, run_id, args) in enumerate(ops):
        if op == "create_search":
            writers[run_id] = store.create_search(run_id, *args)
        elif op == "update_search":
            store.update_search(run_id, **args[0])
        elif op == "save_checkpoint":
            if last_blob[run_id] == i:
                store.save_checkpoint(run_id, args[0])
        elif op == "save_test_outcome":
            store.save_test_outcome(run_id, *args)
        else:
            getattr(writers[run_id], op)(*args)
    for writer in writers.values():
        writer.flush()
