"""`tanas-tui run` against a Ray cluster started as a separate process (`ray start --head --port=0 --block`): the same
dictionary, genotypes and result as a local run; and a bad address fails at once with a clear error, exit code 2
and nothing written."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("ray", reason="the ray extra (pip install 'tanas-tui[ray]') is part of .[test]")
pytestmark = pytest.mark.slow   # a Ray head per module plus one more: `-m "not slow"` leaves them out

from store import Store  # noqa: E402
from tanas_tui.cli import app  # noqa: E402
from tanas_tui.exitcodes import ExitCode  # noqa: E402
from tests.synthetic import tiny_project  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = tiny_project(store="{store}", tasks=("circle", "square"))
runner = CliRunner()


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TANAS_", "RAY_ADDRESS"))}
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    # a throwaway cluster on 127.0.0.1 for this test: no token (Ray 2.5x enables token auth for new clusters)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", RAY_AUTH_MODE="disabled")
    return env


@pytest.fixture(scope="module")
def head(head_process):
    return head_process[0]


def _start_head() -> tuple[str, subprocess.Popen]:
    """A Ray head (`ray start --head --port=0 --block`) in its own process group; (address, process)."""
    ray_cli = Path(sys.executable).with_name("ray")
    proc = subprocess.Popen([str(ray_cli), "start", "--head", "--port=0", "--num-cpus=2", "--num-gpus=0",
                             "--include-dashboard=false", "--block", "--disable-usage-stats"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(),
                            start_new_session=True)
    address, seen = None, []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and address is None:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        m = re.search(r"--address='([^']+)'", line)
        if m:
            address = m.group(1)
    if address is None:
        _stop_head(proc)
        raise AssertionError("ray start printed no address:\n" + "".join(seen[-20:]))
    return address, proc


def _stop_head(proc: subprocess.Popen) -> None:
    """Ends a head by its process group (SIGTERM to `ray start --block` stops its cluster)."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture(scope="module")
def head_process():
    address, proc = _start_head()
    yield address, proc
    _stop_head(proc)


def _summary(path: Path) -> dict:
    with Store.open(path, "r") as st:
        m = st.distances("fisher")
        return {"ids": m.ids, "value": m.value, "genotypes": {t["name"]: t.get("genotype_hash") for t in st.list_tasks()},
                "results": {s["id"]: (s["result"]["hash"], s["result"]["test_error"]) for s in st.list_searches()}}


def test_run_on_a_separate_ray_cluster_equals_local(head, tmp_path):
    (tmp_path / "local.toml").write_text(TINY.format(store="local.zarr"))
    (tmp_path / "ray.toml").write_text(TINY.format(store="ray.zarr"))
    local = runner.invoke(app, ["run", str(tmp_path / "local.toml")])
    assert local.exit_code == 0, local.output
    proc = subprocess.run([sys.executable, "-c", "from tanas_tui.cli import main; main()", "run",
                           str(tmp_path / "ray.toml"), "--executor", "ray", "--address", head], capture_output=True, text=True, env=_env(),
                          timeout=400, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert re.search(r"ray: 1 node, [\d.]+/2 CPUs, 0/0 GPUs busy: \d+ probe units", proc.stdout)
    a, b = _summary(tmp_path / "local.zarr"), _summary(tmp_path / "ray.zarr")
    assert a["ids"] == b["ids"] and not np.isnan(b["value"]).any()
    np.testing.assert_allclose(b["value"], a["value"], atol=1e-6)
    assert a["genotypes"] == b["genotypes"] and a["results"] == b["results"]


def test_bad_address_fails_fast_with_exit_2_and_writes_nothing(tmp_path):
    (tmp_path / "t.toml").write_text(TINY.format(store="bad.zarr"))
    t0 = time.monotonic()
    result = runner.invoke(app, ["run", str(tmp_path / "t.toml"), "--executor", "ray", "--address", "127.0.0.1:1"])
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "executor.address" in result.output and "cannot reach the Ray cluster at '127.0.0.1:1'" in result.output
    assert time.monotonic() - t0 < 60
    if (tmp_path / "bad.zarr").exists():
        with Store.open(tmp_path / "bad.zarr", "r") as st:
            assert st.task_ids() == [] and st.list_searches() == []


def _cli(*args: str) -> list[str]:
    # Ctrl-C raises KeyboardInterrupt as at a terminal, even when pytest itself was started in the background by a
    # non-interactive shell (which ignores SIGINT, and an ignored signal stays ignored across exec)
    return [sys.executable, "-c", "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from tanas_tui.cli import main; main()", *args]


def _slow(store: str, epochs: int = 60) -> str:
    return TINY.format(store=store).replace("max_epochs = 1", f"max_epochs = {epochs}\nmin_epochs = {epochs}")


def _until(job: subprocess.Popen, pattern: str, lines: list[str]) -> None:
    """Reads the job's output into `lines` until a line matches `pattern`."""
    for line in job.stdout:
        lines.append(line)
        if re.search(pattern, line):
            return
    raise AssertionError(f"the job ended before {pattern!r}:\n" + "".join(lines)[-3000:])


def _cluster_busy_cpus(address: str) -> float:
    """CPUs in use on the cluster, read by a separate driver once nothing is pending for 1 s (at most 30 s)."""
    code = ("import ray, time; ray.init(address=%r, include_dashboard=False, logging_level='ERROR', "
            "log_to_driver=False)\n"
            "deadline = time.monotonic() + 30\n"
            "while time.monotonic() < deadline:\n"
            "    busy = ray.cluster_resources()['CPU'] - ray.available_resources().get('CPU', 0)\n"
            "    if busy == 0: break\n"
            "    time.sleep(0.5)\n"
            "print('BUSY', busy)" % address)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=120)
    m = re.search(r"BUSY ([\d.]+)", proc.stdout)
    assert m, proc.stdout[-2000:] + proc.stderr[-2000:]
    return float(m.group(1))


