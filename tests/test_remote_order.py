"""The remote planner takes unit results in whatever order the executor hands them back (Ray's is not the order
of submission): a Fisher pass that arrives before the probe it was computed from must still give the distances a
local run gives."""
from __future__ import annotations

from typing import Any

import numpy as np

from engine.config import load_config
from engine.runtime.reporting import SILENT, RecordingReporter
from engine.service.context import JobContext
from engine.service.executor import Executor
from store import Store
from tests.synthetic import tiny_project


class _Ref:
    def __init__(self, thunk):
        self.thunk, self.done, self.value = thunk, False, None

    def get(self) -> Any:
        if not self.done:
            self.value, self.done = self.thunk(), True
        return self.value


class LastFirstExecutor(Executor):
    """An in-process stand-in for a remote executor that hands results back newest first, so every Fisher unit
    finishes before the probe unit it depends on is reported."""

    kind, remote, device = "last-first", True, "cpu"

    def put(self, obj: Any) -> _Ref:
        return _Ref(lambda: obj)

    def unit_reporter(self, unit: str):
        return SILENT

    def submit(self, fn, *args, name: str = "", num_returns: int = 1) -> _Ref:
        return _Ref(lambda: fn(*[a.get() if isinstance(a, _Ref) else a for a in args]))

    def completed(self, handles, reporter):
        for ref in reversed(list(handles)):
            yield ref, ref.get()


def _distances(tmp_path, name: str, executor: Executor | None):
    path = tmp_path / f"{name}.toml"
    path.write_text(tiny_project(store=f"{name}.zarr", tasks=("circle", "square", "triangle")))
    cfg = load_config(path, {})
    with Store.open(cfg.store_path, "w", create=True) as st:
        ctx = JobContext(st, cfg, "cpu", RecordingReporter(), name)
        if executor is not None:
            ctx._executor = executor
        ctx.dictionary.ensure(list(cfg.tasks), "base")   # what a run's dictionary stage does
        m = st.distances(cfg.dictionary.method)
        names = {t["id"]: t["name"] for t in st.list_tasks()}
        return [names[i] for i in m.ids], np.asarray(m.value)


def test_results_handed_back_out_of_order_give_the_local_distances(tmp_path):
    local_ids, local = _distances(tmp_path, "local", None)
    remote_ids, remote = _distances(tmp_path, "remote", LastFirstExecutor())
    assert remote_ids == local_ids and len(local_ids) == 3
    assert np.isfinite(remote).all()
    np.testing.assert_allclose(remote, local, atol=1e-6)
