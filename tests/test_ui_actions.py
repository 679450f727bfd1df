"""Pilot tests of the app's actions: the add-task form, remove, engine commands and errors, help, quit, 80x24."""
from __future__ import annotations

from textual.widgets import Input, Static

from tanas_tui.components.add_task_form import AddTaskScreen
from tanas_tui.components.dialogs import ConfirmScreen
from tanas_tui.components.help_screen import HelpScreen
from engine.service import protocol as P
from ui_fixtures import async_test, event, fixture_store, make_app, pretend_engine, settle  # noqa: F401


@async_test
async def test_jobs_without_engine_offer_to_start_it(fixture_store):
    log: list = []
    app = make_app(fixture_store, log)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("5")
        await settle(app, pilot)
        await pilot.press("n")                    # re-run a search: a job for an engine
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen) and "Start one now" in str(app.screen.query_one("Static").render())
        await pilot.press("escape")
        await pilot.pause()
        assert log == [] and not isinstance(app.screen, ConfirmScreen)


@async_test
async def test_pause_without_engine_says_nothing_runs_it_and_offers_nothing(fixture_store):
    """A fresh engine would have no job to pause: no offer to start one, no "pausing…"."""
    log: list = []
    app = make_app(fixture_store, log)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("4")
        await settle(app, pilot)
        seen: list[str] = []
        app.notify = lambda message, **kw: seen.append(message)
        app.query_one("#candidates").focus()
        await pilot.press("p")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen) and log == []
        assert any("no engine is running" in m for m in seen), seen
        assert "pausing…" not in app.query_one("#fuse-header").render().plain


@async_test
async def test_add_task_form_errors_then_sends(fixture_store):
    log: list = []
    app = make_app(fixture_store, log)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        app.catalog = {"mnist-5k": tuple(str(d) for d in range(10)), "sketches": ("circle", "moon")}
        await pretend_engine(app, pilot)
        await pilot.press("a")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, AddTaskScreen)
        await pilot.click("#submit")
        await pilot.pause()
        assert form.query_one("#name-error", Static).display
        assert "name is required" in str(form.query_one("#name-error", Static).render())
        form.query_one("#name", Input).value = "moon"
        form.query_one("#source", Input).value = "mnist-5k"
        form.query_one("#positive", Input).value = "12"
        form.query_one("#positive", Input).focus()   # enter in a field submits (the form may outgrow the screen)
        await pilot.press("enter")
        await pilot.pause()
        assert "already exists" in str(form.query_one("#name-error", Static).render())
        assert "has no class '12'" in str(form.query_one("#positive-error", Static).render())
        form.query_one("#name", Input).value = "is-7"
        form.query_one("#source", Input).value = "mnst"
        form.query_one("#source", Input).focus()
        await pilot.press("enter")
        await pilot.pause()
        assert "unknown source 'mnst'" in str(form.query_one("#source-error", Static).render())
        assert not form.query_one("#name-error", Static).display
        form.query_one("#source", Input).value = "mnist-5k"
        form.query_one("#positive", Input).value = "7"
        form.query_one("#positive", Input).focus()
        await pilot.press("enter")
        await settle(app, pilot)
        assert not isinstance(app.screen, AddTaskScreen)
        assert log == [("add_task", {"task": {"name": "is-7", "source": "mnist-5k", "positive": ["7"]},
                                     "role": "base"})]


@async_test
async def test_remove_task_asks_first(fixture_store):
    log: list = []
    app = make_app(fixture_store, log)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pretend_engine(app, pilot)
        await pilot.press("down", "d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await pilot.pause()
        assert log == []
        await pilot.press("d")
        await pilot.pause()
        await pilot.click("#yes")
        await settle(app, pilot)
        assert log == [("remove_task", {"task": "t-mnist1"})]


@async_test
async def test_engine_errors_become_notifications(fixture_store):
    app = make_app(fixture_store, fail="engine refused the request: no job (no_job)")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pretend_engine(app, pilot)
        app.submit(P.ComputeDistances(method="fisher"))
        app.ingest([event(P.Error, message="job failed: out of memory", code="job_failed")])
        await settle(app, pilot, 0.3)
        messages = [n.message for n in app._notifications]
        assert any("no job" in m for m in messages)
        assert any("out of memory" in m for m in messages)
        assert app.is_running


@async_test
async def test_help_and_quit_leaves_engine_running(fixture_store, capsys):
    app = make_app(fixture_store)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        await pretend_engine(app, pilot)
        await pilot.press("q")
        await pilot.pause()
    assert "engine keeps running" in capsys.readouterr().err.replace("\n", " ")


@async_test
async def test_fits_80x24(fixture_store):
    app = make_app(fixture_store)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        for key, widget in (("1", "#tasks"), ("2", "#distance-table"), ("4", "#candidates"), ("5", "#runs-table")):
            await pilot.press(key)
            await pilot.pause()
            region = app.query_one(widget).region
            assert region.height >= 3 and region.width >= 40 and region.right <= 80 and region.bottom <= 24
