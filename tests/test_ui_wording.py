"""What the UI says (issue 23 items 5 and 8): the probe named as the shared body's `shared_epochs` when the shared body
is used, the help's word on d's symmetry, the Space tree's order (task-aware space first, the control after), the
genotype weight's label, `c` and `j` in the help and the footer at 80 columns, and Enter in the "Start engine?"
dialog after the add-task form going on with the form."""
from __future__ import annotations

import shutil

import pytest
from rich.console import Console
from textual.widgets import Input, Static, Tree

from tanas_tui.components.dialogs import ConfirmScreen
from tanas_tui.components.help_screen import KEYS, HelpScreen
from ui_fixtures import CREATED, _space, async_test, build_fixture_store, fixture_store, make_app, settle  # noqa: F401


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory):
    """The fixture store whose Fisher distances were taken on a shared body, with a control (farthest-tasks) run
    stored before the task-aware one's and sorting before it by name."""
    from store import Store

    path = build_fixture_store(tmp_path_factory.mktemp("shared") / "s.zarr", searches=1, running=False)
    with Store.open(path, mode="w") as st:
        st.set_distance_params("fisher", {"fisher_body": "shared", "shared_epochs": 3, "fisher_form": "domain"})
        ids = [t["id"] for t in st.list_tasks()]
        space = dict(_space(ids), kind="farthest")
        st.create_search("a-control", {"kind": "fuse", "target": "t-moon", "target_name": "moon",
                                       "space_kind": "farthest", "space": space, "config": {}, "seed": 0,
                                       "status": "done", "device": "cpu", "created": CREATED}, 3).flush()
    return path


@async_test
async def test_probe_is_the_shared_body_with_its_shared_epochs(shared_store):
    app = make_app(shared_store)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        detail = app.query_one("#task-detail", Static).render().plain
        assert "cnn shared body (3 shared_epochs" in detail and "3 epochs" not in detail


@async_test
async def test_per_task_probes_keep_their_own_epochs(fixture_store):
    app = make_app(fixture_store)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        detail = app.query_one("#task-detail", Static).render().plain
        assert "probe cnn, 3 epochs" in " ".join(detail.split()) and "shared" not in detail


@async_test
async def test_space_tree_lists_the_task_aware_space_first_and_labels_the_weight(shared_store):
    app = make_app(shared_store)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("3")
        await settle(app, pilot)
        tree = app.query_one("#space-tree", Tree)
        kinds = [node.data[1] for node in tree.root.children]
        assert kinds[:2] == ["task-aware", "farthest"], kinds
        first_near = tree.root.children[0].children[0].label.plain
        assert "genotype weight 1 − d = 0.906" in first_near, first_near


def test_help_says_the_default_distance_is_symmetric_and_lists_c_and_j():
    from engine.config.loader import load_config
    from tanas_tui.components.help_screen import NOTES, form_note

    assert "asymmetric" in NOTES and "(fisher_form = \"domain\", like \"embedding\") is symmetric" in NOTES
    keys = {key: where for key, where, _ in KEYS}
    assert keys["c"] == "anywhere" and keys["j"] == "anywhere"
    template = shutil.os.path.join(shutil.os.path.dirname(__import__("tanas_tui").__file__), "templates", "tanas.toml")
    config = load_config(template)
    assert config.dictionary.fisher_form == "domain"
    assert form_note(config) == 'This config: fisher_form = "domain" (symmetric).'


@async_test
async def test_help_screen_shows_c_and_j(fixture_store):
    app = make_app(fixture_store)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("question_mark")
        await pilot.pause(0.2)
        assert isinstance(app.screen, HelpScreen)
        console = Console(width=100, record=True)
        console.print(app.screen.query_one("#help-body", Static).content)
        text = console.export_text()
        assert "compare view" in text and "engine jobs" in text and "is symmetric" in text


@async_test
async def test_footer_shows_c_and_j_at_80_columns_on_every_tab(fixture_store):
    from textual.widgets._footer import FooterKey

    app = make_app(fixture_store)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        for tab in "123456":
            await pilot.press(tab)
            await settle(app, pilot)
            palette = app.screen.query_one(".-command-palette", FooterKey).region.x
            keys = {k.key: k for k in app.screen.query(FooterKey) if not k.has_class("-command-palette")}
            for key in ("c", "j", "question_mark"):
                assert key in keys, (tab, sorted(keys))
                assert 0 < keys[key].region.right <= palette, (tab, key, keys[key].region)


@async_test
async def test_enter_in_start_engine_dialog_after_the_form_starts_the_engine(fixture_store):
    app = make_app(fixture_store)
    started: list = []
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        app.catalog = {"mnist-5k": tuple(str(d) for d in range(10))}
        app.link.start = lambda then=None, follow=True: started.append(then)
        await pilot.press("a")
        await pilot.pause()
        form = app.screen
        form.query_one("#name", Input).value = "is-7"
        form.query_one("#source", Input).value = "mnist-5k"
        form.query_one("#positive", Input).value = "7"
        form.query_one("#positive", Input).focus()
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, ConfirmScreen)
        assert app.focused is not None and app.focused.id == "yes"
        await pilot.press("enter")
        await settle(app, pilot)
        assert len(started) == 1 and started[0].TYPE == "add_task" and started[0].task["name"] == "is-7"


@async_test
async def test_stop_dialog_still_starts_on_keep_running(fixture_store):
    app = make_app(fixture_store)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        app.push_screen(ConfirmScreen("Stop search x?", yes="Stop", no="Keep running"))
        await pilot.pause()
        assert app.focused.id == "no"
