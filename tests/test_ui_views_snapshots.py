"""Snapshots at 80×24 and 120×40 of the views issue 11 asked for: the distance heat map with its legend, the FUSE
view with axes, the events pane and the genotype picture.

Update after an intended visual change with `pytest tests/test_ui_views_snapshots.py --snapshot-update`."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from test_ui_events import EVENTS
from ui_fixtures import fixture_store, make_app, settle  # noqa: F401

VIEWS = {
    "distances": ("2", "right", "right", "right", "right", "right", "n", "f"),
    "fuse": ("5", "enter"),
    "events": ("6",),
    "genotype": ("5", "enter", "g"),
}


def before(name: str):
    async def run_before(pilot) -> None:
        app = pilot.app
        await settle(app, pilot, 0.3)
        if name == "events":
            app.ingest(EVENTS)
            await settle(app, pilot, 0.2)
        for key in VIEWS[name]:
            await pilot.press(key)
            await settle(app, pilot, 0.2)
        await pilot.pause(0.3)

    return run_before


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
@pytest.mark.parametrize("name", list(VIEWS))
def test_view_snapshot(snap_compare, fixture_store, monkeypatch, name, size):
    monkeypatch.chdir(fixture_store.parent)
    monkeypatch.setenv("TZ", "UTC")    # the events pane shows local times
    time.tzset()
    assert snap_compare(make_app(Path(fixture_store.name)), terminal_size=size, run_before=before(name))
