"""The UI's model without Textual: store replay, live protocol events, dedupe, gaps, jobs and their control state;
text plots; add-task validation."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from engine.service import protocol as P
from tanas_tui.components.add_task_form import validate_task
from tanas_tui.components.plots import axis_plot, bar, sparkline
from tanas_tui.model import DISTANCES, SEARCHES, TASKS, UiModel, genotype_hash, search_topic, softmax
from tanas_tui.model.snapshot import read_search, read_store
from ui_fixtures import build_fixture_store, event, genotype


@pytest.fixture(scope="module")
def fixture_store(tmp_path_factory) -> Path:
    return build_fixture_store(tmp_path_factory.mktemp("ui") / "store.zarr")


@pytest.fixture()
def state(fixture_store) -> UiModel:
    st = UiModel(str(fixture_store))
    st.load_snapshot(read_store(fixture_store))
    return st


def step(run_id: str, i: int, rnd: int = 0, alt: int = 0, c: int = 3) -> P.AlphaStep:
    return event(P.AlphaStep, run_id=run_id, step=i, round=rnd, alternation=alt, alpha=[0.1 * i * k for k in range(c)],
                 loss_train=1.0 / (i + 1), loss_val=1.1 / (i + 1), val_acc=[0.5 + 0.01 * k for k in range(c)])


def test_replay_reads_tasks_matrices_and_searches(state):
    assert [t.name for t in state.tasks.values()] == ["mnist-0", "mnist-1", "mnist-3", "circle", "square", "moon"]
    moon = state.tasks["t-moon"]
    assert moon.rule == "is moon" and moon.samples == 950 and moon.representative is False
    assert state.tasks["t-mnist0"].genotype_hash == genotype_hash(genotype(0, 8, 3))
    fisher = state.matrices["fisher"]
    assert fisher.ids[0] == "t-mnist0" and fisher.value.shape == (6, 6)
    assert fisher.nearest("t-moon", 2) == [("t-circle", pytest.approx(0.0930, abs=1e-4)),
                                           ("t-square", pytest.approx(0.119, abs=1e-4))]
    transfer = state.matrices["transfer"]
    assert math.isnan(transfer.value[2, 0])
    assert set(state.searches) == {"run-00", "run-01"}
    assert state.searches["run-00"].status == "done" and state.running_search().id == "run-01"
    assert ("t-moon", "task-aware") in state.spaces


def test_genotype_hash_is_the_stored_one_or_the_canonical_one():
    import json

    g = genotype(4)
    shuffled = json.loads(json.dumps({k: g[k] for k in reversed(list(g))}))   # as a store read returns it
    assert genotype_hash(shuffled) == genotype_hash(g) and len(genotype_hash(g)) == 10
    assert genotype_hash({**g, "hash": "recorded01"}) == "recorded01"          # the engine's record wins
    assert genotype_hash({**g, "layers": "five"}) == "" and genotype_hash(None) == ""   # not a genotype: no hash
    assert genotype_hash(genotype(5)) != genotype_hash(g)


def test_live_events_update_and_report_topics(state):
    topics = state.apply_many([
        event(P.TaskAdded, task_id="t-new", name="new", role="base"),
        event(P.ProbeProgress, task_id="t-new", name="new", seed_index=0, epoch=2, max_epochs=5, val_acc=0.9, loss=0.3),
    ])
    assert topics == {TASKS}
    assert state.tasks["t-new"].status == "training 2/5 val 90.0%"
    assert "t-new" in state.needs_task_read
    state.apply(event(P.ProbeDone, task_id="t-new", name="new", val_acc=0.97, epochs=5, seconds=1.0,
                      representative=True))
    assert state.tasks["t-new"].status != "ready" and state.tasks["t-new"].val_acc == 0.97   # its Fisher comes next
    state.apply(event(P.TaskStatus, task_id="t-new", name="new", status="ready"))
    assert state.tasks["t-new"].status == "ready"
    assert state.apply(event(P.Distance, method="fisher", source="t-new", target="t-moon", value=0.2,
                             std=0.01)) == {DISTANCES}
    m = state.matrices["fisher"]
    assert m.value[m.index("t-new"), m.index("t-moon")] == pytest.approx(0.2)
    assert math.isnan(m.value[m.index("t-moon"), m.index("t-new")])
    assert state.apply(event(P.Distance, method="fisher", source="t-new", target="t-moon", value=0.2,
                             std=0.01)) == set()   # unchanged: nothing to redraw
    state.apply(event(P.TaskRemoved, task_id="t-new", name="new"))
    assert "t-new" not in state.tasks and "t-new" not in m.ids


def test_protocol_events_are_deduplicated_by_seq(state):
    ev = event(P.Warning, message="careful")
    state.apply(ev)
    state.apply(ev)                      # a replayed duplicate
    assert state.drain_notices() == [("warning", "careful")]
    direct = P.Error(seq=0, message="bad request", code="bad_field")
    state.apply(direct)
    state.apply(direct)                  # seq 0 = direct replies: never dropped
    assert [m for _, m in state.drain_notices()] == ["bad request", "bad request"]


def test_the_model_takes_protocol_events_only(state):
    """A hand-made (name, payload) pair is no event: it is refused, not half-applied."""
    with pytest.raises(TypeError, match="protocol events"):
        state.apply(("warning", {"message": "x"}))
    assert state.apply_many([("warning", {"message": "x"})]) == set()
    assert "protocol events" in state.drain_notices()[0][1]


def test_attach_mid_run_merges_store_history_with_live_steps(state, fixture_store):
    s = state.searches["run-01"]
    assert not s.loaded and s.steps == 0
    # live steps arrive before the history is read: they wait, and ask for a re-read
    topics = state.apply_many([step("run-01", 2), step("run-01", 3)])
    assert topics == {search_topic("run-01")} and s.gap and s.steps == 0
    record = read_search(fixture_store, "run-01")
    state.load_search(record)
    assert s.steps == 4 and not s.gap and s.loaded
    assert s.alpha[:2] == [tuple(map(float, row)) for row in record.alpha]
    assert s.alpha[3] == pytest.approx((0.0, 0.3, 0.6))
    assert s.alternation[:2] == [0, 1]
    # a duplicate of a stored step changes nothing; the next one appends
    assert state.apply(step("run-01", 1)) == set()
    assert state.apply(step("run-01", 4, alt=2)) == {SEARCHES, search_topic("run-01")}
    assert s.steps == 5 and s.current_alternation() == 3


def test_round_and_done_events(state):
    state.apply(event(P.SearchRound, run_id="run-01", round=0, incumbent="abc", candidates=["a", "b", "c"],
                      genotypes=[genotype(1), genotype(2), genotype(3)]))
    assert state.searches["run-01"].hashes(0) == ["a", "b", "c"]
    state.apply(event(P.SearchDone, run_id="run-01", result={"hash": "abc", "test_error": 2.0}))
    assert state.searches["run-01"].status == "done"
    assert state.running_search() is None


def test_jobs_and_job_for_run(state):
    state.apply(event(P.JobStarted, job="j1", kind="start_search", params={"run_id": "run-01"}))
    state.apply(event(P.JobProgress, job="j1", stage="fuse", done=2, total=5))
    assert state.current_job().stage == "fuse" and state.job_for_run("run-01") == "j1"
    state.apply(event(P.JobDone, job="j1", kind="start_search", status="failed", message="boom"))
    assert state.current_job() is None and state.job_for_run("run-01") is None
    assert state.drain_notices() == [("error", "job j1 failed: boom")]
    assert state.jobs.get("j1").state == "failed" and state.jobs.get("j1").message == "boom"


def test_the_engine_runs_one_job_at_a_time(state):
    """A job_started ends the job seen before it, whose end this window missed."""
    state.apply(event(P.JobStarted, job="j1", kind="sleep"))
    state.apply(event(P.JobStarted, job="j2", kind="sleep"))
    assert state.current_job().job == "j2" and state.jobs.get("j1").finished


def test_attaching_mid_job_takes_the_running_job_from_status(state):
    state.engine_status(P.Reply(command="status", data={
        "device": "cpu", "executor": "local",
        "job": {"id": "j9", "kind": "run_pipeline", "params": {}, "state": "running"}}))
    assert state.current_job().job == "j9" and state.device == "cpu" and state.executor == "local"
    state.apply(event(P.JobDone, job="j9", kind="run_pipeline", status="ok"))
    assert state.current_job() is None


def test_a_control_request_shows_until_the_engine_event_confirms_it(state):
    s = state.searches["run-01"]
    state.apply(event(P.JobStarted, job="j1", kind="start_search", params={"run_id": "run-01"}))
    state.control_requested("j1", "pause")
    assert state.search_status(s) == "pausing…"
    state.control_answered(P.Pause(job="j1"), P.Reply(command="pause", data={"job": "j1", "paused": True}))
    assert state.search_status(s) == "pausing…"          # asked for: the job blocks at its next safe point
    state.apply(event(P.JobState, job="j1", state="paused"))
    assert state.search_status(s) == "paused"
    state.control_requested("j1", "resume")
    state.control_answered(P.Resume(job="j1"), None)      # refused or unreachable: back to what it was
    assert state.search_status(s) == "paused"
    state.control_requested("j1", "stop")
    state.control_answered(P.Stop(job="j1"), P.Reply(command="stop", data={"job": "j1", "paused": False}))
    state.apply(event(P.JobState, job="j1", state="running"))
    assert state.search_status(s) == "stopping…"         # until the job ends
    state.apply(event(P.JobDone, job="j1", kind="start_search", status="stopped"))
    assert state.search_status(s) == "stopped"


def test_a_control_request_ends_with_the_engine(state):
    s = state.searches["run-01"]
    state.apply(event(P.JobStarted, job="j1", kind="start_search", params={"run_id": "run-01"}))
    state.control_requested("j1", "stop")
    state.set_engine(False)
    assert state.search_status(s) == "interrupted" and state.current_job() is None


def test_softmax_and_text_plots():
    assert sum(softmax([1.0, 2.0, 3.0])) == pytest.approx(1.0)
    assert softmax([]) == []
    assert sparkline([0, 1, 2, 3], width=4) == "▁▃▆█"
    assert sparkline(range(100), width=10) == sparkline(range(90, 100), width=10)
    assert bar(0.5, 4) == "██  " and bar(1.0, 2) == "██"
    text = axis_plot([("a", [0.0, 1.0, 0.5]), ("b", [1.0, np.nan, 0.0])], 30, 8, "t").plain
    lines = text.split("\n")
    assert len(lines) == 8 and lines[0].startswith("t ━ a ━ b")
    assert any(ch not in " │┤" for ch in "".join(lines[1:-2]))
    assert "no data" in axis_plot([("a", [])], 30, 8).plain


@pytest.mark.parametrize("values, field, message", [
    ({"name": "", "source": "mnist-5k", "positive": "3"}, "name", "name is required"),
    ({"name": "moon", "source": "mnist-5k", "positive": "3"}, "name", "already exists"),
    ({"name": "x", "source": "nope", "positive": "3"}, "source", "unknown source 'nope'"),
    ({"name": "x", "source": "mnist-5k", "positive": "11"}, "positive", "has no class '11'"),
    ({"name": "x", "source": "mnist-5k", "positive": "", "classes": ""}, "positive", "exactly one of"),
    ({"name": "x", "source": "mnist-5k", "positive": "1", "classes": "2,3"}, "positive", "exactly one of"),
    ({"name": "x", "source": "mnist-5k", "classes": "2"}, "classes", "at least two classes"),
])
def test_add_task_validation(values, field, message):
    catalog = {"mnist-5k": tuple(str(d) for d in range(10)), "sketches": None}
    task, errors = validate_task(values, {"moon"}, catalog)
    assert field in errors and message in errors[field]


def test_add_task_validation_accepts_good_input():
    catalog = {"mnist-5k": tuple(str(d) for d in range(10))}
    task, errors = validate_task({"name": "is-7", "source": "mnist-5k", "positive": "7"}, set(), catalog)
    assert errors == {} and task == {"name": "is-7", "source": "mnist-5k", "positive": ["7"]}
    task, errors = validate_task({"name": "m", "source": "mnist-5k", "classes": "1, 2", "other": True}, set(), catalog)
    assert errors == {} and task["classes"] == ["1", "2"] and task["other"] is True
    P.make_command("add_task", task=task, role="base")   # what the form produces is a valid command


def test_the_model_is_plain_python():
    """No Textual in the model (it is reduced and tested without an app), and the store only inside functions
    (the first paint does not wait for zarr's import)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "tanas_tui" / "model"
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        names = {a.name.split(".")[0] for n in top if isinstance(n, ast.Import) for a in n.names}
        names |= {(n.module or "").split(".")[0] for n in top if isinstance(n, ast.ImportFrom)}
        anywhere = {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert "textual" not in anywhere and "torch" not in anywhere, path.name
        assert "store" not in names, path.name
