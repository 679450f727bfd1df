"""The one door: a job gets a JobContext, runs through `execute`, and every event it sends names its job."""
from __future__ import annotations

import os

import pytest

from engine.config import load_config
from engine.runtime.reporting import Reporter
from engine.service import jobs
from engine.service import protocol as P
from engine.service.context import JobContext
from store import Store
from tanas_tui.model import UiModel
from tests.synthetic import tiny_project

TINY = tiny_project(nodes=1, search="compare = false\n")


class Recorder(Reporter):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, dict]] = []

    def emit(self, event: str, **data) -> None:
        self.events.append((event, data))


@pytest.fixture
def cfg(tmp_path):
    path = tmp_path / "tanas.toml"
    path.write_text(TINY)
    return load_config(path, os.environ, {"project.store": str(tmp_path / "store.zarr")})


def test_a_task_aware_search_job_ends_with_no_job_left_running(cfg):
    """A task-aware search builds the dictionary first; its progress events used to carry job="dictionary", so the
    UI's status bar kept a job named "dictionary" running after the search had finished."""
    reporter = Recorder()
    with Store.open(cfg.store_path, "w", create=True) as store:
        ctx = JobContext(store, cfg, "cpu", reporter, "start_search-1")
        result = jobs.execute("start_search", {"target": "moon", "space": "task-aware"}, ctx)
    assert result["run_id"] == "moon-task-aware-0"
    progress = [data for name, data in reporter.events if name == "job_progress"]
    assert any(d["stage"].startswith("probe") for d in progress)       # the dictionary did report progress
    # a run's own counters (its retraining) go under the run's id, never under another job's
    assert {d["job"] for name, d in reporter.events if "job" in d} - {result["run_id"]} == {"start_search-1"}

    state = UiModel()
    state.apply_many(P.make_event(name, seq, data) for seq, (name, data) in enumerate(reporter.events, 1))
    assert state.current_job() is None


def test_unknown_job_kind_is_refused_before_it_starts(tmp_path):
    reporter = Recorder()
    with pytest.raises(jobs.JobError, match="unknown job kind 'nope'"):
        jobs.execute("nope", {}, JobContext(None, None, "cpu", reporter, "j"))
    assert reporter.events == []


def test_every_job_command_of_the_protocol_has_a_job_and_carries_config_and_device():
    assert set(P.JOB_COMMANDS) <= set(jobs.JOBS)
    for kind in P.JOB_COMMANDS:
        fields = set(P.COMMANDS[kind].__dataclass_fields__)
        assert {"config", "device"} <= fields, kind


def test_a_job_command_hands_its_config_and_device_to_the_job(tmp_path, cfg, monkeypatch):
    """`search` and `tasks add` sent to a running engine used to lose --config and --device; now the job carries
    the whole resolved config (plain data), and the context runs it with exactly that: one TOML parse in all."""
    from engine.config import loader

    parses = []
    real_parse = loader._parse
    monkeypatch.setattr(loader, "_parse", lambda *a: parses.append(a) or real_parse(*a))
    monkeypatch.setenv("TANAS_SEARCH_ROUNDS", "9")   # what the process running the job has: never read for it
    other = tmp_path / "other.toml"
    other.write_text(TINY.replace("seed = 0\n\n[dictionary]", "seed = 7\n\n[dictionary]"))
    carried = load_config(other, {"TANAS_SEARCH_ROUNDS": "3"}).snapshot()
    seen = {}

    def probe(ctx):
        seen["seed"], seen["device"], seen["rounds"] = ctx.config.project.seed, str(ctx.device), \
            ctx.config.search.rounds
        return {}

    jobs.JOBS["probe_ctx"] = probe
    try:
        base = JobContext(None, cfg, None, Recorder(), "j")
        cmd = P.make_command("sleep", config=carried, device="cpu")
        params = {k: v for k, v in cmd.payload().items() if k != "id"}
        params.pop("steps"), params.pop("seconds")
        jobs.execute("probe_ctx", params, base)
    finally:
        del jobs.JOBS["probe_ctx"]
    assert seen == {"seed": 7, "device": "cpu", "rounds": 3}
    assert len(parses) == 1


def test_a_job_is_checked_in_full_before_it_runs(cfg):
    """A queued job must be one that can run: bad fields are refused by `submission`, before any event."""
    reporter = Recorder()
    ctx = JobContext(None, cfg, "cpu", reporter, "j")
    bad = [
        ("add_task", {"task": {"name": "x", "source": "sketches", "positive": ["moon"], "seed": 2 ** 40}}, "seed"),
        ("add_task", {"task": {"name": "x", "source": "nowhere", "positive": ["moon"]}}, "nowhere"),
        ("add_task", {"task": {"name": "x", "source": "sketches", "positive": ["moon"], "val_fraction": 0.6,
                               "test_fraction": 0.5}}, "below 1"),
        ("add_task", {"task": {"name": "nope"}}, "no task named"),
        ("remove_task", {"task": ""}, "empty"),
        ("start_search", {"seed": 2 ** 33}, "seed"),
        ("start_search", {"device": "str"}, "device"),
        ("run_pipeline", {"config": ""}, "config"),
        ("run_pipeline", {"config": {**cfg.snapshot(), "search": {"alpha_lr": float("inf")}}}, "alpha_lr"),
    ]
    for kind, params, words in bad:
        with pytest.raises((jobs.JobError, ValueError), match=words):
            jobs.execute(kind, params, ctx)
    assert reporter.events == []
