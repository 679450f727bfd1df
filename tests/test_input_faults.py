"""Hostile inputs found by attacking the project: each is refused early with a message naming what is wrong."""
from __future__ import annotations

import pytest

from engine.config import SourceSection
from engine.data import SourceError, get_source


def _quickdraw(tmp_path, **options):
    sections = {"qd": SourceSection(name="qd", kind="quickdraw", options=options)}
    return get_source("qd", sections, tmp_path / "data")


@pytest.mark.parametrize("category", ["../../escaped", "a/b", "..", ".hidden", "a\\b", "bad\x1b[2J"])
def test_a_quickdraw_category_cannot_leave_the_data_dir(tmp_path, category):
    with pytest.raises(SourceError, match="category"):
        _quickdraw(tmp_path, categories=["apple", category], base_url="http://127.0.0.1:9/")
    assert not (tmp_path / "escaped.npy").exists()


@pytest.mark.parametrize("url", ["file:///etc", "ftp://example.org/x", "data:,x", "/local/folder"])
def test_base_url_must_be_http(tmp_path, url):
    with pytest.raises(SourceError, match="base_url"):
        _quickdraw(tmp_path, categories=["apple"], base_url=url)
    with pytest.raises(SourceError, match="base_url"):
        get_source("m", {"m": SourceSection(name="m", kind="mnist", options={"base_url": url})}, tmp_path)


def test_real_quickdraw_category_names_still_pass(tmp_path):
    source = _quickdraw(tmp_path, categories=["The Eiffel Tower", "t-shirt", "baseball bat"])
    assert source.classes() == ("The Eiffel Tower", "t-shirt", "baseball bat")


# -- configs -------------------------------------------------------------------------------------------------------

from typer.testing import CliRunner  # noqa: E402

from tanas_tui.cli import app  # noqa: E402

runner = CliRunner()
GOOD = """[project]
store = "s.zarr"

[[tasks]]
name = "{name}"
source = "sketches"
positive = ["circle"]
"""


def _invoke(tmp_path, text: str | bytes, *args: str, env=None):
    config = tmp_path / "tanas.toml"
    config.write_bytes(text if isinstance(text, bytes) else text.encode())
    return runner.invoke(app, ["distances", "-c", str(config), *args], env=env)


def test_a_config_that_is_not_utf8_is_a_usage_error_naming_the_file(tmp_path):
    result = _invoke(tmp_path, GOOD.format(name="circle").encode() + b'\n# caf\xe9\n')
    assert result.exit_code == 2, result.output
    assert "tanas.toml:9" in result.output and "UTF-8" in result.output


def test_an_empty_config_is_an_error(tmp_path):
    result = _invoke(tmp_path, "# nothing here\n")
    assert result.exit_code == 2 and "empty" in result.output, result.output


def test_a_bad_environment_value_is_named_as_the_environment_variable(tmp_path):
    result = _invoke(tmp_path, GOOD.format(name="circle"), env={"TANAS_SEARCH_ROUNDS": "abc"})
    assert result.exit_code == 2, result.output
    assert "TANAS_SEARCH_ROUNDS" in result.output and "tanas.toml" not in result.output
    result = _invoke(tmp_path, GOOD.format(name="circle"), env={"TANAS_SEARCH_ROUNDS": "0"})
    assert result.exit_code == 2 and "TANAS_SEARCH_ROUNDS" in result.output, result.output


@pytest.mark.parametrize("name", ["x" * 101, "bell\\u0007", " padded"])
def test_task_names_are_validated_when_the_config_is_read(tmp_path, name):
    result = _invoke(tmp_path, GOOD.format(name=name))
    assert result.exit_code == 2, result.output
    assert "tasks[0].name" in result.output


@pytest.mark.parametrize("kind,option", [("npz", "missing.npz"), ("image-folder", "no-such-folder")])
def test_missing_user_data_is_exit_3(tmp_path, kind, option):
    text = f"""[project]
store = "s.zarr"

[sources.mine]
kind = "{kind}"
path = "{option}"

[[tasks]]
name = "t"
source = "mine"
positive = ["a"]
"""
    config = tmp_path / "tanas.toml"
    config.write_text(text)
    result = runner.invoke(app, ["tasks", "add", "t", "-c", str(config)])
    assert result.exit_code == 3, result.output
    assert option in result.output


# -- corrupt store files -------------------------------------------------------------------------------------------

from store import Store  # noqa: E402


