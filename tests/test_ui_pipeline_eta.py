"""The status line carries one time left for the whole job (issue 23 item 10, UI part), from the same estimator as
headless output: none before a search is measured, then the job's rest, standing still while the job is paused."""
from __future__ import annotations

import re

from engine.service import protocol as P
from tanas_tui.components.status_bar import StatusBar
from ui_fixtures import FakeClient, async_test, fixture_store, settle  # noqa: F401

JOB, RUN = "run_pipeline-1", "moon-task-aware-0"


def _events(now):
    seq = iter(range(1000, 2000))

    def ev(name, **data):
        return P.make_event(name, next(seq), data)

    yield 0, ev("job_started", job=JOB, kind="run_pipeline")
    yield 0, ev("job_progress", job=JOB, stage="search", done=5, total=7)
    yield 0, ev("search_candidates", run_id=RUN, round=0, candidates=["a", "b"])
    yield 10, ev("weight_progress", run_id=RUN, round=0, alternation=0, done=10, total=20)
    yield 20, ev("weight_progress", run_id=RUN, round=0, alternation=0, done=20, total=20)
    yield 25, ev("job_state", job=JOB, state="paused")


def _eta(app) -> str | None:
    found = re.search(r"ETA ~(\S+)", app.query_one(StatusBar).job)
    return found.group(1) if found else None


@async_test
async def test_the_status_line_shows_the_jobs_time_left_and_it_stands_still_when_paused(fixture_store, tmp_path):
    from engine.config import load_config
    from tanas_tui.app import TanasApp
    from tests.synthetic import tiny_project

    path = tmp_path / "tanas.toml"
    path.write_text(tiny_project(search='compare = true\narms = ["random", "fuse-task-aware"]').replace(
        "rounds = 1", "rounds = 2").replace("final_epochs = 1", "final_epochs = 2"))
    cfg = load_config(path, {})

    clock = [1_000.0]
    app = TanasApp(fixture_store, cfg, connect=False, clock=lambda: clock[0],
                   client_factory=lambda path: FakeClient([], None))
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(app, pilot)
        seen = []
        for t, event in _events(clock):
            clock[0] = 1_000.0 + t
            app.ingest([event])
            await settle(app, pilot)
            seen.append(_eta(app))
        assert seen[:3] == [None, None, None]        # nothing measured yet: no guess
        assert seen[3] is not None and seen[4] is not None
        paused = seen[5]
        clock[0] += 600                               # ten minutes paused
        app.ingest([P.make_event("log", 3000, {"level": "info", "message": "still paused"})])
        await settle(app, pilot)
        assert _eta(app) == paused
