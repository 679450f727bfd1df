"""The search-method seam: one arm plan (run ids, budgets, the fixed networks) that the local and the remote path both
execute, one result type for every method, and stored runs of earlier versions read and reused as they are."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

import engine.search.runs as runs
from engine.config import (Config, ConfigError, DictionarySection, ProjectSection, SearchSection, SpaceSection,
                           TransferSection)
from engine.choices import ARMS as CHOICE_ARMS
from engine.data.tasks import TaskDef
from engine.runtime.reporting import SILENT, RecordingReporter
from engine.search.method import ResumeMismatch, SearchResult
from engine.search.plan import ARMS, plan_comparison, plan_search, run_id_for, search_unit
from engine.search.searching import run_comparison
from engine.space.spaces import standard_space
from store import Store
from synthetic import synthetic_task

SEARCH = SearchSection(rounds=1, candidates=2, alternations=1, w_epochs=1, alpha_epochs=1, batch_size=64,
                       final_epochs=1, alpha_batch_size=0, repeats=2, arms=("random", "fuse-standard", "fixed"),
                       fixed_networks=("resnet18",))


def _config(**search) -> Config:
    target = TaskDef(name="synth", source="synthetic", positive=("1",))
    return Config(file=None, project=ProjectSection(), dictionary=DictionarySection(), transfer=TransferSection(),
                  space=SpaceSection(channels=(4,), layers=(3,), nodes=(1,)),
                  search=dataclasses.replace(SEARCH, **search), sources={}, tasks=(), target=target)


def test_the_plan_keeps_todays_run_ids_and_labels():
    plan = plan_comparison(_config(), "moon")
    assert [s.run_id for s in plan] == ["moon-random-0", "moon-standard-0", "moon-resnet18-0",
                                        "moon-random-1", "moon-standard-1", "moon-resnet18-1"]
    assert [s.label for s in plan[:3]] == ["Random search", "FUSE, standard space", "ResNet-18"]
    assert [s.method for s in plan[:3]] == ["random", "fuse", "fixed"] and plan[2].network == "resnet18"
    assert plan[1].attrs == {"space_kind": "standard", "purpose": "target", "arm": "fuse-standard"}
    assert plan_search(_config(), "moon", "task-aware", 3).run_id == "moon-task-aware-3"
    assert set(ARMS) == set(CHOICE_ARMS)   # every arm the config accepts has a plan entry


def test_budgets_are_an_axis_with_their_own_run_ids():
    plan = plan_comparison(_config(repeats=1), "moon", budgets=[{}, {"rounds": 4}, {"rounds": 4, "candidates": 8}])
    ids = [s.run_id for s in plan]
    assert ids == ["moon-random-0", "moon-standard-0", "moon-resnet18-0",
                   "moon-random-r4-0", "moon-standard-r4-0",
                   "moon-random-r4+c8-0", "moon-standard-r4+c8-0"]   # a fixed network trains the same at every one
    assert len(set(ids)) == len(ids)
    by_id = {s.run_id: s for s in plan}
    assert by_id["moon-standard-r4+c8-0"].section.rounds == 4 and by_id["moon-standard-r4+c8-0"].section.candidates == 8
    assert by_id["moon-standard-0"].section == _config(repeats=1).search
    # a budget that changes what a fixed network trains gets its own fixed run
    with_final = plan_comparison(_config(repeats=1), "moon", budgets=[{}, {"final_epochs": 3}])
    assert "moon-resnet18-final_epochs3-0" in [s.run_id for s in with_final]
    with pytest.raises(ConfigError, match="'repeats'"):
        plan_comparison(_config(), "moon", budgets=[{"repeats": 3}])
    assert run_id_for("a b", "random", 0, (("rounds", 2),)).endswith("-random-r2-0")


def test_unknown_fixed_networks_are_refused_naming_the_key():
    with pytest.raises(ConfigError, match="unknown fixed network 'vgg'") as info:
        plan_comparison(_config(fixed_networks=("vgg",)), "moon")
    assert info.value.key == "search.fixed_networks"


# -- executing the plan ------------------------------------------------------------------------------------------------
class Handle:
    def __init__(self, value):
        self.value = value


class InlineRemote:
    """An executor that runs each unit at once in this process, as a Ray worker would: plain data in, writes out."""
    remote = True
    device = "cpu"

    def __init__(self):
        self.names: list[str] = []

    def put(self, obj):
        return obj

    def unit_reporter(self, name):
        return SILENT

    def submit(self, fn, *args, name=""):
        self.names.append(name)
        return Handle(fn(*args))      # hashable, like a Ray ObjectRef

    def completed(self, handles, reporter):
        yield from ((h, h.value) for h in handles)


def _ctx(store, task, executor=None, reporter=None, **search):
    dictionary = SimpleNamespace(task_for=lambda taskdef: task)
    return SimpleNamespace(store=store, config=_config(**search), device="cpu", reporter=reporter or SILENT,
                           job_id="j", dictionary=dictionary, executor=executor)


def _stored(path):
    with Store.open(path, mode="r") as st:
        out = {}
        for s in st.list_searches():
            r = s["result"]
            out[s["id"]] = (s["arm"], s["status"], r["hash"], r["test_error"], r["params"],
                            st.load_test_outcome(s["id"]).tolist())
        return out


@pytest.fixture(scope="module")
def local_and_remote(tmp_path_factory):
    root = tmp_path_factory.mktemp("plan")
    rows = {}
    for name, executor in (("local", None), ("remote", InlineRemote())):
        with Store.open(root / f"{name}.zarr", mode="w", create=True) as st:
            rows[name] = run_comparison(_ctx(st, synthetic_task(84), executor, arms=("random", "fuse-standard"),
                                             repeats=1), "synth")
        if executor is not None:
            rows["units"] = executor.names
    return root, rows


def test_the_local_and_the_remote_path_run_the_same_plan_to_the_same_store(local_and_remote):
    root, rows = local_and_remote
    assert rows["units"] == ["synth-random-0", "synth-standard-0"]
    local, remote = _stored(root / "local.zarr"), _stored(root / "remote.zarr")
    assert local == remote and set(local) == {"synth-random-0", "synth-standard-0"}
    keys = ("architecture", "test_error", "params_m", "run_id")
    assert [{k: r[k] for k in keys} for r in rows["local"]] == [{k: r[k] for k in keys} for r in rows["remote"]]
    assert [r["architecture"] for r in rows["local"]] == ["Random search", "FUSE, standard space"]


def test_finished_runs_are_reused_without_training(local_and_remote, monkeypatch):
    root, rows = local_and_remote

    def no_training(*a, **kw):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(runs, "train_network", no_training)
    with Store.open(root / "local.zarr", mode="w") as st:
        again = run_comparison(_ctx(st, synthetic_task(84), arms=("random", "fuse-standard"), repeats=1), "synth")
    assert again == rows["local"]


def _old_record(st, run_id, kind, arm, extra, result):
    """A run as the code before the search-method seam stored it: no config_keys, no created; fixed networks with
    cost 0."""
    attrs = {"kind": kind, "target": "synth0", "target_name": "synth", "config": dataclasses.asdict(SEARCH),
             "seed": 0, "status": "running", "device": "cpu", "arm": arm, "record_version": 1, **extra}
    st.create_search(run_id, attrs, 1).flush()
    st.save_test_outcome(run_id, np.ones(24, bool), "synth0")
    st.update_search(run_id, status="done", result=result)


def test_runs_stored_by_the_previous_code_are_reused_and_read_as_one_figure(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "train_network", lambda *a, **kw: pytest.fail("a stored run was trained again"))
    base = {"genotype": {}, "test_error": 0.0, "test_acc": 1.0, "params": 10, "params_m": 1e-5, "device": "cpu",
            "final_epochs": 1, "warnings": []}
    with Store.open(tmp_path / "s.zarr", mode="w", create=True) as st:
        _old_record(st, "synth-resnet18-0", "fixed:ResNet-18", "fixed", {"network": "resnet18"},
                    {**base, "run_id": "synth-resnet18-0", "hash": "resnet18", "kind": "fixed:ResNet-18",
                     "seconds": 121.7, "cost_device_hours": 0.0})
        rows = run_comparison(_ctx(st, synthetic_task(84), arms=("fixed",), repeats=1), "synth")
    assert rows[0]["run_id"] == "synth-resnet18-0" and rows[0]["architecture"] == "ResNet-18"
    assert SearchResult.from_dict({**base, "run_id": "x", "hash": "h", "seconds": 121.7,
                                   "cost_device_hours": 0.0}).cost_device_hours == pytest.approx(121.7 / 3600)


def test_an_unfinished_baseline_starts_again_and_another_configuration_is_refused(tmp_path):
    task = synthetic_task(84)
    with Store.open(tmp_path / "s.zarr", mode="w", create=True) as st:
        ctx = _ctx(st, task, arms=("random",), repeats=1)
        [spec] = plan_comparison(ctx.config, "synth")
        spec = spec.with_space(standard_space(ctx.config.space))
        method = spec.method_for(task, "cpu")
        st.create_search(spec.run_id, method.record(dict(spec.attrs)), 1).flush()   # killed before it finished
        rep = RecordingReporter()
        [row] = run_comparison(_ctx(st, task, reporter=rep, arms=("random",), repeats=1), "synth")
        assert st.search("synth-random-0")["status"] == "done" and row["test_error"] is not None
        assert [e for e, _ in rep.events].count("search_done") == 1
        with pytest.raises(ResumeMismatch) as info:
            run_comparison(_ctx(st, task, arms=("random",), repeats=1, rounds=3), "synth")
    message = str(info.value)
    assert "rounds (stored 1, now 3)" in message and "tanas-tui searches remove synth-random-0" in message
    assert info.value.key == "rounds"


def test_a_unit_returns_its_writes_and_the_one_result_type():
    cfg = _config(arms=("fuse-standard",), repeats=1)
    [spec] = plan_comparison(cfg, "synth")
    ops, result = search_unit(synthetic_task(84), spec.with_space(standard_space(cfg.space)), "cpu")
    assert ops[0][0] == "create_search" and ops[0][1] == "synth-standard-0"
    assert SearchResult.from_dict(result).run_id == "synth-standard-0" and result["kind"] == "fuse"
