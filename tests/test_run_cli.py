"""`tanas-tui run` headless on a non-terminal, through the engine, `--detach` + `attach`, `engine start|stop|status`,
and exit codes. One tiny pipeline (sketches, 1-epoch probes, a 1-round search) is built once per module; the
other runs reuse the store."""
from __future__ import annotations

import os
import re

import pytest
from typer.testing import CliRunner

from tanas_tui.cli import app
from tanas_tui.client import engine_running, stop_engine
from tanas_tui.exitcodes import ExitCode
from tests.synthetic import tiny_project

TINY = tiny_project(search="compare = false\n")
STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")
runner = CliRunner()


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("runcli")
    (root / "tanas.toml").write_text(TINY)
    result = runner.invoke(app, ["run", str(root / "tanas.toml")])
    yield root, result
    if engine_running(root / "store.zarr") is not None:
        stop_engine(root / "store.zarr", timeout=20)


def _progress_lines(output: str) -> list[str]:
    return output[: output.index("Nearest tasks")].strip().splitlines()


def test_run_prints_plain_timestamped_lines_and_the_result(project):
    _, result = project
    assert result.exit_code == 0, result.output
    lines = _progress_lines(result.output)
    assert lines and all(STAMP.match(line) for line in lines), lines
    assert "\x1b[" not in result.output  # no terminal control codes in a log file
    text = result.output
    for expected in ("job run_pipeline started", "probe circle", "probe moon", "distance[fisher]",
                     "space task-aware (operations form) built for moon: ", "genotypes", "search moon-task-aware-0", "job run_pipeline ok"):
        assert expected in text, expected
    assert "Nearest tasks of moon" in text and "circle" in text.split("Nearest tasks of moon")[1]
    assert "Result: moon" in text and "FUSE, task-aware" in text and "Test error" in text
    assert "time by stage: dictionary" in text and "wall time" in text


def test_rerun_reuses_the_store(project):
    root, first = project
    again = runner.invoke(app, ["run", str(root / "tanas.toml")])
    assert again.exit_code == 0, again.output
    assert "probe circle" not in again.output and "distance[" not in again.output
    result_table = lambda out: out[out.index("Result: moon"):out.index("time by stage")]  # noqa: E731
    assert result_table(again.output) == result_table(first.output)


def test_run_through_the_engine_detach_attach(project):
    root, first = project
    cfg = str(root / "tanas.toml")
    started = runner.invoke(app, ["engine", "start", "--config", cfg])
    assert started.exit_code == 0 and "engine started, pid" in started.output, started.output
    pid = engine_running(root / "store.zarr")
    again = runner.invoke(app, ["engine", "start", "--config", cfg])
    assert again.exit_code == 0 and f"already running, pid {pid}" in again.output

    via = runner.invoke(app, ["run", cfg])
    assert via.exit_code == 0, via.output
    assert f"engine (pid {pid})" in via.output and "job run_pipeline ok" in via.output
    assert "Result: moon" in via.output and "FUSE, task-aware" in via.output

    detached = runner.invoke(app, ["run", cfg, "--detach"])
    assert detached.exit_code == 0 and "queued in the engine" in detached.output, detached.output
    attached = runner.invoke(app, ["attach", "--config", cfg])
    assert attached.exit_code == 0, attached.output
    assert ("attached to job" in attached.output and "Result: moon" in attached.output) or "idle" in attached.output

    # Writing commands hand their work to the engine that holds the store instead of failing on its lock.
    searched = runner.invoke(app, ["search", "moon", "--space", "standard", "--config", cfg])
    assert searched.exit_code == 0, searched.output
    assert f"engine (pid {pid})" in searched.output and "run moon-standard-0" in searched.output
    added = runner.invoke(app, ["tasks", "add", "square", "--source", "sketches", "--positive", "square",
                                "--config", cfg])
    assert added.exit_code == 0 and "adding the task there" in added.output, added.output
    assert "task square (" in added.output
    removed = runner.invoke(app, ["tasks", "remove", "square", "--yes", "--config", cfg])
    assert removed.exit_code == 0 and "removed task square" in removed.output, removed.output
    listed = runner.invoke(app, ["tasks", "list", "--config", cfg])
    assert "square" not in listed.output and "circle" in listed.output

    status = runner.invoke(app, ["engine", "status", "--config", cfg])
    assert status.exit_code == 0 and f"engine pid {pid}" in status.output

    # the job queue: a busy engine queues one run; the same run again is refused as a duplicate; cancel works
    from tanas_tui.client import EngineClient

    with EngineClient(root / "store.zarr") as client:
        blocker = client.submit("sleep", steps=2000, seconds=0.01)
    queued = runner.invoke(app, ["run", cfg, "--detach"])
    assert "queued in the engine" in queued.output, queued.output
    job = queued.output.split("job ", 1)[1].split()[0]
    duplicate = runner.invoke(app, ["run", cfg, "--detach"])
    assert duplicate.exit_code == 0 and f"already queued in the engine (pid {pid}) as job {job}" in duplicate.output
    listed_jobs = runner.invoke(app, ["engine", "status", "--config", cfg]).output
    assert blocker in listed_jobs and "running" in listed_jobs and job in listed_jobs and "queued #1" in listed_jobs
    assert "paused for" not in listed_jobs
    cancelled = runner.invoke(app, ["engine", "cancel", job, "--config", cfg])
    assert cancelled.exit_code == 0 and "removed from the queue" in cancelled.output, cancelled.output
    assert job not in runner.invoke(app, ["engine", "status", "--config", cfg]).output
    runner.invoke(app, ["engine", "cancel", blocker, "--config", cfg])
    missing = runner.invoke(app, ["engine", "cancel", "nope-1", "--config", cfg])
    assert missing.exit_code == ExitCode.NOT_FOUND and "nope-1" in missing.output
    stopped = runner.invoke(app, ["engine", "stop", "--config", cfg])
    assert stopped.exit_code == 0 and f"engine stopped (pid {pid})" in stopped.output
    assert engine_running(root / "store.zarr") is None
    none = runner.invoke(app, ["engine", "status", "--config", cfg])
    assert "no engine is running" in none.output
    gone = runner.invoke(app, ["attach", "--config", cfg])
    assert gone.exit_code == 0 and "nothing is running" in gone.output


