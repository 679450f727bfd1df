"""The kill matrix: a process killed in each write window of a dictionary add, a task removal, a distance fill, a
search checkpoint and a search's finish leaves a store that `store check` passes (after the next writer opened it)
and a re-run that ends with the uninterrupted result.

Each kill is real: a forked child arms TANAS_FAULT=<point> and dies with os._exit at that point (no clean-up, no
lock release but the kernel's), exactly where a kill -9 would land in the window. Forking keeps the imported torch,
so each kill costs a few milliseconds instead of a new interpreter.
"""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch
import zarr
from typer.testing import CliRunner

from engine.config import Config, DictionarySection, ProjectSection, SearchSection, SpaceSection, TransferSection
from engine.data import Dataset
from engine.data.tasks import TaskDef, build_task
from engine.runtime.reporting import RecordingReporter
from engine.search.fuse import Fuse
from engine.similarity.dictionary import Dictionary
from engine.space.spaces import SearchSpace
from store import Store
from store.faults import FAULT_ENV, FAULT_EXIT
from synthetic import synthetic_task
from tanas_tui.cli import app

runner = CliRunner()


def _source(name: str, seed: int, n_per_class: int = 24) -> Dataset:
    gen = torch.Generator().manual_seed(seed)
    templates = (torch.rand(3, 1, 28, 28, generator=gen) > 0.6).float() * 200
    x = templates.repeat_interleave(n_per_class, 0) + torch.rand(3 * n_per_class, 1, 28, 28, generator=gen) * 55
    return Dataset(name, x.to(torch.uint8), torch.arange(3).repeat_interleave(n_per_class), ("a", "b", "c"))


SOURCES = {"alpha": _source("alpha", 1), "beta": _source("beta", 2)}
TASKS = [TaskDef(name="alpha-a", source="alpha", positive=("a",)), TaskDef(name="beta-b", source="beta", positive=("b",)),
         TaskDef(name="alpha-c", source="alpha", positive=("c",))]
CFG = Config(file=None, project=ProjectSection(),
             dictionary=DictionarySection(max_epochs=1, batch_size=32, fisher_samples=12),
             transfer=TransferSection(), space=SpaceSection(), search=SearchSection(), sources={}, tasks=(),
             target=None)

SEARCH = SearchSection(rounds=2, candidates=2, alternations=1, w_epochs=1, alpha_epochs=2, batch_size=32,
                       final_epochs=1, checkpoint_minutes=0.0)
SPACE = SearchSpace(kind="standard", op_weights={"skip_connect": 1.0, "avg_pool_3x3": 1.0, "dil_conv_3x3": 1.0},
                    nodes=(1,), channels=(4,), layers=(3,))
SEARCH_TASK = synthetic_task(112, seed=5)
RUN = "r"


def _dictionary(st, reporter=None):
    return Dictionary(st, CFG, "cpu", reporter or RecordingReporter(),
                      task_builder=lambda t: build_task(t, SOURCES[t.source]))


