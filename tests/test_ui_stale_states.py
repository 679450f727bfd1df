"""Pilot tests: states the UI showed that were stale or false, each seen by a user (the structure issue's list).

Every test here failed on the code before the typed event path: a job the engine never ran kept the status line,
a stop of a headless search claimed `stopping…`, the Dictionary's detail pane drifted from the highlighted row, the
Distances summary vanished, the Events tab forgot the engine's history, a random search posed as a FUSE run."""
from __future__ import annotations

import asyncio

from textual.widgets import DataTable, Input

from engine.service import protocol as P
from tanas_tui.client import EngineClient, engine_running, start_engine, stop_engine
from ui_fixtures import (add_random_run, async_test, build_fixture_store, cell_text, event, headless_writer,
                         make_app, settle)


def _status_bar(app) -> str:
    return app.query_one("#status").render().plain


def _text(app, selector: str) -> str:
    return app.query_one(selector).render().plain


@async_test
async def test_a_finished_job_leaves_the_status_line_even_when_a_stage_counter_named_another_job(tmp_path):
    """Random search counts its candidates under its run id; that counter is the running job's, not a job."""
    app = make_app(build_fixture_store(tmp_path / "s.zarr"))
    async with app.run_test(size=(160, 30)) as pilot:
        await settle(app, pilot)
        app.ingest([event(P.JobStarted, job="run_pipeline-1", kind="run_pipeline"),
                    event(P.JobProgress, job="run_pipeline-1", stage="search", done=5, total=7),
                    event(P.JobProgress, job="uci-3-random-1", stage="candidates", done=5, total=5)])
        await settle(app, pilot)
        assert "run_pipeline search 5/7 · candidates 5/5" in _status_bar(app)
        app.ingest([event(P.JobDone, job="run_pipeline-1", kind="run_pipeline", status="ok", seconds=40.0)])
        await settle(app, pilot)
        assert "job idle" in _status_bar(app) and "candidates" not in _status_bar(app)
        app.ingest([event(P.JobStarted, job="start_search-2", kind="start_search"),
                    event(P.JobDone, job="start_search-2", kind="start_search", status="failed", message="boom")])
        await settle(app, pilot)
        assert "job idle" in _status_bar(app) and "candidates" not in _status_bar(app)


@async_test
async def test_stop_on_a_headless_search_says_where_to_stop_it_and_never_claims_stopping(tmp_path):
    store = build_fixture_store(tmp_path / "s.zarr")
    finish = tmp_path / "finish"
    proc = headless_writer(store, steps=600, pause=0.1, until=finish)
    try:
        app = make_app(store)
        app._connect = True   # follow the store as a user's window would
        async with app.run_test(size=(140, 30)) as pilot:
            await settle(app, pilot)
            for _ in range(100):
                if f"pid {proc.pid}" in _status_bar(app):
                    break
                await pilot.pause(0.1)
            await pilot.press("4")
            await settle(app, pilot)
            app.query_one("#candidates").focus()
            seen: list[str] = []
            app.notify = lambda message, **kw: seen.append(message)
            await pilot.press("s")
            await pilot.pause(0.2)
            for _ in range(2):   # a confirmation (stop?) or an offer (start an engine?) is answered as a user would
                if app.screen is not app.screen_stack[0]:
                    await pilot.press("y" if "Stop" in str(app.screen.query("Button").first().label) else "escape")
                    await pilot.pause(0.2)
            assert "stopping…" not in _text(app, "#fuse-header")
            assert any(f"pid {proc.pid}" in m and "Ctrl-C" in m for m in seen), seen
            finish.touch()                        # the headless run goes on to its end
            proc.wait(30)
            for _ in range(100):
                if "done" in _text(app, "#fuse-header"):
                    break
                await pilot.pause(0.1)
            assert "done" in _text(app, "#fuse-header") and "stopping…" not in _text(app, "#fuse-header")
    finally:
        proc.kill()
        proc.wait(10)


def _detail_task(app) -> str:
    return _text(app, "#task-detail")


def _highlighted(table: DataTable) -> str:
    return str(table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value)


