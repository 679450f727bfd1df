"""A job sent to an engine that is busy with another one (issue 23 item 9): the command says which job it waits
behind, and shows only its own job's events, not the other job's progress broadcast meanwhile."""
from __future__ import annotations

import threading
import time

import pytest
from typer.testing import CliRunner

from engine.service import protocol as P
from tanas_tui.cli import app
from tanas_tui.client import EngineClient, engine_running, start_engine, stop_engine
from tanas_tui.common import load_cli_config
from tanas_tui.runner import job_result, run_job
from ui_fixtures import build_fixture_store

runner = CliRunner()


@pytest.fixture
def busy_engine(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = build_fixture_store(tmp_path / "store.zarr")
    start_engine(store)

    def busy() -> str:
        """A long job ahead, stopped as soon as another job waits behind it (the test need not wait it out)."""
        with EngineClient(store) as client:
            job = client.submit("sleep", steps=400, seconds=0.1)

        def stop_when_queued() -> None:
            with EngineClient(store) as client:
                deadline = time.monotonic() + 60
                while not client.status()["queue"] and time.monotonic() < deadline:
                    time.sleep(0.1)
                time.sleep(0.5)    # the queued job's command prints what it waits behind
                client.request("stop", job=job)

        threading.Thread(target=stop_when_queued, daemon=True).start()
        return job

    yield store, busy
    if engine_running(store) is not None:
        stop_engine(store, timeout=10)


def test_a_queued_job_names_the_job_ahead_and_shows_only_its_own_events(busy_engine, capsys):
    store, busy = busy_engine
    other = busy()
    seen: list[P.Event] = []
    done = run_job("sleep", load_cli_config(None, store, check_classes=False), on_event=seen.append, steps=2)
    assert job_result(done) == {"steps": 2}
    out = capsys.readouterr().out
    assert f"queued behind job {other} (sleep" in out and "only this job's own progress" in out
    assert "running the job there" not in out
    jobs = {ev.job for ev in seen if hasattr(ev, "job")}
    assert jobs == {done.job}, jobs                    # the other job's progress and its job_done are left out
    progress = [ev for ev in seen if isinstance(ev, P.JobProgress)]
    assert [ev.done for ev in progress] == [1, 2]
    assert isinstance(seen[0], P.JobStarted) and seen[0].job == done.job


def test_cli_command_behind_a_running_job_says_queued_behind(busy_engine):
    store, busy = busy_engine
    other = busy()
    result = runner.invoke(app, ["searches", "remove", "run-00", "--yes", "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert f"queued behind job {other} (sleep" in result.output and "deleting it there" not in result.output
    assert "deleted search run-00" in result.output
