"""F1: a task is never `ready` on a Fisher vector whose data is not in, and `store check` reads the data it vouches
for (Fisher vectors: written completely, finite, not all zeros, summing to the sum recorded with them; probes:
every parameter there and finite), not only the marks; `--repair` drops what it finds so the next run recomputes it.

A kill right after the Fisher array is created (the window where a full disk also left it, reading as zeros) is
rolled back by the next writer's open: the half-written vector is deleted and the re-run computes it again."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

from store import Store
from tanas_tui.cli import app
from test_faults import TASKS, _dictionary, _killed_at

runner = CliRunner()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A one-task dictionary built without interruption, and its Fisher vector."""
    path = tmp_path_factory.mktemp("built") / "one.zarr"
    with Store.open(path, "w", create=True) as st:
        _dictionary(st).ensure(TASKS[:1])
        tid = st.task_ids()[0]
        return path, tid, st.load_fisher(tid)


def _check(path, *extra):
    result = runner.invoke(app, ["store", "check", "--store", str(path), *extra], terminal_width=200)
    result.text = " ".join(result.output.split())    # the console wraps long lines
    return result


@pytest.mark.parametrize("point", ["fisher-created", "fisher-written"])
def test_a_kill_while_the_fisher_is_written_never_leaves_a_ready_task_on_zeros(tmp_path, built, point):
    _, _, reference = built
    path = tmp_path / "s.zarr"
    _killed_at(point, path, lambda st: _dictionary(st).ensure(TASKS[:1]))
    with Store.open(path) as st:
        tid = st.task_ids()[0]
        assert st.task(tid).get("status") != "ready"
        assert st.fisher_length(tid) is None and st.load_fisher(tid) is None   # half-written: not a Fisher
    found = _check(path)
    assert found.exit_code == 4 and "Fisher vector 0 is incomplete (its write was interrupted)" in found.text
    with Store.open(path, "w") as st:      # the next writer rolls it back, saying so
        assert any("Fisher vector 0, whose write was interrupted" in line for line in st.repaired), st.repaired
        _dictionary(st).ensure(TASKS[:1])
        vec = st.load_fisher(tid)
        assert st.task(tid)["status"] == "ready"
    np.testing.assert_array_equal(vec, reference)
    assert _check(path).exit_code == 0


def _fisher_array(path, tid):
    return zarr.open_array(str(path / "tasks" / tid / "fisher" / "0"), mode="r+")


def _corrupt_copy(tmp_path, built, how):
    src, tid, _ = built
    path = tmp_path / "s.zarr"
    shutil.copytree(src, path)
    how(path, tid)
    return path, tid


def _zeros_as_an_older_version_left_them(path, tid):
    arr = _fisher_array(path, tid)
    arr[...] = 0
    arr.attrs.put({})


def _nan(path, tid):
    arr = _fisher_array(path, tid)
    arr[0] = np.nan


def _lost_chunk(path, tid):
    arr = _fisher_array(path, tid)
    arr[: arr.shape[0] // 2] = 0


def _nan_probe(path, tid):
    probe = zarr.open_group(str(path / "tasks" / tid / "probe" / "0"), mode="r+")
    name, arr = next(iter(probe.arrays()))
    if arr.dtype.kind != "f":
        name, arr = next((n, a) for n, a in probe.arrays() if a.dtype.kind == "f")
    arr[(0,) * arr.ndim] = np.inf


@pytest.mark.parametrize("how,finding", [
    (_zeros_as_an_older_version_left_them, "Fisher vector 0 sums to zero"),
    (_nan, "Fisher vector 0 holds NaN or infinite entries"),
    (_lost_chunk, "recorded when it was written (data lost)"),
    (_nan_probe, "probe 0 has NaN or infinite values"),
])
def test_store_check_reads_the_data_and_repair_lets_the_next_run_recompute_it(tmp_path, built, how, finding):
    path, tid = _corrupt_copy(tmp_path, built, how)
    found = _check(path)
    assert found.exit_code == 4 and finding in found.text and "--repair" in found.text, found.output
    fixed = _check(path, "--repair")
    assert fixed.exit_code == 0 and "repaired:" in fixed.output, fixed.output
    with Store.open(path, "w") as st:
        assert st.task(tid)["status"] != "ready"
        _dictionary(st).ensure(TASKS[:1])
        assert st.task(tid)["status"] == "ready"
        vec = st.load_fisher(tid)
        assert np.isfinite(vec).all() and vec.sum() > 0
    assert _check(path).exit_code == 0


def test_a_full_disk_while_the_fisher_is_written_leaves_no_ready_task_and_the_rerun_recovers(tmp_path, built,
                                                                                           monkeypatch):
    """The F1 window as a full filesystem meets it: the Fisher array exists, its data write fails with ENOSPC."""
    _, _, reference = built
    path = tmp_path / "s.zarr"
    monkeypatch.setenv("TANAS_FAULT", "fisher-created!enospc")
    with Store.open(path, "w", create=True) as st:
        with pytest.raises(OSError, match="No space left on device"):
            _dictionary(st).ensure(TASKS[:1])
        tid = st.task_ids()[0]
        assert st.task(tid).get("status") != "ready" and st.load_fisher(tid) is None
    monkeypatch.delenv("TANAS_FAULT")
    found = _check(path)
    assert found.exit_code == 4 and "Fisher vector 0 is incomplete" in found.text
    with Store.open(path, "w") as st:
        _dictionary(st).ensure(TASKS[:1])
        assert st.task(tid)["status"] == "ready"
        np.testing.assert_array_equal(st.load_fisher(tid), reference)
    assert _check(path).exit_code == 0