def test_search_detach_hands_the_search_to_the_engine(project):
    root, _ = project
    cfg = str(root / "tanas.toml")
    detached = runner.invoke(app, ["search", "moon", "--seed", "3", "--detach", "--config", cfg])
    assert detached.exit_code == 0 and "queued in the engine" in detached.output, detached.output
    job = detached.output.split("job ", 1)[1].split()[0]
    try:
        attached = runner.invoke(app, ["attach", "--config", cfg])
        assert attached.exit_code == 0, attached.output
        listed = runner.invoke(app, ["searches", "list", "--config", cfg])
        assert "moon-task-aware-3" in listed.output and job.startswith("start_search")
    finally:
        stop_engine(root / "store.zarr", timeout=20)


def test_changed_search_settings_run_beside_the_stored_ones_with_seed_and_run_id(project):
    root, _ = project
    changed = root / "changed.toml"           # same store, [search] rounds changed
    changed.write_text(TINY.replace("[search]\nrounds = 1", "[search]\nrounds = 2"))
    assert changed.read_text() != TINY
    refused = runner.invoke(app, ["run", str(changed)])
    assert refused.exit_code == ExitCode.USAGE, refused.output
    assert "moon-task-aware-0" in refused.output and "rounds" in refused.output
    assert "`tanas-tui run --seed N`" in refused.output and "`--run-id ID`" in refused.output
    beside = runner.invoke(app, ["run", str(changed), "--seed", "5", "--run-id", "moon-two-rounds"])
    assert beside.exit_code == 0, beside.output
    assert "search moon-two-rounds done" in beside.output and "probe circle" not in beside.output
    listed = runner.invoke(app, ["searches", "list", "--config", str(changed)]).output
    assert "moon-two-rounds" in listed and "moon-task-aware-0" in listed
    dry = runner.invoke(app, ["run", str(changed), "--seed", "5", "--dry-run"])
    assert dry.exit_code == 0 and "seed 5" in dry.output
    bad = runner.invoke(app, ["run", str(changed), "--seed", str(2 ** 40)])
    assert bad.exit_code == ExitCode.USAGE and "seed" in bad.output


def test_exit_codes(project, tmp_path):
    root, _ = project
    bad = tmp_path / "bad.toml"
    bad.write_text("[project]\nseeed = 1\n")
    result = runner.invoke(app, ["run", str(bad)])
    assert result.exit_code == ExitCode.USAGE and "seeed" in result.output

    from store import Store

    with Store.open(root / "store.zarr", "w"):
        locked = runner.invoke(app, ["run", str(root / "tanas.toml")])
        engine = runner.invoke(app, ["engine", "start", "--config", str(root / "tanas.toml")])
        detached = runner.invoke(app, ["run", "--detach", str(root / "tanas.toml")])
    assert locked.exit_code == ExitCode.STORE and ("in use" in locked.output or "already open" in locked.output)
    for result in (engine, detached):
        assert result.exit_code == ExitCode.STORE and f"in use by pid {os.getpid()}" in result.output, result.output


def test_renderers_take_every_event_kind():
    import io

    from rich.console import Console

    from engine.service import protocol as P
    from tanas_tui.headless import PlainRenderer, RichRenderer, make_renderer
    from tests.test_protocol import SAMPLES

    events = [cls(seq=i + 1, **SAMPLES[name]) for i, (name, cls) in enumerate(P.EVENTS.items())]
    plain_out = io.StringIO()
    plain = make_renderer(Console(file=plain_out, force_terminal=False))
    assert isinstance(plain, PlainRenderer)
    for ev in events:
        plain.handle(ev)
    lines = plain_out.getvalue().splitlines()
    assert len(lines) == len(events) - 1  # every event but the bare reply gets a line
    assert all(STAMP.match(line) for line in lines)
    assert any("NOT epsilon-representative" not in line and "probe mnist-3 done" in line for line in lines)

    tty_out = io.StringIO()
    rich = make_renderer(Console(file=tty_out, force_terminal=True, width=100))
    assert isinstance(rich, RichRenderer)
    for ev in events:
        rich.handle(ev)
    rich.close()
    text = tty_out.getvalue()
    assert "pipeline" in text or "probe" in text
    assert "task mnist-3 added as base" in text and "warning: slow" in text
