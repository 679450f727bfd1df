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

from store import Store  # noqa: E402
from tanas_tui.cli import app  # noqa: E402
from tanas_tui.exitcodes import ExitCode  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = """
[project]
store = "{store}"
device = "cpu"
threads = 1
seed = 0

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
rounds = 1
candidates = 2
alternations = 1
batch_size = 64
final_epochs = 1

[sources.sketches]
per_class = 24
seed = 0

[[tasks]]
name = "circle"
source = "sketches"
positive = ["circle"]

[[tasks]]
name = "square"
source = "sketches"
positive = ["square"]

[target]
name = "moon"
source = "sketches"
positive = ["moon"]
"""
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


@pytest.fixture(scope="module")
def head_process():
    """A Ray head in its own process group; ended by its pid (SIGTERM to `ray start --block` stops its cluster)."""
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
    assert address, "ray start printed no address:\n" + "".join(seen[-20:])
    yield address, proc
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


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


def test_lost_cluster_fails_the_job_with_exit_5(head_process, tmp_path):
    """Runs last in this module: kills the head (its whole process group) while a job is running on it."""
    address, proc = head_process
    slow = TINY.format(store="lost.zarr").replace("max_epochs = 1", "max_epochs = 60\nmin_epochs = 60")
    (tmp_path / "lost.toml").write_text(slow)
    job = subprocess.Popen([sys.executable, "-c", "from tanas_tui.cli import main; main()", "run",
                            str(tmp_path / "lost.toml"), "--executor", "ray", "--address", address],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(), cwd=tmp_path)
    lines = []
    for line in job.stdout:
        lines.append(line)
        if re.search(r"probe \S+ epoch \d+/60", line):  # units are running on the cluster
            break
    os.killpg(proc.pid, signal.SIGKILL)
    try:
        out, _ = job.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        job.kill()
        out, _ = job.communicate()
        raise AssertionError("the job did not end after the head was killed:\n" + "".join(lines) + out)
    text = "".join(lines) + out
    assert job.returncode == ExitCode.JOB_FAILED, text[-3000:]
    assert "lost the Ray cluster at" in text