def test_ctrl_c_stops_the_job_cancels_its_units_and_leaves_the_store_sound(head, tmp_path):
    """SIGINT to `tanas-tui run --executor ray`'s process group (a terminal's Ctrl-C) while probe units run on the
    cluster: a prompt exit 130 with a clear message, a store that checks clean, and no unit left on the cluster."""
    (tmp_path / "int.toml").write_text(_slow("int.zarr", 400))
    job = subprocess.Popen(_cli("run", str(tmp_path / "int.toml"), "--executor", "ray", "--address", head),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(), cwd=tmp_path,
                           start_new_session=True)
    lines: list[str] = []
    try:
        _until(job, r"probe \S+ epoch \d+/400", lines)   # units are running on the cluster
        t0 = time.monotonic()
        os.killpg(job.pid, signal.SIGINT)
        out, _ = job.communicate(timeout=60)
        seconds = time.monotonic() - t0
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    text = "".join(lines) + out
    assert job.returncode == ExitCode.INTERRUPTED, text[:2000] + "\n[...]\n" + text[-1500:]
    assert seconds < 20, f"took {seconds:.1f} s to stop"
    assert "cancelled the job's outstanding Ray units" in text and "error: interrupted" in text, text[-3000:]
    check = runner.invoke(app, ["store", "check", "--store", str(tmp_path / "int.zarr")])
    assert check.exit_code == 0, check.output
    assert _cluster_busy_cpus(head) == 0   # every unit of the interrupted job is gone from the cluster


def test_lost_cluster_fails_the_job_and_a_rerun_on_a_new_cluster_resumes(head_process, tmp_path):
    """Runs last in this module: kills the head (its whole process group) once the first probe is stored while other
    units run on it: exit 5 with a clear message. A new head, the same command with its address: the re-run submits
    only the probes the store lacks, and the distances equal an uninterrupted local run within 1e-6."""
    address, proc = head_process
    # three base tasks' probes on the cluster's two CPUs: when the first is stored, the third is still training
    config = _slow("lost.zarr", 30) + '\n[[tasks]]\nname = "triangle"\nsource = "sketches"\npositive = ["triangle"]\n'
    (tmp_path / "lost.toml").write_text(config)
    (tmp_path / "local.toml").write_text(config.replace("lost.zarr", "local.zarr"))
    job = subprocess.Popen(_cli("run", str(tmp_path / "lost.toml"), "--executor", "ray", "--address", address),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(), cwd=tmp_path)
    lines: list[str] = []
    try:
        _until(job, r"probe \S+ done", lines)   # one probe is in the store, others are running
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = job.communicate(timeout=120)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    text = "".join(lines) + out
    assert job.returncode == ExitCode.JOB_FAILED, text[-3000:]
    assert "lost the Ray cluster at" in text and "run the job again when the cluster is back" in text
    check = runner.invoke(app, ["store", "check", "--store", str(tmp_path / "lost.zarr")])
    assert check.exit_code == 0, check.output
    with Store.open(tmp_path / "lost.zarr", "r") as st:
        stored = {t: st.has_probe(t, 0) for t in st.task_ids()}
        before = {t: st.load_probe(t, 0) for t, has in stored.items() if has}
    assert len(stored) == 3 and 1 <= len(before) < 3, stored

    new_address, new_proc = _start_head()
    try:
        rerun = subprocess.run(_cli("run", str(tmp_path / "lost.toml"), "--executor", "ray", "--address", new_address),
                               capture_output=True, text=True, env=_env(), timeout=400, cwd=tmp_path)
    finally:
        _stop_head(new_proc)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    m = re.search(r"ray: 1 node, [\d.]+/2 CPUs, 0/0 GPUs busy: (\d+) probe units", rerun.stdout)
    assert m and int(m.group(1)) == 3 - len(before), rerun.stdout[-3000:]   # stored probes are not trained again
    local = runner.invoke(app, ["run", str(tmp_path / "local.toml")])
    assert local.exit_code == 0, local.output
    a, b = _summary(tmp_path / "local.zarr"), _summary(tmp_path / "lost.zarr")
    assert a["ids"] == b["ids"] and not np.isnan(b["value"]).any()
    np.testing.assert_allclose(b["value"], a["value"], atol=1e-6)
    with Store.open(tmp_path / "lost.zarr", "r") as st:
        for t, state in before.items():   # what arrived before the head died is what the store still holds
            for key, value in st.load_probe(t, 0).items():
                np.testing.assert_array_equal(value, state[key])
