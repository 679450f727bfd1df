"""A job sent to a running engine runs with the settings of the shell that sent it (file, TANAS_* and flags resolved
once, there), never with the environment the engine happened to start in; a job that cannot run is refused at
submission, over the real socket, and nothing is queued."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from engine.service import protocol as P
from tanas_tui.cli import app
from tanas_tui.client import EngineClient, engine_running, start_engine, stop_engine
from tests.synthetic import tiny_project

runner = CliRunner()


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "tanas.toml").write_text(tiny_project(search="compare = false\n"))
    store = tmp_path / "store.zarr"
    # The engine process inherits these: rounds 2, final_epochs 2 are what it would use if it read its environment.
    monkeypatch.setenv("TANAS_SEARCH_ROUNDS", "2")
    monkeypatch.setenv("TANAS_SEARCH_FINAL_EPOCHS", "2")
    pid = start_engine(store, tmp_path / "tanas.toml")
    monkeypatch.delenv("TANAS_SEARCH_ROUNDS")
    monkeypatch.delenv("TANAS_SEARCH_FINAL_EPOCHS")
    yield tmp_path, store, pid
    if engine_running(store) is not None:
        stop_engine(store, timeout=20)


def test_the_engine_runs_the_submitting_shells_settings(project):
    root, store, pid = project
    result = runner.invoke(app, ["search", "moon", "--space", "standard", "--seed", "7", "--config",
                                 str(root / "tanas.toml")],
                           env={"TANAS_SEARCH_ROUNDS": "1", "TANAS_SEARCH_FINAL_EPOCHS": "1"})
    assert result.exit_code == 0, result.output
    assert f"engine (pid {pid})" in result.output            # it did go through the engine
    from store import Store

    with Store.open(store, "r") as st:
        config = st.search("moon-standard-7")["config"]
        snapshot = st.attrs["config"]
    assert (config["rounds"], config["final_epochs"]) == (1, 1)
    assert snapshot["search"]["rounds"] == 1 and snapshot["project"]["store"] == str(store.resolve())


HOSTILE = {
    "add_task device a word": ("add_task", {"task": {"name": "sketch-star", "source": "sketches",
                                                     "positive": ["star"]}, "device": "str"}),
    "add_task config an empty string": ("add_task", {"task": {"name": "circle"}, "config": ""}),
    "add_task task of an unknown source": ("add_task", {"task": {"name": "x", "source": "cifar",
                                                                "positive": ["1"]}}),
    "add_task task not in the config": ("add_task", {"task": {"name": "nope"}}),
    "add_task task seed 2**40": ("add_task", {"task": {"name": "x", "source": "sketches", "positive": ["star"],
                                                       "seed": 2 ** 40}}),
    "add_task task seed 2**70": ("add_task", {"task": {"name": "x", "source": "sketches", "positive": ["star"],
                                                       "seed": 2 ** 70}}),
    "add_task task nested 900 deep": None,
    "remove_task task empty": ("remove_task", {"task": ""}),
    "remove_task task a control character": ("remove_task", {"task": "a\nb"}),
    "remove_search run empty": ("remove_search", {"run": " "}),
    "build_space target empty": ("build_space", {"target": ""}),
    "start_search seed 2**40": ("start_search", {"seed": 2 ** 40}),
    "start_search run_id empty": ("start_search", {"run_id": ""}),
    "start_search device cuda:x": ("start_search", {"device": "cuda:x"}),
    "compute_distances method bogus": ("compute_distances", {"method": "bogus"}),
    "noise_floor method bogus": ("noise_floor", {"method": "bogus"}),
    "run_pipeline config a list": ("run_pipeline", {"config": [1]}),
    "run_pipeline config alpha_lr inf": "alpha_lr",
    "run_pipeline config with no tasks and no target": "empty",
    "sleep seconds 400 digits": None,
    "status id of 1 MiB": None,
}


def _raw(kind: str, fields: dict) -> bytes:
    import json

    return json.dumps({"v": P.PROTOCOL_VERSION, "type": kind, "id": "h", **fields}).encode() + b"\n"


def _lines(root, store) -> dict[str, bytes]:
    from engine.config import load_config

    snapshot = load_config(root / "tanas.toml", {}).snapshot()
    out = {}
    for name, spec in HOSTILE.items():
        if spec == "alpha_lr":
            bad = {**snapshot, "search": {**snapshot["search"], "alpha_lr": float("inf")}}
            out[name] = _raw("run_pipeline", {"config": bad})
        elif spec == "empty":
            out[name] = _raw("run_pipeline", {"config": {**snapshot, "tasks": [], "target": None}})
        elif spec is not None:
            out[name] = _raw(*spec)
    out["add_task task nested 900 deep"] = (b'{"v":%d,"type":"add_task","id":"h","task":{"name":"x","source":'
                                            % P.PROTOCOL_VERSION + b'{"a":' * 900 + b"1" + b"}" * 901 + b"\n")
    out["sleep seconds 400 digits"] = (b'{"v":%d,"type":"sleep","id":"h","seconds":' % P.PROTOCOL_VERSION
                                       + b"9" * 400 + b"}\n")
    out["status id of 1 MiB"] = (b'{"v":%d,"type":"status","id":"' % P.PROTOCOL_VERSION
                                 + b"i" * (P.MAX_MESSAGE_BYTES - 100) + b'"}\n')
    return out


def test_every_hostile_job_field_gets_an_error_reply_and_queues_nothing(project):
    root, store, pid = project
    lines = _lines(root, store)
    assert set(lines) == set(HOSTILE)
    with EngineClient(store) as client:
        client.subscribe()
        for name, line in lines.items():
            client.send_raw(line)
            reply = client.recv(20)
            assert isinstance(reply, P.Error) and reply.seq == 0, (name, reply)
            assert reply.code in ("bad_field", "malformed"), (name, reply)
            status = client.status()
            assert status["job"] is None and status["queue"] == [], (name, status)
        # still serving, and a valid job still runs
        job = client.submit("sleep", steps=1)
        done = list(client.follow_job(job))[-1]
        assert isinstance(done, P.JobDone) and done.status == "ok" and client.status()["pid"] == pid
    log = (store / "runs" / "engine.log").read_text()
    assert "Traceback" not in log and "RecursionError" not in log
