"""kill -9 of the engine during FUSE, then `tanas-tui run` again: the store opens cleanly, the search resumes from its
last checkpoint and ends with the same result as an uninterrupted run with the same seed (CPU)."""
from __future__ import annotations

import os
import signal

import pytest
from typer.testing import CliRunner

from engine.service import protocol as P
from store import Store
from tanas_tui.cli import app
from tanas_tui.client import EngineClient, engine_running, start_engine, stop_engine

CONFIG = """
[project]
store = "store.zarr"
device = "cpu"
threads = 1
seed = 3

[dictionary]
max_epochs = 1
batch_size = 64
fisher_samples = 16
k = 1
genotype_rounds = 1

[space]
channels = [4]
layers = [3]
nodes = [2]

[search]
rounds = 3
candidates = 2
alternations = 2
batch_size = 64
final_epochs = 1
checkpoint_minutes = 0.0
compare = false

[sources.sketches]
per_class = 24
seed = 0

[[tasks]]
name = "circle"
source = "sketches"
positive = ["circle"]

[target]
name = "moon"
source = "sketches"
positive = ["moon"]
"""
RUN_ID = "moon-task-aware-3"
runner = CliRunner()


def _result(root):
    with Store.open(root / "store.zarr") as st:
        attrs = st.search(RUN_ID)
        rec = st.read_search(RUN_ID)
    return attrs, rec


def test_kill_9_during_fuse_then_run_resumes_to_the_same_result(tmp_path):
    ref, crash = tmp_path / "ref", tmp_path / "crash"
    for root in (ref, crash):
        root.mkdir()
        (root / "tanas.toml").write_text(CONFIG)

    done = runner.invoke(app, ["run", str(ref / "tanas.toml")])
    assert done.exit_code == 0, done.output

    pid = start_engine(crash / "store.zarr", crash / "tanas.toml")
    try:
        with EngineClient(crash / "store.zarr") as c:
            c.subscribe()
            c.submit("run_pipeline")
            for ev in c.events(timeout=120):
                if isinstance(ev, P.JobDone):
                    pytest.fail(f"the job ended before the kill: {ev}")
                if isinstance(ev, P.AlphaStep) and ev.run_id == RUN_ID and ev.round >= 1:
                    break  # round 0 is checkpointed; the search is mid-way through round 1
            os.kill(pid, signal.SIGKILL)
        try:
            os.waitpid(pid, 0)  # our child: reaped only once all its threads are gone and its descriptors closed
        except ChildProcessError:
            pass  # already reaped by subprocess's own clean-up
    finally:
        if engine_running(crash / "store.zarr") is not None:
            stop_engine(crash / "store.zarr")
    attrs, _ = _result(crash)
    assert attrs.get("status") != "done" and attrs.get("checkpoint")

    resumed = runner.invoke(app, ["run", str(crash / "tanas.toml")])
    assert resumed.exit_code == 0, resumed.output
    assert "probe circle" not in resumed.output  # the dictionary was reused, not retrained

    ref_attrs, ref_rec = _result(ref)
    new_attrs, new_rec = _result(crash)
    assert new_attrs["status"] == "done"
    for key in ("hash", "genotype", "test_error", "params"):
        assert new_attrs["result"][key] == ref_attrs["result"][key], key
    assert new_rec.alpha.shape == ref_rec.alpha.shape
    assert (new_rec.alpha == ref_rec.alpha).all()
