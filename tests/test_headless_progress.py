"""The headless Rich renderer (issue 11 item 8): finished bars complete or go, one bar per stage counter (no
duplicate distance bar), and a paused job's bars stand still and say so."""
from __future__ import annotations

import io

from rich.console import Console

from engine.service import protocol as P
from tanas_tui.headless import PlainRenderer, make_renderer


def _events(*items):
    return [P.make_event(name, i + 1, data) for i, (name, data) in enumerate(items)]


def _bars(renderer):
    return {t.description: t for t in renderer.progress.tasks}


def _spinner(renderer, task) -> str:
    column = renderer.progress.columns[0]
    return column.render(task).plain


def test_rich_bars_finish_go_and_pause():
    out = io.StringIO()
    r = make_renderer(Console(file=out, force_terminal=True, width=120))
    job = "j1"
    probe = lambda name, epoch: ("probe_progress", {"task_id": name, "name": name, "seed_index": 0, "epoch": epoch,  # noqa: E731
                                                    "max_epochs": 2, "val_acc": 0.9, "loss": 0.1})
    done = lambda name: ("probe_done", {"task_id": name, "name": name, "val_acc": 0.97, "epochs": 2, "seconds": 1.0,  # noqa: E731
                                        "representative": True})
    for ev in _events(("job_started", {"job": job, "kind": "run_pipeline"}),
                      ("job_progress", {"job": job, "stage": "dictionary", "done": 0, "total": 7}),
                      ("job_progress", {"job": job, "stage": "probe a", "done": 0, "total": 1}),
                      probe("a", 1), probe("a", 2), done("a"),
                      ("job_progress", {"job": job, "stage": "probe b", "done": 0, "total": 1}),
                      probe("b", 1), done("b")):
        r.handle(ev)
    bars = _bars(r)
    assert not any(d.startswith("probe ") and d != "probe b" for d in bars)   # no dead bar per finished probe
    assert "probe" not in bars
    for ev in _events(("job_progress", {"job": job, "stage": "distances", "done": 1, "total": 7}),
                      *[("distance", {"method": "fisher", "source": f"s{i}", "target": "t", "value": 0.1, "std": 0.0})
                        for i in range(6)],
                      ("job_progress", {"job": job, "stage": "fisher distances", "done": 6, "total": 6})):
        r.handle(ev)
    bars = _bars(r)
    assert set(bars) == {"pipeline", "fisher distances"}   # one distance bar, not two
    r.handle(P.make_event("job_state", 20, {"job": job, "state": "paused"}))
    assert {_spinner(r, t) for t in r.progress.tasks if not t.finished} == {"‖"}
    assert all(not t.started or t.stop_time is not None for t in r.progress.tasks)   # elapsed time frozen
    r.handle(P.make_event("job_state", 21, {"job": job, "state": "running"}))
    assert "‖" not in {_spinner(r, t) for t in r.progress.tasks}
    r.handle(P.make_event("job_done", 22, {"job": job, "kind": "run_pipeline", "status": "ok"}))
    bars = _bars(r)
    assert set(bars) == {"pipeline"} and bars["pipeline"].finished
    r.close()
    assert "paused (resume to go on)" in out.getvalue() and "resumed" in out.getvalue()


def test_plain_lines_report_a_weight_phase_by_quarters():
    out = io.StringIO()
    r = make_renderer(Console(file=out, force_terminal=False))
    assert isinstance(r, PlainRenderer)
    for i in range(1, 41):
        r.handle(P.make_event("weight_progress", i, {"run_id": "r", "round": 0, "alternation": 0, "done": i,
                                                       "total": 40}))
    lines = out.getvalue().splitlines()
    assert [line.split("batch ")[1] for line in lines] == ["1/40", "10/40", "20/40", "30/40", "40/40"]
