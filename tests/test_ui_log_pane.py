"""The log pane (issue 23 item 11): the engine's log full screen, filtered by level and text, searched (n: next
match), following the end as lines arrive; one run's log from the Runs tab."""
from __future__ import annotations

import time

import pytest
from textual.widgets import Input

from tanas_tui.client import engine_log_path
from tanas_tui.components.log_pane import LogScreen
from ui_fixtures import async_test, build_fixture_store, make_app, settle

LOG = """2024-01-02 03:04:05 INFO engine pid 4242 serving store.zarr (config tanas.toml)
2024-01-02 03:04:06 INFO queued start_search-0a1b {'run_id': 'run-00', 'target': 'moon'}
2024-01-02 03:04:06 INFO job start_search-0a1b started
2024-01-02 03:04:09 WARNING task square is not epsilon-representative (val acc 94.2% < 95.0%)
2024-01-02 03:05:10 INFO job start_search-0a1b done
2024-01-02 03:05:11 INFO queued compute_distances-77ff {'method': 'fisher'}
2024-01-02 03:05:11 INFO job compute_distances-77ff started
2024-01-02 03:05:12 ERROR job compute_distances-77ff failed:
Traceback (most recent call last):
  File "engine/similarity/fisher.py", line 120, in fisher
RuntimeError: out of memory
2024-01-02 03:05:13 INFO queued start_search-9c9c {'run_id': 'run-01', 'target': 'moon'}
"""


def log_store(path):
    build_fixture_store(path)
    log = engine_log_path(path)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(LOG)
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return log_store(tmp_path_factory.mktemp("log") / "store.zarr")


def shown(screen) -> list[str]:
    return [text for _, text in screen.shown]


@async_test
async def test_log_pane_filters_searches_and_follows(tmp_path):
    path = log_store(tmp_path / "store.zarr")
    app = make_app(path)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("l")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, LogScreen) and screen.source == "engine"
        assert len(screen.shown) == len(LOG.splitlines())
        await pilot.press("w")                                   # warnings and errors: the traceback goes along
        await pilot.pause()
        assert shown(screen)[0].startswith("2024-01-02 03:04:09 WARNING") and "RuntimeError: out of memory" in \
            shown(screen)[-1]
        await pilot.press("w", "w")                              # back to all levels
        await pilot.press("ampersand")
        await pilot.pause()
        assert isinstance(app.focused, Input)
        app.focused.value = "start_search-0a1b"
        await pilot.press("enter")
        await pilot.pause()
        assert len(shown(screen)) == 3 and all("start_search-0a1b" in t for t in shown(screen))
        await pilot.press("ampersand")
        app.focused.value = ""
        await pilot.press("enter")
        await pilot.press("slash")
        await pilot.pause()
        app.focused.value = "queued"
        await pilot.press("enter")
        await pilot.pause()
        assert screen.matches == [1, 5, 11] and screen._match == 0 and not screen.follow
        assert "1/3 matches for 'queued'" in screen.query_one("#log-header").text.plain
        await pilot.press("n", "n")
        assert screen._match == 2
        await pilot.press("n")
        assert screen._match == 0
        await pilot.press("f")                                   # follow again: new lines arrive at the end
        with open(engine_log_path(path), "a") as f:
            f.write("2024-01-02 03:06:00 INFO job start_search-9c9c started\n")
        await pilot.pause(1.5)
        assert shown(screen)[-1].endswith("job start_search-9c9c started") and screen.follow
        body = screen.query_one("#log-body")
        assert body.scroll_y == body.max_scroll_y


@async_test
async def test_run_log_holds_the_runs_lines_and_its_jobs(store):
    app = make_app(store)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("5")
        await settle(app, pilot)
        runs = app.query_one("#runs-table")
        runs.move_cursor(row=[runs.coordinate_to_cell_key((i, 0)).row_key.value
                              for i in range(runs.row_count)].index("run-00"))
        await pilot.press("l")
        await settle(app, pilot)
        screen = app.screen
        assert screen.source == "run" and screen.run_id == "run-00"
        assert [t[20:] for t in shown(screen)] == [
            "INFO queued start_search-0a1b {'run_id': 'run-00', 'target': 'moon'}",
            "INFO job start_search-0a1b started", "INFO job start_search-0a1b done"]
        await pilot.press("s")                                   # the engine's whole log
        await pilot.pause()
        assert screen.source == "engine" and len(screen.shown) == len(LOG.splitlines())
