"""Snapshots of each panel at 100x30 on the deterministic fixture store (frozen clock, no engine).

Update after an intended visual change with `pytest tests/test_ui_snapshots.py --snapshot-update` and look at the
report before committing."""
from __future__ import annotations

from pathlib import Path

import pytest

from ui_fixtures import fixture_store, make_app, settle  # noqa: F401

SIZE = (100, 30)


def before(keys: tuple[str, ...]):
    async def run_before(pilot) -> None:
        app = pilot.app
        await settle(app, pilot, 0.3)
        for key in keys:
            await pilot.press(key)
            await settle(app, pilot, 0.2)
        await pilot.pause(0.3)   # the DataTable sizes its columns when idle

    return run_before


@pytest.mark.parametrize("name, keys", [
    ("dictionary", ()),
    ("distances", ("2", "right", "right", "right", "right", "right", "n")),
    ("space", ("3", "down", "enter", "down", "enter", "down", "enter")),
    ("fuse", ("4",)),
    ("runs", ("5",)),
])
def test_panel_snapshot(snap_compare, fixture_store, monkeypatch, name, keys):
    monkeypatch.chdir(fixture_store.parent)   # the status line shows the store path: keep it the same every run
    assert snap_compare(make_app(Path(fixture_store.name)), terminal_size=SIZE, run_before=before(keys))


def test_help_snapshot(snap_compare, fixture_store, monkeypatch):
    monkeypatch.chdir(fixture_store.parent)
    assert snap_compare(make_app(Path(fixture_store.name)), terminal_size=SIZE, run_before=before(("question_mark",)))