@async_test
async def test_the_detail_pane_shows_the_highlighted_task_after_sort_and_filter(tmp_path):
    app = make_app(build_fixture_store(tmp_path / "s.zarr"))
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        table = app.query_one("#tasks", DataTable)
        table.focus()
        await pilot.press("down", "down")          # mnist-3
        await settle(app, pilot)
        assert "(t-mnist3)" in _detail_task(app)
        table.cursor_coordinate = (table.cursor_row, 2)
        await pilot.press("o")                     # sort by val acc
        await settle(app, pilot)
        assert f"({_highlighted(table)})" in _detail_task(app)
        await pilot.press("o")                     # reversed
        await settle(app, pilot)
        assert f"({_highlighted(table)})" in _detail_task(app)
        await pilot.press("slash")
        await pilot.press(*"sketch")
        await settle(app, pilot)
        assert f"({_highlighted(table)})" in _detail_task(app)
        app.query_one("#task-filter", Input).value = ""
        await settle(app, pilot)
        assert f"({_highlighted(table)})" in _detail_task(app)


@async_test
async def test_the_distances_summary_stays_after_switching_the_method_and_back(tmp_path):
    app = make_app(build_fixture_store(tmp_path / "s.zarr", transfer=False))
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("2")
        await settle(app, pilot)
        assert _text(app, "#dist-quality").startswith("fisher: nearest same group")
        await pilot.press("m")
        await settle(app, pilot)
        assert "transfer" in _text(app, "#dist-quality")   # no transfer matrix: the line says so
        await pilot.press("m")
        await settle(app, pilot)
        assert _text(app, "#dist-quality").startswith("fisher: nearest same group")


def _sleep_job(store) -> str:
    with EngineClient(store) as client:
        client.subscribe()
        job = client.submit("sleep", steps=1)
        for ev in client.follow_job(job, timeout=30):
            pass
    return job


@async_test
async def test_the_events_tab_shows_the_engine_history_after_a_restart(tmp_path):
    store = build_fixture_store(tmp_path / "s.zarr")
    try:
        start_engine(store)
        first = _sleep_job(store)
        stop_engine(store)
        start_engine(store)                        # the restart: a new engine, the old one's log kept
        app = make_app(store)
        app._connect = True
        async with app.run_test(size=(140, 30)) as pilot:
            await settle(app, pilot)
            await pilot.press("6")
            for _ in range(100):
                if app.query_one("#events-table", DataTable).row_count and "connected" in _status_bar(app):
                    break
                await pilot.pause(0.1)
            table = app.query_one("#events-table", DataTable)
            messages = [cell_text(table, str(row.value), "message") for row in table.rows]
            assert any(first in m and "started" in m for m in messages), messages
            assert any(first in m and "done" in m for m in messages), messages
            assert any("engine stopped" in m for m in messages), messages
            second = await asyncio.to_thread(_sleep_job, store)   # live events still arrive after the history
            for _ in range(100):
                messages = [cell_text(table, str(row.value), "message") for row in table.rows]
                if any(second in m and "ok" in m for m in messages):
                    break
                await pilot.pause(0.1)
            assert any(second in m and "ok" in m for m in messages), messages
    finally:
        if engine_running(store) is not None:
            stop_engine(store, timeout=10)


@async_test
async def test_a_finished_random_search_opens_as_itself_not_as_an_empty_fuse_run(tmp_path):
    store = build_fixture_store(tmp_path / "s.zarr")
    hashes = add_random_run(store)
    app = make_app(store)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        app.open_run("moon-random-0")
        await settle(app, pilot)
        assert app.query_one("#tabs").active == "fuse"
        header = _text(app, "#fuse-header")
        assert header.startswith("moon-random-0") and "random search" in header and "done" in header
        assert "round" not in _text(app, "#round-label")
        shown = app.query_one("#fuse-plots").display
        assert not shown or all("no data yet" not in app.query_one(p).render().plain for p in ("#alpha-plot", "#loss-plot"))
        table = app.query_one("#candidates", DataTable)
        rows = [str(table.coordinate_to_cell_key((i, 0)).row_key.value) for i in range(table.row_count)]
        assert [r.split(":", 1)[1] for r in rows] == hashes
        assert cell_text(table, rows[-1], "val acc") == "94.0%" and "★" in cell_text(table, rows[-1], "#")
        assert "test error 3.50%" in _text(app, "#fuse-result")
