"""engine.service.protocol: every message round-trips; every kind of bad line is a ProtocolError with its code."""
from __future__ import annotations

import json

import numpy as np
import pytest

from engine.service import protocol as P

SAMPLES: dict[str, dict] = {
    "search_candidates": {"run_id": "r1", "round": 1, "candidates": ["ab", "cd"], "incumbent": "ab"},
    "weight_progress": {"run_id": "r1", "round": 0, "alternation": 1, "done": 3, "total": 10},
    "task_status": {"task_id": "t-1", "name": "mnist-3", "status": "ready"},
    "job_state": {"job": "j-1", "state": "paused"},
    "executor_status": {"executor": "ray: 1 node, 2/2 CPUs, 0/0 GPUs busy", "job": "j-1"},
    # commands
    "status": {}, "subscribe": {}, "shutdown": {},
    "add_task": {"task": {"name": "mnist-3", "source": "mnist-5k", "positive": ["3"]}, "role": "target"},
    "remove_task": {"task": "mnist-3"},
    "remove_search": {"run": "moon-task-aware-0"},
    "compute_distances": {"method": "transfer"},
    "noise_floor": {"method": "fisher"},
    "build_space": {"target": "uci-3", "kind": "standard"},
    "start_search": {"target": "uci-3", "space": "task-aware", "run_id": "r1", "seed": 7},
    "check_premise": {"target": "uci-3", "tasks": 8, "seeds": 3, "epochs": 2},
    "check_genotypes": {"random": 8, "epochs": 2},
    "run_pipeline": {"config": {"file": "/x/tanas.toml", "base_dir": "/x", "search": {"rounds": 1}}, "device": "cpu"},
    "sleep": {"steps": 3, "seconds": 0.5},
    "pause": {"job": "j1"}, "resume": {}, "stop": {"job": None},
    # events
    "job_started": {"job": "j1", "kind": "sleep", "params": {"steps": 3}},
    "job_progress": {"job": "j1", "stage": "probe", "done": 1, "total": 3},
    "job_done": {"job": "j1", "kind": "sleep", "params": {}, "status": "failed", "result": None,
                 "message": "boom", "error_types": ["ValueError", "Exception"], "seconds": 1.5},
    "task_added": {"task_id": "ab12", "name": "mnist-3", "role": "base"},
    "task_removed": {"task_id": "ab12", "name": "mnist-3"},
    "probe_progress": {"task_id": "ab12", "name": "mnist-3", "seed_index": 0, "epoch": 2, "max_epochs": 8,
                       "val_acc": 0.97, "loss": 0.1},
    "probe_done": {"task_id": "ab12", "name": "mnist-3", "val_acc": 0.97, "epochs": 3, "seconds": 2.0,
                   "representative": True},
    "distance": {"method": "fisher", "source": "a", "target": "b", "value": 0.25, "std": 0.0},
    "space_built": {"target": "b", "kind": "task-aware", "space": {"ops": {"sep_conv_3x3": 0.5}}},
    "alpha_step": {"run_id": "r1", "step": 4, "round": 1, "alternation": 0, "alpha": [0.1, -0.2],
                   "loss_train": 0.5, "loss_val": 0.6, "val_acc": [0.9, 0.8]},
    "search_round": {"run_id": "r1", "round": 1, "incumbent": "h1", "candidates": ["h1", "h2"],
                     "genotypes": [{"normal": []}, {"normal": []}]},
    "search_done": {"run_id": "r1", "result": {"test_error": 1.2, "params": 1000}},
    "warning": {"message": "slow", "code": "w1"},
    "log": {"message": "hello", "level": "debug"},
    "error": {"message": "bad", "code": "malformed", "id": "c1", "job": None},
    "reply": {"command": "status", "id": "c1", "data": {"pid": 3}},
    "dropped": {"last_seq": 12, "limit": 100, "message": "behind"},
}


def test_every_message_type_has_a_sample():
    assert set(SAMPLES) == set(P.MESSAGES)
    assert set(P.JOB_COMMANDS) <= set(P.COMMANDS)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_round_trip(name):
    cls = P.MESSAGES[name]
    fields = dict(SAMPLES[name])
    if issubclass(cls, P.Event):
        msg = cls(seq=41, **fields)
    else:
        msg = cls(id="req-1", **fields)
    line = P.encode(msg)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    obj = json.loads(line)
    assert obj["v"] == P.PROTOCOL_VERSION and obj["type"] == name
    assert ("seq" in obj) == issubclass(cls, P.Event)
    back = P.decode(line)
    assert back == msg and type(back) is cls