def _killed_at(point: str, path, action) -> None:
    """Runs action(store) in a forked child with the fault armed; asserts the child died at that point."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 0
        try:
            os.environ[FAULT_ENV] = point
            with Store.open(path, "w", create=True) as st:
                action(st)
        except BaseException:  # noqa: BLE001
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == FAULT_EXIT, \
        f"the child was not killed at {point!r} (exit status {status})"


def _store_check_passes(path) -> None:
    result = runner.invoke(app, ["store", "check", "--store", str(path)])
    assert result.exit_code == 0, result.output


def _matrix(path):
    with Store.open(path) as st:
        m = st.distances("fisher")
        return [st.task(i)["name"] for i in m.ids], m.value, [t["name"] for t in st.list_tasks()]


@pytest.fixture(scope="module")
def dictionaries(tmp_path_factory):
    """(one task, all three tasks) stores built without interruption, and the three-task store minus beta-b."""
    root = tmp_path_factory.mktemp("dict")
    one, three, removed = root / "one.zarr", root / "three.zarr", root / "removed.zarr"
    with Store.open(one, "w", create=True) as st:
        _dictionary(st).ensure(TASKS[:1])
    shutil.copytree(one, three)
    with Store.open(three, "w") as st:
        _dictionary(st).ensure(TASKS)
    shutil.copytree(three, removed)
    with Store.open(removed, "w") as st:
        _dictionary(st).remove_task("beta-b")
    return one, three, removed


# a kill while adding beta-b and alpha-c to a one-task dictionary: between the new task being ready and its row and
# column entering the matrix, and after the 2nd entry of the distance fill
@pytest.mark.parametrize("point", ["task-ready@2", "distance-set@2", "distance-set@4"])
def test_kill_during_dictionary_add_then_rerun_gives_the_uninterrupted_dictionary(tmp_path, dictionaries, point):
    one, three, _ = dictionaries
    path = tmp_path / "s.zarr"
    shutil.copytree(one, path)
    _killed_at(point, path, lambda st: _dictionary(st).ensure(TASKS))
    with Store.open(path, "w") as st:
        _dictionary(st).ensure(TASKS)
    _store_check_passes(path)
    names, value, tasks = _matrix(path)
    ref_names, ref_value, ref_tasks = _matrix(three)
    assert (names, tasks) == (ref_names, ref_tasks)
    np.testing.assert_array_equal(value, ref_value)


@pytest.mark.parametrize("point", ["remove-marked", "distance-journal", "distance-rewrite", "distance-rewrite@2",
                                   "remove-dropped", "remove-deleted"])
def test_kill_during_task_removal_finishes_it_on_the_next_open(tmp_path, dictionaries, point):
    _, three, removed = dictionaries
    path = tmp_path / "s.zarr"
    shutil.copytree(three, path)
    _killed_at(point, path, lambda st: _dictionary(st).remove_task("beta-b"))
    with Store.open(path) as st:  # a reader already sees the task gone
        assert "beta-b" not in [t["name"] for t in st.list_tasks()]
    with Store.open(path, "w") as st:
        assert st.repaired, "opening for writing repaired nothing"
        rep = RecordingReporter()
        _dictionary(st, rep).ensure([TASKS[0], TASKS[2]])
        assert not [e for e, _ in rep.events if e == "distance"], "the re-run recomputed distances"
    _store_check_passes(path)
    names, value, tasks = _matrix(path)
    ref_names, ref_value, ref_tasks = _matrix(removed)
    assert (names, tasks) == (ref_names, ref_tasks) == (["alpha-a", "alpha-c"], ["alpha-a", "alpha-c"])
    np.testing.assert_array_equal(value, ref_value)


def test_store_check_reports_a_half_removed_task_and_repair_finishes_it(tmp_path, dictionaries):
    _, three, removed = dictionaries
    path = tmp_path / "s.zarr"
    shutil.copytree(three, path)
    _killed_at("remove-dropped", path, lambda st: _dictionary(st).remove_task("beta-b"))
    found = runner.invoke(app, ["store", "check", "--store", str(path)])
    assert found.exit_code == 4 and "removal was interrupted" in found.output and "--repair" in found.output
    fixed = runner.invoke(app, ["store", "check", "--repair", "--store", str(path)])
    assert fixed.exit_code == 0 and "repaired:" in fixed.output, fixed.output
    _store_check_passes(path)
    assert _matrix(path)[0] == _matrix(removed)[0]


# -- searches ------------------------------------------------------------------------------------------------------

def _search(st, reporter=None):
    reporter = reporter or RecordingReporter()
    if RUN in {s["id"] for s in st.list_searches()}:
        return Fuse.resume(st, RUN, SEARCH_TASK, SPACE, SEARCH, reporter=reporter)
    return Fuse(SEARCH_TASK, SPACE, SEARCH, store=st, run_id=RUN, seed=4, reporter=reporter).run()


@pytest.fixture(scope="module")
def uninterrupted_search(tmp_path_factory):
    with Store.open(tmp_path_factory.mktemp("search") / "s.zarr", "w", create=True) as st:
        result = _search(st)
        return result, st.read_search(RUN).alpha


@pytest.mark.parametrize("point", ["search-create", "checkpoint-write", "checkpoint-write@2", "final-saved"])
def test_kill_during_search_then_rerun_gives_the_uninterrupted_result(tmp_path, uninterrupted_search, point):
    reference, ref_alpha = uninterrupted_search
    path = tmp_path / "s.zarr"
    _killed_at(point, path, _search)
    searches = zarr.open_group(str(path / "searches"), mode="r")
    for name, _ in searches.groups():  # a raw Zarr reader never sees a search group without its arrays
        assert set(L for L, _ in searches[name].arrays()) >= {"alpha", "round", "val_acc"}
    with Store.open(path, "w") as st:
        rep = RecordingReporter()
        result = _search(st, rep)
        alpha = st.read_search(RUN).alpha
    _store_check_passes(path)
    assert not list(path.rglob("*.tmp")) and not list((path / "runs").glob("new-search-*"))
    if point == "final-saved":  # the work is not lost: the run is finished from its final checkpoint
        assert not [e for e, _ in rep.events if e == "alpha_step"]
    assert (result.hash, result.test_error, result.params) == (reference.hash, reference.test_error, reference.params)
    np.testing.assert_array_equal(alpha, ref_alpha)


def test_store_check_repairs_a_garbage_checkpoint_and_names_it(tmp_path, uninterrupted_search):
    path = tmp_path / "s.zarr"
    _killed_at("checkpoint-write@2", path, _search)
    checkpoint = path / "searches" / RUN / "checkpoint" / "checkpoint.pt"
    checkpoint.write_bytes(b"\x00garbage")
    found = runner.invoke(app, ["store", "check", "--store", str(path)])
    assert found.exit_code == 4 and "checkpoint.pt" in found.output and "orphaned temporary" in found.output
    fixed = runner.invoke(app, ["store", "check", "--repair", "--store", str(path)])
    assert fixed.exit_code == 0, fixed.output
    assert "unreadable checkpoint" in fixed.output and "temporary checkpoint" in fixed.output
    _store_check_passes(path)


def test_switching_the_distance_method_fills_the_new_matrix_from_the_task_list(tmp_path, dictionaries):
    """A store built with one method, then `tasks add` under another: the new matrix starts with every ready task
    instead of failing on the tasks it lacks."""
    import dataclasses

    one, _, _ = dictionaries
    path = tmp_path / "s.zarr"
    shutil.copytree(one, path)
    cfg = dataclasses.replace(
        CFG, dictionary=dataclasses.replace(CFG.dictionary, method="transfer"),
        transfer=TransferSection(epochs=1, finetune_epochs=0, prune_step=0.5, max_samples=40, batch_size=32))
    with Store.open(path, "w") as st:
        Dictionary(st, cfg, "cpu", task_builder=lambda t: build_task(t, SOURCES[t.source])).add_task(TASKS[1])
        matrix = st.distances("transfer")
        names = [st.task(i)["name"] for i in matrix.ids]
    assert names == ["alpha-a", "beta-b"]
    assert not np.isnan(matrix.value[1, :]).any() and not np.isnan(matrix.value[:, 1]).any()  # its row and column


def test_store_check_finds_a_ready_task_without_its_probe(tmp_path):
    path = tmp_path / "s.zarr"
    with Store.open(path, "w", create=True) as st:
        st.add_task("t1", {"name": "one", "status": "ready"})
    found = runner.invoke(app, ["store", "check", "--store", str(path)])
    assert found.exit_code == 4 and "marked ready" in found.output, found.output
    fixed = runner.invoke(app, ["store", "check", "--repair", "--store", str(path)])
    assert fixed.exit_code == 0 and "marked training" in fixed.output, fixed.output
    with Store.open(path) as st:
        assert st.task("t1")["status"] == "training"
