"""Pilot tests: the UI never shows a stale state (issue 11, "Wrong or stale"). Each test fails on the code before
its fix: statuses that follow every event and the engine's presence (item 1), a headless run seen through the store
(item 2), progress within a FUSE weight phase (item 3), real candidate hashes from a round's start (item 4), a live
ETA (item 5), a reattached UI keeps the stage (item 6), columns that widen (item 9)."""
from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from engine.service import protocol as P
from store import Store
from tanas_tui.link import LinkChanged
from ui_fixtures import async_test, build_fixture_store, cell_text, event, make_app, settle


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
        app.ingest([event(P.ProbeProgress, task_id="t-circle", name="circle", seed_index=0, epoch=2, max_epochs=8, val_acc=0.9, loss=0.3)])
        await settle(app, pilot)
        assert cell_text(table, "t-circle", "status").startswith("training 2/8")
        app.ingest([event(P.ProbeDone, task_id="t-circle", name="circle", val_acc=0.97, epochs=8, seconds=3.0, representative=True),
                    event(P.TaskStatus, task_id="t-circle", name="circle", status="fisher")])
        await settle(app, pilot)
        assert cell_text(table, "t-circle", "status") == "fisher"
        with Store.open(store, mode="w") as st:
            st.update_task("t-circle", status="ready")
        app.ingest([event(P.TaskStatus, task_id="t-circle", name="circle", status="ready")])
        await settle(app, pilot)
        assert cell_text(table, "t-circle", "status") == "ready"


@async_test
async def test_search_status_follows_pause_resume_stop_and_engine_gone(tmp_path):
    store = _store(tmp_path)
    app = make_app(store)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        run = app.model.searches["run-01"]
        app.ingest([event(P.JobStarted, job="j1", kind="run_pipeline", params={}),
                    event(P.JobProgress, job="j1", stage="search", done=5, total=7),
                    event(P.AlphaStep, run_id="run-01", step=run.steps, round=0, alternation=2, alpha=[0.1, 0.2, 0.3], loss_train=0.5, loss_val=0.6, val_acc=[0.8, 0.8, 0.8])])
        await settle(app, pilot)
        await pilot.press("5")
        await settle(app, pilot)
        runs = app.query_one("#runs-table", DataTable)
        assert cell_text(runs, "run-01", "status") == "running"
        app.ingest([event(P.JobState, job="j1", state="paused")])
        await settle(app, pilot)
        assert cell_text(runs, "run-01", "status") == "paused"
        assert "paused" in _status_bar(app)
        await pilot.press("4")
        await settle(app, pilot)
        assert "paused" in app.query_one("#fuse-header").render().plain
        app.ingest([event(P.JobState, job="j1", state="running")])
        await settle(app, pilot)
        assert "running" in app.query_one("#fuse-header").render().plain
        assert "paused" not in _status_bar(app)
        with Store.open(store, mode="w") as st:
            st.update_search("run-01", status="stopped")   # as FUSE records a stop
        app.ingest([event(P.JobDone, job="j1", kind="run_pipeline", status="stopped")])
        await settle(app, pilot)
        assert "stopped" in app.query_one("#fuse-header").render().plain
        assert "job idle" in _status_bar(app)

    # a search the store calls running, with no engine and no writer: it was cut off, not running
    app = make_app(build_fixture_store(tmp_path / "other.zarr"))
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        assert app.model.searches["run-01"].status == "running"
        app.post_message(LinkChanged("not running"))
        await settle(app, pilot)
        await pilot.press("5")
        await settle(app, pilot)
        assert cell_text(app.query_one("#runs-table", DataTable), "run-01", "status") == "interrupted"
        app.post_message(LinkChanged("connected"))   # an engine came back: the store is the truth again
        await pilot.pause()
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
        app.ingest([event(P.ProbeProgress, task_id="t-circle", name="circle", seed_index=1, epoch=12, max_epochs=40, val_acc=0.912, loss=0.3)])
        await settle(app, pilot)
        text = cell_text(table, "t-circle", "status")
        assert text == "training 12/40 seed 1 val 91.2%"
        assert table.columns["status"].get_render_width(table) >= len(text) + 2 > before
        app.ingest([event(P.TaskAdded, task_id="t-long", name="x" * 80, role="base")])
        await settle(app, pilot)
        name = cell_text(table, "t-long", "name")
        from tanas_tui.components.dictionary import NAME_CAP

        assert name.endswith("…") and len(name) <= NAME_CAP   # a name whole up to 64 cells (issue 23 item 4)
        table.move_cursor(row=table.get_row_index("t-long"))
        await settle(app, pilot)
        assert "x" * 80 in app.query_one("#task-detail").render().plain   # the full value in the detail pane


def _text(app, selector: str) -> str:
    return app.query_one(selector).render().plain


