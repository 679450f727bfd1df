"""The job queue in the UI (issue 11 item 19): `j` lists the engine's running and queued jobs; `x` cancels one after
asking."""
from __future__ import annotations

from textual.widgets import DataTable

from tanas_tui.components.jobs_view import JobsScreen
from engine.service import protocol as P
from ui_fixtures import FROZEN, async_test, cell_text, fixture_store, make_app, pretend_engine, settle  # noqa: F401

STATUS = {"pid": 1, "job": {"id": "run_pipeline-aa", "kind": "run_pipeline", "params": {}, "state": "running",
                            "paused": False, "submitted": FROZEN - 200, "started": FROZEN - 196},
          "queue": [{"id": "start_search-bb", "kind": "start_search", "params": {"target": "moon"},
                     "state": "queued", "paused": False, "submitted": FROZEN - 30, "started": None}]}


class StatusClient:
    def __init__(self, log):
        self.log = log

    async def connect(self):
        return self

    async def close(self):
        pass

    async def request(self, command):
        self.log.append((command.TYPE, {k: v for k, v in command.payload().items() if v is not None and k != "id"}))
        data = STATUS if command.TYPE == "status" else {"job": command.payload().get("job"), "state": "removed"}
        return P.Reply(command=command.TYPE, id=command.id, data=data)


@async_test
async def test_jobs_view_lists_and_cancels(fixture_store):
    log: list = []
    app = make_app(fixture_store)
    app.link._client_factory = lambda path: StatusClient(log)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("j")
        await pilot.pause()
        assert not isinstance(app.screen, JobsScreen)      # no engine: nothing to list
        await pretend_engine(app, pilot)
        await pilot.press("j")
        await pilot.pause(0.3)
        assert isinstance(app.screen, JobsScreen)
        table = app.screen.query_one("#jobs-table", DataTable)
        assert table.row_count == 2
        assert cell_text(table, "run_pipeline-aa", "state") == "running"
        assert cell_text(table, "run_pipeline-aa", "since") == "started 3m16s ago"
        assert cell_text(table, "start_search-bb", "state") == "queued #1"
        table.move_cursor(row=1)
        await pilot.press("x")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause(0.3)
        assert ("stop", {"job": "start_search-bb"}) in log
