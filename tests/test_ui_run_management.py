"""Run management in the UI (issue 11 item 18): export with a chosen format and path (no silent overwrite, no
missing directory created), resume a stopped search, re-run one."""
from __future__ import annotations

import json

from textual.widgets import Checkbox, Input, Select

from engine.space.genotype import Genotype
from tanas_tui.components.export_form import ExportScreen
from engine.service import protocol as P
from ui_fixtures import async_test, build_fixture_store, event, make_app, pretend_engine, settle


@async_test
async def test_export_dialog_checks_the_path(tmp_path, monkeypatch):
    store = build_fixture_store(tmp_path / "s.zarr")
    monkeypatch.chdir(tmp_path)
    log: list = []
    app = make_app(store, log)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        app.open_run("run-00")
        await settle(app, pilot)
        app.query_one("#candidates").focus()
        await pilot.press("e")
        await pilot.pause(0.2)
        assert isinstance(app.screen, ExportScreen)
        path = app.screen.query_one("#export-path", Input)
        assert path.value == str(tmp_path / "run-00.genotype.json")
        await pilot.click("#export-ok")
        await settle(app, pilot)
        written = tmp_path / "run-00.genotype.json"
        stored = app.model.searches["run-00"].result["genotype"]
        # the engine's genotype file: the genotype, validated, with its own hash (the record's is a fixture label)
        assert Genotype.from_json(written.read_text()) == Genotype.from_dict(stored)
        assert json.loads(written.read_text())["hash"] == Genotype.from_dict(stored).hash
        # again: the file exists, the dialog refuses until overwrite is ticked
        written.write_text("keep me")
        await pilot.press("e")
        await pilot.pause(0.2)
        await pilot.click("#export-ok")
        await pilot.pause(0.2)
        assert isinstance(app.screen, ExportScreen)
        assert "already exists" in str(app.screen.query_one("#export-error").render())
        assert written.read_text() == "keep me"
        # a missing directory is refused, not created
        path = app.screen.query_one("#export-path", Input)
        path.value = str(tmp_path / "nope" / "g.json")
        await pilot.click("#export-ok")
        await pilot.pause(0.2)
        assert "does not exist" in str(app.screen.query_one("#export-error").render())
        assert not (tmp_path / "nope").exists()
        path.value = str(written)
        app.screen.query_one("#export-force", Checkbox).value = True
        await pilot.click("#export-ok")
        await settle(app, pilot)
        assert json.loads(written.read_text())["hash"] == Genotype.from_dict(stored).hash
        # a model format runs the export job on the store: this fixture has no trained weights, which it says
        await pilot.press("e")
        await pilot.pause(0.2)
        app.screen.query_one("#export-format", Select).value = "torchscript"
        await pilot.pause(0.1)
        assert app.screen.query_one("#export-path", Input).value == str(tmp_path / "run-00.pt")
        seen: list = []
        app.notify = lambda message, **kw: seen.append(message)
        await pilot.click("#export-ok")
        await settle(app, pilot, 1.0)
        assert any("export of run-00 failed" in m for m in seen), seen
        assert not (tmp_path / "run-00.pt").exists()


@async_test
async def test_export_refuses_a_stored_genotype_that_does_not_validate(tmp_path, monkeypatch):
    from store import Store

    store = build_fixture_store(tmp_path / "s.zarr")
    with Store.open(store, mode="w") as st:
        result = dict(st.search("run-00")["result"])
        result["genotype"] = {**result["genotype"], "layers": 0}
        st.update_search("run-00", result=result)
    monkeypatch.chdir(tmp_path)
    app = make_app(store)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        app.open_run("run-00")
        await settle(app, pilot)
        seen: list = []
        app.notify = lambda message, **kw: seen.append(message)
        app.query_one("#candidates").focus()
        await pilot.press("e")
        await pilot.pause(0.2)
        await pilot.click("#export-ok")
        await settle(app, pilot)
        assert any("export of run-00 failed" in m and "layers" in m for m in seen), seen
        assert not (tmp_path / "run-00.genotype.json").exists()


@async_test
async def test_runs_resume_a_stopped_search_and_rerun_with_a_new_seed(tmp_path):
    from store import Store

    store = build_fixture_store(tmp_path / "s.zarr")
    with Store.open(store, mode="w") as st:
        st.update_search("run-01", status="stopped")
    log: list = []
    app = make_app(store, log)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pretend_engine(app, pilot)
        await pilot.press("5")
        await settle(app, pilot)
        table = app.query_one("#runs-table")
        table.move_cursor(row=table.get_row_index("run-00"))
        await pilot.press("r")                       # done: nothing to resume
        await settle(app, pilot)
        assert log == []
        table.move_cursor(row=table.get_row_index("run-01"))
        await pilot.press("r")
        await settle(app, pilot)
        assert log == [("start_search", {"run_id": "run-01", "seed": 0, "target": "moon", "space": "task-aware"})]
        await pilot.press("n")
        await settle(app, pilot)
        assert log[-1] == ("start_search", {"seed": 1, "target": "moon", "space": "task-aware"})


@async_test
async def test_delete_a_run_asks_then_drops_it_when_the_engine_is_done(tmp_path):
    from textual.widgets import DataTable

    from tanas_tui.components.dialogs import ConfirmScreen

    store = build_fixture_store(tmp_path / "s.zarr")
    log: list = []
    app = make_app(store, log)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pretend_engine(app, pilot)
        await pilot.press("5")
        await settle(app, pilot)
        table = app.query_one("#runs-table", DataTable)
        table.move_cursor(row=table.get_row_index("run-00"))
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(app, pilot)
        assert log == [("remove_search", {"run": "run-00"})]
        assert table.row_count == 2          # still there until the engine says it is done
        app.ingest([event(P.JobDone, job="job-1", kind="remove_search", params={"run": "run-00"}, status="ok")])
        await pilot.pause(0.3)
        assert [k.value for k in table.rows] == ["run-01"]


def test_searches_remove_cli(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from store import Store
    from tanas_tui.cli import app
    from tanas_tui.exitcodes import ExitCode

    monkeypatch.chdir(tmp_path)
    store = build_fixture_store(tmp_path / "s.zarr")
    runner = CliRunner()
    kept = runner.invoke(app, ["searches", "remove", "run-00", "--store", str(store)], input="n\n")
    assert kept.exit_code != 0
    gone = runner.invoke(app, ["searches", "remove", "run-00", "--yes", "--store", str(store)])
    assert gone.exit_code == 0 and "deleted search run-00" in gone.output, gone.output
    with Store.open(store) as st:
        assert [s["id"] for s in st.list_searches()] == ["run-01"]
    missing = runner.invoke(app, ["searches", "remove", "run-00", "--yes", "--store", str(store)])
    assert missing.exit_code == ExitCode.NOT_FOUND and "run-00" in missing.output
