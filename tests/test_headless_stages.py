"""Every stage of a pipeline as itself in headless output (issue 23 item 10): the winner's retraining with its own
epoch counter (not a search bar stuck at 100 %), the searches' bars with their real totals instead of `6/?`, one time
left for the whole job that stands still while it is paused, and a spinner with the elapsed time for an export."""
from __future__ import annotations

import io
import re
from types import SimpleNamespace

import pytest
from rich.console import Console

from engine.service import protocol as P
from tanas_tui.headless import PlainRenderer, RichRenderer, make_renderer, working
from tanas_tui.pipeline_eta import PipelineEta

CFG = SimpleNamespace(
    search=SimpleNamespace(rounds=2, alternations=1, w_epochs=1, candidates=2, final_epochs=2, compare=True,
                           arms=("random", "fuse-task-aware"), repeats=1, fixed_networks=()),
    dictionary=SimpleNamespace(genotype_rounds=1))
JOB, RUN = "run_pipeline-1", "moon-task-aware-0"


def ev(name, seq=1, **data):
    return P.make_event(name, seq, data)


def stage(name, done):
    return ev("job_progress", job=JOB, stage=name, done=done, total=7)


def weights(done, round_=0):
    return ev("weight_progress", run_id=RUN, round=round_, alternation=0, done=done, total=20)


def alpha(step, round_=0):
    return ev("alpha_step", run_id=RUN, step=step, round=round_, alternation=0, alpha=[0.0, 0.1], loss_train=0.5,
              loss_val=0.4, val_acc=[0.5, 0.6])


def retrain(done):
    return ev("job_progress", job=RUN, stage="retraining abc123", done=done, total=2)


def test_the_time_left_adds_the_search_its_retraining_and_the_comparison_and_stands_still_when_paused():
    eta = PipelineEta(CFG)
    assert eta.remaining(0.0) is None                       # nothing measured yet: no guess
    for t, e in ((0, stage("search", 5)), (0, ev("search_candidates", run_id=RUN, round=0, candidates=["a", "b"])),
                 (10, weights(10)), (20, weights(20))):
        eta.feed(e, t)
    # 20 s for 0.45 of the search's 2 alternations; retraining 2 epochs of one of 2 candidates at 1 s a batch
    # (20 batches an epoch, train+val 1.1x); then the comparison's random arm at the search's whole duration
    search_left = 20 * 0.55 / 0.45 + 2 * 20 * 1.0 * 1.1 / 2
    assert eta.remaining(20) == pytest.approx(search_left + (20 + search_left))
    eta.feed(ev("job_state", job=JOB, state="paused"), 25)
    frozen = eta.remaining(25)
    assert eta.remaining(400) == pytest.approx(frozen)      # paused time is not work
    eta.feed(ev("job_state", job=JOB, state="running"), 400)
    assert eta.remaining(405) == pytest.approx(frozen - 5 * (1 + 0))   # the clock runs again, from where it stood
    for t, e in ((420, alpha(0)), (430, ev("search_round", run_id=RUN, round=0, incumbent="a", candidates=["a"],
                                               genotypes=[])),
                 (431, ev("search_candidates", run_id=RUN, round=1, candidates=["a", "b"])), (450, alpha(1, 1)),
                 (455, ev("search_round", run_id=RUN, round=1, incumbent="a", candidates=["a"], genotypes=[])),
                 (460, retrain(0)), (470, retrain(1))):
        eta.feed(e, t)
    # retraining measured: 10 s an epoch, 1 to go; the comparison arm at the search's duration so far
    assert eta.remaining(470) == pytest.approx(10 + (470 - 375 - 0) + 10)
    eta.feed(ev("search_done", run_id=RUN, result={}), 480)
    eta.feed(stage("comparison", 6), 480)
    eta.feed(ev("job_progress", job=JOB, stage="comparison arms", done=0, total=2), 480)
    assert eta.remaining(480) == pytest.approx(2 * (480 - 375))   # two arms at the measured search's duration


def _bars(renderer):
    return {t.description: t for t in renderer.progress.tasks}


def test_rich_bars_show_each_stage_as_itself_with_its_own_counter():
    out = io.StringIO()
    r = make_renderer(Console(file=out, force_terminal=True, width=160), CFG)
    assert isinstance(r, RichRenderer)
    for e in (ev("job_started", job=JOB, kind="run_pipeline"), stage("search", 5),
              ev("search_candidates", run_id=RUN, round=0, candidates=["a", "b"]), weights(10), weights(20),
              alpha(0), alpha(1)):
        r.handle(e)
    bars = _bars(r)
    search = bars[f"search {RUN}"]
    assert search.total == 2 and 0 < search.completed <= 1          # alternations of 2, not α steps of "?"
    assert "round 1/2" in search.fields["info"]
    assert re.search(r"search, ETA ~\d", bars["pipeline"].fields["info"])   # one time left for the pipeline
    r.handle(retrain(0))
    r.handle(retrain(1))
    bars = _bars(r)
    assert f"search {RUN}" not in bars and f"weights {RUN}" not in bars     # no search bar stuck at 100 %
    assert bars["retraining abc123"].total == 2 and bars["retraining abc123"].completed == 1
    assert "epoch 1/2" in bars["retraining abc123"].fields["info"]
    r.handle(ev("search_done", run_id=RUN, result={}))
    assert "retraining abc123" not in _bars(r)
    r.handle(stage("comparison", 6))
    r.handle(ev("job_progress", job=JOB, stage="comparison arms", done=1, total=3))
    assert _bars(r)["comparison arms"].completed == 1 and _bars(r)["comparison arms"].total == 3
    r.handle(ev("job_done", job=JOB, kind="run_pipeline", status="ok"))
    assert "ETA" not in _bars(r)["pipeline"].fields["info"]
    r.close()


def test_plain_lines_carry_the_time_left_and_the_retraining_counter():
    out = io.StringIO()
    r = make_renderer(Console(file=out, force_terminal=False), CFG)
    assert isinstance(r, PlainRenderer)
    for e in (ev("job_started", job=JOB, kind="run_pipeline"), stage("search", 5),
              ev("search_candidates", run_id=RUN, round=0, candidates=["a", "b"]),
              weights(10), weights(20), alpha(0),
              ev("search_round", run_id=RUN, round=0, incumbent="abc123", candidates=["a"], genotypes=[]),
              retrain(0), retrain(1)):
        r.handle(e)
    lines = out.getvalue().splitlines()
    assert re.search(r"round 1: incumbent abc123 \(ETA ~\d", lines[-3]), lines
    assert f"search {RUN} retraining abc123: 1/2 (ETA ~" in lines[-1], lines     # the run's own counter, named
    assert "stage 6/7: search" in lines[1] and "ETA" not in lines[1]      # nothing measured yet: no guess


def test_an_export_shows_a_spinner_with_the_elapsed_time_on_a_terminal():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=80)
    with working(console, "exporting onnx of r") as step:
        assert step.progress is not None and step.progress.tasks[0].description == "exporting onnx of r"
        assert step.progress.tasks[0].total is None           # a spinner, not a bar
    assert step.progress.finished or not step.progress.live.is_started
    piped = io.StringIO()
    with working(Console(file=piped, force_terminal=False), "exporting onnx of r"):
        pass
    assert piped.getvalue().strip() == "exporting onnx of r…"
