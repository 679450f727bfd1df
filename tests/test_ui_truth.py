"""Pilot tests: the UI never shows a stale state (issue 11, "Wrong or stale"). Each test fails on the code before
its fix: statuses that follow every event and the engine's presence (item 1), a headless run seen through the store
(item 2), progress within a FUSE weight phase (item 3), real candidate hashes from a round's start (item 4), a live
ETA (item 5), a reattached UI keeps the stage (item 6), columns that widen (item 9)."""
from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from store import Store
from ui_fixtures import async_test, build_fixture_store, cell_text, make_app, settle


def _store(tmp_path: Path) -> Path:
    return build_fixture_store(tmp_path / "store.zarr")


def _status_bar(app) -> str:
    return app.query_one("#status").render().plain


@async_test
async def test_task_status_follows_probe_fisher_and_ready(tmp_path):
    store = _store(tmp_path)
    with Store.open(store, mode="w") as st:
        st.update_task("t-circle", status="training")   # as the engine leaves it while the probe trains
    app = make_app(store)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        table = app.query_one("#tasks", DataTable)
        assert cell_text(table, "t-circle", "status") == "training"
        app.ingest([("probe_progress", {"task_id": "t-circle", "name": "circle", "seed_index": 0, "epoch": 2,
                                        "max_epochs": 8, "val_acc": 0.9, "loss": 0.3})])
        await settle(app, pilot)
        assert cell_text(table, "t-circle", "status").startswith("training 2/8")
        app.ingest([("probe_done", {"task_id": "t-circle", "name": "circle", "val_acc": 0.97, "epochs": 8,
                                    "seconds": 3.0, "representative": True}),
                    ("task_status", {"task_id": "t-circle", "name": "circle", "status": "fisher"})])
        await settle(app, pilot)
        assert cell_text(table, "t-circle", "status") == "fisher"
        with Store.open(store, mode="w") as st:
            st.update_task("t-circle", status="ready")
        app.ingest([("task_status", {"task_id": "t-circle", "name": "circle", "status": "ready"})])
        await settle(app, pilot)
        assert cell_text(table, "t-circle", "status") == "ready"


@async_test
async def test_search_status_follows_pause_resume_stop_and_engine_gone(tmp_path):
    store = _store(tmp_path)
    app = make_app(store)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        run = app.state.searches["run-01"]
        app.ingest([("job_started", {"job": "j1", "kind": "run_pipeline", "params": {}}),
                    ("job_progress", {"job": "j1", "stage": "search", "done": 5, "total": 7}),
                    ("alpha_step", {"run_id": "run-01", "step": run.steps, "round": 0, "alternation": 2,
                                    "alpha": [0.1, 0.2, 0.3], "loss_train": 0.5, "loss_val": 0.6,
                                    "val_acc": [0.8, 0.8, 0.8]})])
        await settle(app, pilot)
        await pilot.press("5")
        await settle(app, pilot)
        runs = app.query_one("#runs-table", DataTable)
        assert cell_text(runs, "run-01", "status") == "running"
        app.ingest([("job_state", {"job": "j1", "state": "paused"})])
        await settle(app, pilot)
        assert cell_text(runs, "run-01", "status") == "paused"
        assert "paused" in _status_bar(app)
        await pilot.press("4")
        await settle(app, pilot)
        assert "paused" in app.query_one("#fuse-header").render().plain
        app.ingest([("job_state", {"job": "j1", "state": "running"})])
        await settle(app, pilot)
        assert "running" in app.query_one("#fuse-header").render().plain
        assert "paused" not in _status_bar(app)
        with Store.open(store, mode="w") as st:
            st.update_search("run-01", status="stopped")   # as FUSE records a stop
        app.ingest([("job_done", {"job": "j1", "kind": "run_pipeline", "status": "stopped"})])
        await settle(app, pilot)
        assert "stopped" in app.query_one("#fuse-header").render().plain
        assert "job idle" in _status_bar(app)

    # a search the store calls running, with no engine and no writer: it was cut off, not running
    app = make_app(build_fixture_store(tmp_path / "other.zarr"))
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        assert app.state.searches["run-01"].status == "running"
        app.set_engine_state("not running")
        await settle(app, pilot)
        await pilot.press("5")
        await settle(app, pilot)
        assert cell_text(app.query_one("#runs-table", DataTable), "run-01", "status") == "interrupted"
        app.set_engine_state("connected")   # an engine came back: the store is the truth again
        app.reload_following()
        await settle(app, pilot)
        assert cell_text(app.query_one("#runs-table", DataTable), "run-01", "status") == "running"


@async_test
async def test_columns_widen_with_live_values_up_to_a_cap(tmp_path):
    store = _store(tmp_path)
    app = make_app(store)
    async with app.run_test(size=(160, 30)) as pilot:
        await settle(app, pilot)
        table = app.query_one("#tasks", DataTable)
        before = table.columns["status"].get_render_width(table)
        app.ingest([("probe_progress", {"task_id": "t-circle", "name": "circle", "seed_index": 1, "epoch": 12,
                                        "max_epochs": 40, "val_acc": 0.912, "loss": 0.3})])
        await settle(app, pilot)
        text = cell_text(table, "t-circle", "status")
        assert text == "training 12/40 seed 1 val 0.912"
        assert table.columns["status"].get_render_width(table) >= len(text) + 2 > before
        app.ingest([("task_added", {"task_id": "t-long", "name": "x" * 80, "role": "base"})])
        await settle(app, pilot)
        name = cell_text(table, "t-long", "name")
        assert name.endswith("…") and len(name) <= 32
        table.move_cursor(row=table.get_row_index("t-long"))
        await settle(app, pilot)
        assert "x" * 80 in app.query_one("#task-detail").render().plain   # the full value in the detail pane
