"""`attach` and the UI on a store somebody else writes (issue 11 items 2 and 6): a headless `tanas-tui run` (no
engine: followed through the store's records, with the writer's pid named) and an engine (history from the store
first, then the live job with its current stage)."""
from __future__ import annotations

import time

import pytest
from typer.testing import CliRunner

from tanas_tui.cli import app
from tanas_tui.client import EngineClient, engine_running, start_engine, stop_engine
from tanas_tui.exitcodes import ExitCode
from ui_fixtures import async_test, build_fixture_store, cell_text, headless_writer, settle

runner = CliRunner()


def test_attach_follows_a_headless_run_through_the_store(tmp_path):
    store = build_fixture_store(tmp_path / "store.zarr")
    proc = headless_writer(store, steps=4, pause=0.4)
    try:
        result = runner.invoke(app, ["attach", "--store", str(store)])
    finally:
        proc.wait(30)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "so far in" in out and "task moon (target): ready" in out and "search run-00 for moon: done" in out
    assert f"following a headless run (pid {proc.pid}" in out
    assert "search run-01: " in out and "α steps" in out
    assert "search run-01: done, test error 2.50%" in out
    assert f"the run (pid {proc.pid}) let go of the store" in out


def test_attach_with_nothing_running_says_so(tmp_path):
    store = build_fixture_store(tmp_path / "store.zarr")
    result = runner.invoke(app, ["attach", "--store", str(store)])
    assert result.exit_code == 0 and "no engine and no headless run" in result.output   # nothing to wait for


@async_test
async def test_ui_names_the_headless_writer_and_follows_its_steps(tmp_path):
    from textual.widgets import DataTable

    from tanas_tui.app import TanasApp

    store = build_fixture_store(tmp_path / "store.zarr")
    proc = headless_writer(store, steps=60, pause=0.5)
    try:
        app = TanasApp(store, connect=True)
        async with app.run_test(size=(140, 30)) as pilot:
            await settle(app, pilot)
            await pilot.press("5")
            first = int(cell_text(app.query_one("#runs-table", DataTable), "run-01", "steps"))
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                await pilot.pause(0.3)
                steps = int(cell_text(app.query_one("#runs-table", DataTable), "run-01", "steps"))
                if steps > first + 1:
                    break
            assert steps > first + 1
            assert f"headless run pid {proc.pid}" in app.query_one("#status").render().plain
            assert cell_text(app.query_one("#runs-table", DataTable), "run-01", "status") == "running"
    finally:
        proc.kill()
        proc.wait(10)


@pytest.fixture
def engine_store(tmp_path):
    store = build_fixture_store(tmp_path / "store.zarr")
    yield store
    if engine_running(store) is not None:
        stop_engine(store, timeout=10)


def test_attach_to_an_engine_prints_the_history_and_the_current_stage(engine_store):
    start_engine(engine_store)
    with EngineClient(engine_store) as client:
        client.subscribe()
        job = client.submit("sleep", steps=30, seconds=0.3)
        for ev in client.follow_job(job):
            if getattr(ev, "TYPE", "") == "job_progress" and ev.done >= 2:
                break
    result = runner.invoke(app, ["attach", "--store", str(engine_store)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "so far in" in out and "task mnist-0 (base): ready" in out and "distances (fisher): 30/30 computed" in out
    assert f"attached to job {job} (sleep, sleep " in out
    assert "job sleep ok" in out


@async_test
async def test_reattached_ui_shows_the_stage_and_pause_from_the_status_reply(tmp_path):
    from ui_fixtures import make_app

    app = make_app(build_fixture_store(tmp_path / "store.zarr"))
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(app, pilot)
        from engine.service import protocol as P
        from tanas_tui.link import EngineStatus

        app.post_message(EngineStatus(P.Reply(command="status", data={
            "job": {"id": "j9", "kind": "run_pipeline", "params": {}, "paused": True,
                    "progress": {"stage": "search", "done": 5, "total": 7}}})))
        await settle(app, pilot)
        assert "run_pipeline search 5/7 (paused)" in app.query_one("#status").render().plain