def _small_store(path):
    with Store.open(path, "w", create=True) as st:
        st.add_task("t1", {"name": "one"})
        st.add_distance_task("fisher", "t1")
        st.set_distance("fisher", "t1", "t1", 0.0)
        st.create_search("r1", {"status": "done", "result": {"hash": "x", "genotype": {"x": 1}}}, 2).flush()
        st.save_checkpoint("r1", b"\x00 not a torch file")
    return path


@pytest.mark.parametrize("damage,command,named", [
    ("tasks/t1/zarr.json", ["tasks", "list"], "tasks/t1/zarr.json"),
    ("distances/fisher/value/c/0/0", ["distances"], "distances/fisher/value"),
    ("checkpoint", ["export", "r1", "--format", "genotype", "-o", "x.json"], "checkpoint.pt"),
])
def test_a_corrupt_store_file_is_exit_4_naming_it(tmp_path, damage, command, named):
    store = _small_store(tmp_path / "s.zarr")
    if damage != "checkpoint":
        target = store / damage
        target.write_bytes(target.read_bytes()[: max(1, target.stat().st_size // 2)])
    result = runner.invoke(app, [*command, "--store", str(store)])
    assert result.exit_code == 4, result.output
    text = " ".join(result.output.split())
    assert named in text and "store check --repair" in text
    assert "weights_only" not in text


def test_tasks_remove_without_a_terminal_says_use_yes(tmp_path):
    store = _small_store(tmp_path / "s.zarr")
    result = runner.invoke(app, ["tasks", "remove", "one", "--store", str(store)], input="")
    assert result.exit_code == 2, result.output
    assert "--yes" in result.output
    with Store.open(store) as st:
        assert st.task_ids() == ["t1"]


# -- [project] threads ---------------------------------------------------------------------------------------------

def test_tasks_add_in_process_applies_project_threads(tmp_path, monkeypatch):
    import torch

    from engine.similarity.dictionary import Dictionary

    seen = []
    original = Dictionary.add_task

    def recording(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Dictionary, "add_task", recording)
    import os

    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("threads above 1 need two CPUs for this process ([project] threads <= the CPUs it may use)")
    config = tmp_path / "tanas.toml"
    config.write_text("""[project]
store = "s.zarr"
device = "cpu"
threads = 2

[dictionary]
max_epochs = 1
fisher_samples = 8

[sources.sketches]
per_class = 12

[[tasks]]
name = "circle"
source = "sketches"
positive = ["circle"]
""")
    before = torch.get_num_threads()
    result = runner.invoke(app, ["tasks", "add", "circle", "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert seen == [2]
    assert torch.get_num_threads() == before  # the caller's setting is back


# -- Rich markup and control characters ------------------------------------------------------------------------------

import re  # noqa: E402

import typer  # noqa: E402

NASTY = "[/x] [bold]b\x1b[2J"


def test_a_config_path_with_markup_is_printed_as_it_is(tmp_path):
    result = runner.invoke(app, ["run", str(tmp_path / "[x]" / "[/y].toml")])
    assert result.exit_code == 2, result.output
    assert "[x]/[/y].toml" in " ".join(result.output.split())


def test_task_names_with_markup_and_escapes_print_as_text(tmp_path):
    store = tmp_path / "s.zarr"
    with Store.open(store, "w", create=True) as st:
        st.add_task("t1", {"name": NASTY, "status": "ready", "val_acc": 0.5})
        st.add_task("t2", {"name": "plain", "status": "ready"})
        for t in ("t1", "t2"):
            st.add_distance_task("fisher", t)
        st.set_distance("fisher", "t1", "t2", 0.25)
        st.set_distance("fisher", "t2", "t1", 0.5)
    for command in (["tasks", "list"], ["tasks", "show", "t1"], ["distances"], ["nearest", "plain"]):
        result = runner.invoke(app, [*command, "--store", str(store)], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (command, result.output)
        assert "\x1b" not in result.output, command
        assert "[/x] [bold]b\\x1b[2J" in result.output, (command, result.output)


def _commands(group, path=()):
    for name, cmd in getattr(group, "commands", {}).items():
        yield (*path, name), cmd
        yield from _commands(cmd, (*path, name))


def test_help_texts_keep_their_brackets():
    root = typer.main.get_command(app)
    checked = 0
    for path, cmd in _commands(root):
        texts = [cmd.help or ""] + [getattr(p, "help", None) or "" for p in cmd.params]
        wanted = {w for t in texts for w in re.findall(r"\[\[?[a-zA-Z._]+\]?\]", t.replace("\\[", "["))}
        if not wanted:
            continue
        shown = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "400", "TERMINAL_WIDTH": "400"}).output
        for word in wanted:
            assert word in shown, f"`tanas-tui {' '.join(path)} --help` lost {word}"
        checked += 1
    assert checked >= 5
