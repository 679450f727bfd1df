"""The events pane (issue 11 item 15): every info / warning / error event with its time, filterable by text and by
level; warnings stay listed after their toasts."""
from __future__ import annotations

from textual.widgets import DataTable, Input

from engine.service import protocol as P
from tanas_tui.event_log import EventLog
from ui_fixtures import async_test, cell_text, event, fixture_store, make_app, pretend_engine, settle  # noqa: F401

EVENTS = [
    event(P.JobStarted, job="j1", kind="compute_distances", params={}),
    event(P.ProbeProgress, task_id="t-moon", name="moon", seed_index=0, epoch=1, max_epochs=3, val_acc=0.5, loss=1.0),
    event(P.ProbeDone, task_id="t-moon", name="moon", val_acc=0.81, epochs=3, seconds=1.0, representative=False),
    event(P.Distance, method="fisher", source="t-circle", target="t-moon", value=0.09, std=0.0),
    event(P.Warning, message="search run-01 collapsed onto one candidate", code="collapse"),
    event(P.Log, message="space built from 3 nearest tasks", level="info"),
    event(P.Error, message="CUDA out of memory", code="internal", job="j1"),
    event(P.JobDone, job="j1", kind="compute_distances", params={}, status="failed"),
]


def test_event_log_keeps_what_is_worth_reading():
    log = EventLog()
    log.add_many(EVENTS, now=100.0)
    kinds = [e.kind for e in log.entries]
    assert kinds == ["job_started", "probe_done", "warning", "log", "error", "job_done"]   # no per-step events
    assert log.counts() == {"info": 2, "warning": 2, "error": 2}
    assert "NOT epsilon-representative" in log.entries[1].message and "81.0%" in log.entries[1].message


@async_test
async def test_events_pane_lists_filters_and_keeps_warnings(fixture_store):
    app = make_app(fixture_store)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        app.ingest(EVENTS)
        await pilot.pause(0.3)
        await pilot.press("6")
        await settle(app, pilot)
        table = app.query_one("#events-table", DataTable)
        assert table.row_count == 6
        assert app.focused is table
        row = str(list(table.rows)[2].value)
        assert cell_text(table, row, "level") == "warning" and "collapsed" in cell_text(table, row, "message")
        assert ":" in cell_text(table, row, "time")
        # level filter: warnings and errors, then errors only, then all again
        await pilot.press("w")
        await pilot.pause()
        assert table.row_count == 4
        await pilot.press("w")
        await pilot.pause()
        assert table.row_count == 2
        await pilot.press("w")
        await pilot.pause()
        # text filter; enter returns focus to the list
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press(*"moon")
        await pilot.pause()
        assert table.row_count == 1 and "moon" in cell_text(table, str(list(table.rows)[0].value), "message")
        await pilot.press("enter")
        await pilot.pause()
        assert app.focused is table
        header = app.query_one("#events-header").render().plain
        assert "2 warnings" in header and "2 errors" in header


@async_test
async def test_stop_asks_first_and_shows_stopping_until_the_job_ends(fixture_store):
    from tanas_tui.components.dialogs import ConfirmScreen

    log: list = []
    app = make_app(fixture_store, log)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("4")
        await settle(app, pilot)
        app.ingest([event(P.JobStarted, job="j9", kind="start_search", params={"run_id": "run-01"})])
        await pilot.pause(0.3)
        await pretend_engine(app, pilot)
        app.query_one("#candidates").focus()
        header = app.query_one("#fuse-header")
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")                    # keep running: nothing sent
        await settle(app, pilot)
        assert log == [] and "running" in header.render().plain
        await pilot.press("s")
        await pilot.pause()
        await pilot.press("y")
        await settle(app, pilot)
        assert log == [("stop", {"job": "j9"})]
        assert "stopping…" in header.render().plain      # the engine accepted; the job has not ended yet
        app.ingest([event(P.JobDone, job="j9", kind="start_search", params={}, status="stopped")])
        await pilot.pause(0.3)
        assert "stopping…" not in header.render().plain


@async_test
async def test_pausing_shows_until_the_job_reaches_its_pause(fixture_store):
    """The engine's reply only says the pause is asked for; the job blocks at its next safe point (job_state)."""
    import asyncio

    app = make_app(fixture_store)
    gate = asyncio.Event()

    class SlowClient:
        async def connect(self):
            return self

        async def close(self):
            pass

        async def request(self, command):
            await gate.wait()
            return P.Reply(command=command.TYPE, id=command.id, data={"job": "j1", "paused": True})

    app.link._client_factory = lambda path: SlowClient()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("4")
        await settle(app, pilot)
        await pretend_engine(app, pilot)
        app.query_one("#candidates").focus()
        await pilot.press("p")
        await pilot.pause(0.2)
        header = app.query_one("#fuse-header")
        assert "pausing…" in header.render().plain
        gate.set()
        await pilot.pause(0.3)
        assert "pausing…" in header.render().plain
        app.ingest([event(P.JobState, job="j1", state="paused")])
        await pilot.pause(0.3)
        assert "pausing…" not in header.render().plain and "paused" in header.render().plain
        assert "(paused)" in app.query_one("#status").render().plain
