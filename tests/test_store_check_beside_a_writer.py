"""`store check` beside a live writer reports no false problem: what the writer's work in progress looks like (a probe
saved without its names yet, a Fisher vector still being written, a search being created) is said to be in
progress by that pid, and the check exits 0; the same store without the writer is a problem to repair."""
from __future__ import annotations

import os
import signal
import time

import numpy as np
from typer.testing import CliRunner

from store import Store
from store import layout as L
from tanas_tui.cli import app

runner = CliRunner()


def _store_with_a_task(path) -> str:
    with Store.open(path, "w", create=True) as st:
        st.add_task("t1", {"name": "one", "status": "ready"})
        st.save_probe("t1", {"w": np.ones((3, 2), np.float32)})
        st.save_fisher("t1", np.full(8, 0.5, np.float32))
    return "t1"


def _writer(path, body) -> int:
    """A forked child holding the writer lock and running body(store, nodes) until it is killed."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            with Store.open(path, "w") as st:
                os.write(w, b"x")
                body(st, st._nodes)
        finally:
            os._exit(0)
    os.close(w)
    assert os.read(r, 1) == b"x"
    os.close(r)
    return pid


def _half_written_probe(st, nodes) -> None:
    nodes.create_group(L.probe_path("t1", 1), {})      # what save_probe leaves until its names go in last
    while True:
        time.sleep(1)


def _cycling(st, nodes) -> None:
    """Keeps passing through the probe, Fisher and search-creation write windows."""
    i = 0
    while True:
        st.save_probe("t1", {"w": np.full((3, 2), i, np.float32)}, seed_index=1)
        st.save_fisher("t1", np.full(8, 1.0 + i, np.float32), seed_index=1)
        nodes.delete(L.probe_path("t1", 1))
        nodes.delete(L.fisher_path("t1", 1))
        st.create_search(f"run{i}", {"status": "running"}, 2)
        st.remove_search(f"run{i}")
        i += 1


def _check(path):
    result = runner.invoke(app, ["store", "check", "--store", str(path)], terminal_width=200)
    return result.exit_code, " ".join(result.output.split())


def _stop(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def test_a_half_written_probe_beside_its_live_writer_is_in_progress_not_a_problem(tmp_path):
    path = tmp_path / "s.zarr"
    _store_with_a_task(path)
    pid = _writer(path, _half_written_probe)
    try:
        code, out = _check(path)
    finally:
        _stop(pid)
    assert code == 0, out
    assert f"pid {pid} is writing the store" in out and "probe 1 is incomplete" in out and "problem:" not in out, out
    code, out = _check(path)        # the writer is gone: now it is a problem (repaired by the next writer)
    assert code == 4 and "problem: task t1: probe 1 is incomplete" in out, out


def test_checks_during_a_busy_writer_never_report_a_problem(tmp_path):
    path = tmp_path / "s.zarr"
    _store_with_a_task(path)
    pid = _writer(path, _cycling)
    try:
        results = [_check(path) for _ in range(150)]
    finally:
        _stop(pid)
    bad = [out for code, out in results if code != 0 or "problem:" in out]
    assert not bad, bad[:3]
    assert any(f"pid {pid} is writing the store" in out for _, out in results)


def test_bad_data_beside_a_live_writer_is_still_a_problem(tmp_path):
    path = tmp_path / "s.zarr"
    _store_with_a_task(path)
    import zarr

    zarr.open_array(str(path / "tasks" / "t1" / "fisher" / "0"), mode="r+")[0] = np.nan
    pid = _writer(path, _half_written_probe)
    try:
        code, out = _check(path)
    finally:
        _stop(pid)
    assert code == 4 and "Fisher vector 0 holds NaN" in out, out