@async_test
async def test_a_starting_search_shows_at_once_with_weight_progress_and_stage_counters(tmp_path):
    from ui_fixtures import genotype

    store = _store(tmp_path)
    genos = [genotype(40 + c) for c in range(3)]
    with Store.open(store, mode="w") as st:   # as FUSE registers a search when it starts
        w = st.create_search("genotype-mnist-0", {"kind": "fuse", "target": "t-mnist0", "target_name": "mnist-0",
                                                  "status": "running", "config": {"rounds": 1, "alternations": 2}}, 3)
        w.set_candidates(0, genos, ["g40hash", "g41hash", "g42hash"])
        w.flush()
    app = make_app(store)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("4")
        app.ingest([event(P.JobStarted, job="j1", kind="run_pipeline", params={}),
                    event(P.JobProgress, job="j1", stage="genotypes", done=2, total=7),
                    event(P.JobProgress, job="j1", stage="base task", done=2, total=10),
                    event(P.SearchCandidates, run_id="genotype-mnist-0", round=0, candidates=["g40hash", "g41hash", "g42hash"], genotypes=genos),
                    event(P.WeightProgress, run_id="genotype-mnist-0", round=0, alternation=0, done=5, total=40)])
        await settle(app, pilot)
        assert "genotypes 2/7 · base task 3/10" in _status_bar(app)
        assert _text(app, "#fuse-header").startswith("genotype-mnist-0")   # FUSE follows the running search
        assert "weights 5/40" in _text(app, "#alt-label")
        assert cell_text(app.query_one("#candidates", DataTable), "0:g40hash", "hash") == "g40hash"
        await pilot.press("5")
        await settle(app, pilot)
        assert cell_text(app.query_one("#runs-table", DataTable), "genotype-mnist-0", "status") == "running"
        # pinned: another search starting does not take the panel away
        await pilot.press("4")
        await pilot.press("f")
        with Store.open(store, mode="w") as st:
            w = st.create_search("genotype-mnist-1", {"kind": "fuse", "target": "t-mnist1", "status": "running",
                                                      "config": {"rounds": 1, "alternations": 2}}, 3)
            w.set_candidates(0, genos, ["g40hash", "g41hash", "g42hash"])
            w.flush()
        app.ingest([event(P.SearchCandidates, run_id="genotype-mnist-1", round=0, candidates=["g40hash", "g41hash", "g42hash"], genotypes=genos)])
        await settle(app, pilot)
        assert _text(app, "#fuse-header").startswith("genotype-mnist-0") and "pinned" in _text(app, "#fuse-header")
        await pilot.press("f")
        await settle(app, pilot)
        assert _text(app, "#fuse-header").startswith("genotype-mnist-1")


@async_test
async def test_a_new_round_shows_real_hashes_params_and_the_carried_incumbent(tmp_path):
    from ui_fixtures import genotype

    store = _store(tmp_path)
    app = make_app(store)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("4")
        app.open_run("run-01")
        await settle(app, pilot)
        incumbent = app.model.searches["run-01"].hashes(0)[2]
        genos = [genotype(10 + 3), genotype(70), genotype(71)]
        app.ingest([event(P.SearchCandidates, run_id="run-01", round=1, incumbent=incumbent, candidates=[incumbent, "n70hash", "n71hash"], genotypes=genos)])
        await settle(app, pilot, 0.5)
        table = app.query_one("#candidates", DataTable)
        assert table.border_title == "round 2/2 candidates"
        rows = [table.coordinate_to_cell_key((i, 0)).row_key.value for i in range(table.row_count)]
        assert rows == [f"0:{incumbent}", "1:n70hash", "2:n71hash"]
        assert "↻" in cell_text(table, f"0:{incumbent}", "#")
        for key in rows:
            assert cell_text(table, key, "params") != "—"


@async_test
async def test_eta_comes_from_measured_batches_and_counts_down(tmp_path):
    store = _store(tmp_path)
    app = make_app(store)
    clock = [1_700_000_000.0]
    app.clock = lambda: clock[0]
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("4")
        app.open_run("run-01")   # 2 rounds x 3 alternations, in round 1's third alternation
        await settle(app, pilot)
        progress = {"run_id": "run-01", "round": 0, "alternation": 2, "total": 40}
        app.ingest([event(P.WeightProgress, **progress, done=10)])
        await settle(app, pilot)
        assert _text(app, "#fuse-eta") == "ETA —"   # nothing measured yet
        clock[0] += 5
        app.ingest([event(P.WeightProgress, **progress, done=20)])
        await settle(app, pilot)
        # 0.5 s a batch: 20 batches left now, then 3 alternations of 40 batches (round 2)
        assert _text(app, "#fuse-eta") == "ETA 1m10s"
        clock[0] += 4
        await pilot.pause(1.3)   # no event: the timer counts down
        assert _text(app, "#fuse-eta") == "ETA 1m06s"
