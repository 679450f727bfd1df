"""SIGTERM (what SLURM, Kubernetes and `timeout` send first) stops a headless `tanas-tui run` at its next safe point,
like Ctrl-C: exit 143 with a message saying so, the store sound, and the same command goes on from there."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from typer.testing import CliRunner

from tanas_tui.cli import app
from tests.synthetic import tiny_project

CLI = "import sys; from tanas_tui.cli import main; sys.argv[0] = 'tanas-tui'; main()"


def test_sigterm_stops_a_headless_run_and_a_rerun_resumes(tmp_path):
    (tmp_path / "tanas.toml").write_text(tiny_project(search="compare = false\n"))
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", CLI, "run", "tanas.toml"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    started = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)
            if "probe" in line:          # the job runs: the handler is in place and there is work to stop
                started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert started.wait(240), "".join(lines) + proc.stderr.read()
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(240)
        waited = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(10)
    err = proc.stderr.read()
    out = "".join(lines)
    assert code == 143, (code, out, err)
    assert "terminated (SIGTERM)" in err and "goes on from there" in err, err
    assert "stopping at the next safe point" in out and "job run_pipeline stopped" in out, out
    assert "Traceback" not in err and "Traceback" not in out
    assert waited < 240

    runner = CliRunner()
    checked = runner.invoke(app, ["store", "check", "--store", str(tmp_path / "store.zarr")])
    assert checked.exit_code == 0 and "ok" in checked.output, checked.output
    again = runner.invoke(app, ["run", str(tmp_path / "tanas.toml")])
    assert again.exit_code == 0, again.output
    assert "Result: moon" in again.output
