"""Snapshots at 60×20, 80×24 and 120×40 of the views issue 23 asked for: the full-screen compare view, the
Dictionary at narrow widths (whole columns only) and the log pane.

Update after an intended visual change with `pytest tests/test_ui_issue23_snapshots.py --snapshot-update`."""
from __future__ import annotations

from pathlib import Path

import pytest

from result_fixtures import build_compare_store
from ui_fixtures import fixture_store, make_app, settle  # noqa: F401

SIZES = [(60, 20), (80, 24), (120, 40)]
SIZE_IDS = ["60x20", "80x24", "120x40"]


def before(keys: tuple[str, ...]):
    async def run_before(pilot) -> None:
        app = pilot.app
        await settle(app, pilot, 0.3)
        for key in keys:
            await pilot.press(key)
            await settle(app, pilot, 0.2)
        await pilot.pause(0.3)

    return run_before


@pytest.fixture(scope="module")
def compare_store(tmp_path_factory) -> Path:
    return build_compare_store(tmp_path_factory.mktemp("cmp-snap") / "compare.zarr")


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_compare_view_snapshot(snap_compare, compare_store, monkeypatch, size):
    monkeypatch.chdir(compare_store.parent)
    assert snap_compare(make_app(Path(compare_store.name)), terminal_size=size, run_before=before(("c", "down", "down")))


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_dictionary_snapshot(snap_compare, fixture_store, monkeypatch, size):
    monkeypatch.chdir(fixture_store.parent)
    assert snap_compare(make_app(Path(fixture_store.name)), terminal_size=size, run_before=before(()))


@pytest.fixture(scope="module")
def log_store(tmp_path_factory) -> Path:
    from test_ui_log_pane import log_store as build

    return build(tmp_path_factory.mktemp("log-snap") / "store.zarr")


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_log_pane_snapshot(snap_compare, log_store, monkeypatch, size):
    monkeypatch.chdir(log_store.parent)
    assert snap_compare(make_app(Path(log_store.name)), terminal_size=size, run_before=before(("l", "w")))
