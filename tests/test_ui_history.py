"""History in the app (issue 23 item 11, item 8's toast): the Jobs view keeps the jobs that ended, with their
duration and failure reason, also once no engine runs; a notification when a job ends or fails, with the reason."""
from __future__ import annotations

from textual.widgets import DataTable

from engine.service import protocol as P
from tanas_tui.components.jobs_view import JobsScreen
from ui_fixtures import async_test, cell_text, event, fixture_store, make_app, settle  # noqa: F401

REASON = "ResumeMismatch: run moon-0 was started with rounds = 2, the config now says 6"


@async_test
async def test_ended_jobs_stay_in_the_jobs_view_with_duration_and_reason(fixture_store):
    app = make_app(fixture_store)
    seen: list[tuple[str, str]] = []
    async with app.run_test(size=(160, 30)) as pilot:
        await settle(app, pilot)
        notify = app.notify
        app.notify = lambda message, **kw: (seen.append((message, kw.get("severity", ""))), notify(message, **kw))
        app.ingest([event(P.JobStarted, job="start_search-a", kind="start_search", params={"run_id": "moon-0"}),
                    event(P.JobDone, job="start_search-a", kind="start_search", params={}, status="failed",
                          message=REASON, seconds=3.2),
                    event(P.JobStarted, job="compute_distances-b", kind="compute_distances", params={}),
                    event(P.JobDone, job="compute_distances-b", kind="compute_distances", params={}, status="ok",
                          seconds=75.0)])
        await settle(app, pilot)
        assert (f"job start_search-a failed after 3s: {REASON}", "error") in seen, seen
        assert ("job compute_distances-b done after 1m15s", "information") in seen, seen
        await pilot.press("j")                   # no engine runs: the history still opens
        await settle(app, pilot)
        assert isinstance(app.screen, JobsScreen)
        table = app.screen.query_one("#jobs-table", DataTable)
        assert [table.coordinate_to_cell_key((i, 0)).row_key.value for i in range(table.row_count)] == [
            "compute_distances-b", "start_search-a"]
        assert cell_text(table, "start_search-a", "state") == "failed"
        assert cell_text(table, "start_search-a", "took") == "3s"
        assert cell_text(table, "start_search-a", "reason") == REASON
        assert cell_text(table, "compute_distances-b", "took") == "1m15s"
        assert cell_text(table, "compute_distances-b", "reason") == ""