def test_make_event_validates_and_converts():
    ev = P.make_event("alpha_step", 5, {"run_id": "r", "step": np.int64(1), "round": 0, "alternation": 0,
                                        "alpha": np.array([0.5, 0.25], dtype=np.float32), "loss_train": 1,
                                        "loss_val": np.float32(0.5), "val_acc": (0.5, 1.0)})
    assert ev.seq == 5 and ev.alpha == [0.5, 0.25] and ev.loss_train == 1.0 and isinstance(ev.loss_train, float)
    assert ev.val_acc == [0.5, 1.0]
    with pytest.raises(P.ProtocolError) as err:
        P.make_event("distance", 1, {"method": "fisher", "source": "a", "target": "b"})
    assert err.value.code == "missing_field" and "value" in str(err.value)
    with pytest.raises(P.ProtocolError) as err:
        P.make_event("task_removed", 1, {"task_id": "a", "name": "x", "colour": "red"})
    assert err.value.code == "extra_field" and "colour" in str(err.value)
    with pytest.raises(P.ProtocolError) as err:
        P.make_event("probe_done", 1, {"task_id": "a", "name": "x", "val_acc": 0.9, "epochs": 1.5,
                                       "seconds": 1.0, "representative": True})
    assert err.value.code == "bad_field" and "epochs" in str(err.value)
    with pytest.raises(P.ProtocolError) as err:
        P.make_event("no_such_event", 1, {})
    assert err.value.code == "unknown_type"
    with pytest.raises(P.ProtocolError) as err:
        P.make_event("log", 1, {"message": "x", "seq": 3})
    assert err.value.code == "extra_field"


def test_field_values_are_checked():
    with pytest.raises(P.ProtocolError, match="role"):
        P.make_command("add_task", task={"name": "a"}, role="middle")
    with pytest.raises(P.ProtocolError, match="name"):
        P.make_command("add_task", task={"source": "x"})
    with pytest.raises(P.ProtocolError, match="level"):
        P.make_event("log", 1, {"message": "m", "level": "loud"})
    with pytest.raises(P.ProtocolError, match="bool"):
        P.make_event("probe_done", 1, {"task_id": "a", "name": "x", "val_acc": 0.9, "epochs": 1, "seconds": 1.0,
                                       "representative": 1})
    with pytest.raises(P.ProtocolError, match="int"):
        P.make_event("job_progress", 1, {"job": "j", "stage": "s", "done": True, "total": 3})


def _code(line: bytes | str) -> P.ProtocolError:
    with pytest.raises(P.ProtocolError) as err:
        P.decode(line)
    return err.value


def test_decode_errors_carry_codes_and_request_ids():
    assert _code(b"{not json\n").code == "malformed"
    assert _code(b"\xff\xfe\n").code == "malformed"
    assert _code(b"[1, 2]\n").code == "malformed"
    err = _code(b'{"v": 99, "type": "status", "id": "q1"}')
    assert err.code == "version" and err.request_id == "q1"
    assert _code(b'{"type": "status"}').code == "version"
    err = _code(b'{"v": 2, "type": "launch_rockets", "id": "q2"}')
    assert err.code == "unknown_type" and err.request_id == "q2"
    assert _code(b'{"v": 2}').code == "unknown_type"
    err = _code(b'{"v": 2, "type": "remove_task", "id": "q3"}')
    assert err.code == "missing_field" and err.request_id == "q3"
    assert _code(b'{"v": 2, "type": "status", "bogus": 1}').code == "extra_field"
    assert _code(b'{"v": 2, "type": "remove_task", "task": 5}').code == "bad_field"
    assert _code(b'{"v": 2, "type": "status", "seq": 3}').code == "extra_field"
    assert _code(b'{"v": 2, "type": "log", "message": "m"}').code == "missing_field"  # an event without seq
    assert _code(b'{"v": 2, "type": "log", "seq": "1", "message": "m"}').code == "bad_field"
    big = b'{"v": 2, "type": "log", "seq": 1, "message": "' + b"x" * P.MAX_MESSAGE_BYTES + b'"}'
    assert _code(big).code == "oversized"


def test_encode_refuses_oversized_and_unencodable():
    with pytest.raises(P.ProtocolError) as err:
        P.encode(P.Log(seq=1, message="x" * (P.MAX_MESSAGE_BYTES + 1)))
    assert err.value.code == "oversized"
    with pytest.raises(P.ProtocolError):
        P.make_event("search_done", 1, {"run_id": "r", "result": {"x": object()}})


def test_decode_command_rejects_events():
    with pytest.raises(P.ProtocolError) as err:
        P.decode_command(P.encode(P.Log(seq=1, message="hi")))
    assert err.value.code == "not_a_command"
    assert isinstance(P.decode_command('{"v": 2, "type": "status"}\n'), P.Status)


def test_nan_values_survive():
    ev = P.decode(P.encode(P.make_event("distance", 3, {"method": "fisher", "source": "a", "target": "b",
                                                        "value": float("nan")})))
    assert ev.value != ev.value
