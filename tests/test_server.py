"""The engine process over its socket: concurrent clients, disconnects, bad input, a second engine, slow clients,
pause / resume / stop, SIGTERM. Jobs here are the diagnostic `sleep` kind, so no training is involved."""
from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time

import pytest

from engine.service import protocol as P
from tanas_tui.client import EngineAlreadyRunning, EngineClient, engine_running, start_engine, stop_engine


def _until(client: EngineClient, predicate, timeout: float = 20.0) -> list[P.Event]:
    seen: list[P.Event] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = client.recv(max(0.01, deadline - time.monotonic()))
        if msg is None:
            break
        seen.append(msg)
        if predicate(msg):
            return seen
    raise AssertionError(f"condition not met; got {[m.TYPE for m in seen][-10:]}")


def _done(job: str):
    return lambda m: isinstance(m, P.JobDone) and m.job == job


@pytest.fixture
def store_path(tmp_path):
    path = tmp_path / "store.zarr"
    yield path
    pid = engine_running(path)
    if pid is not None:
        stop_engine(path, timeout=10)


@pytest.fixture
def engine(store_path):
    # 512 queued events: a client that reads keeps up with a burst even on a loaded machine, while one that never
    # reads is dropped long before the 6,000 events of the slow-client test.
    pid = start_engine(store_path, client_queue=512)
    return store_path, pid


def test_engine_files_and_status(engine):
    store, pid = engine
    runs = store / "runs"
    assert int((runs / "engine.pid").read_text()) == pid
    for name in ("engine.sock", "engine.pid", "engine.log", "engine.seq", "lock"):  # private, like the socket
        assert stat.S_IMODE(os.stat(runs / name).st_mode) == 0o600, name
    with EngineClient(store) as c:
        st = c.status()
    assert st["pid"] == pid and st["protocol"] == P.PROTOCOL_VERSION and st["job"] is None and st["queue"] == []
    assert st["executor"] == "local"  # the status line's executor; a ray one reads "ray: N nodes, a/b CPUs, ..."


def test_two_clients_at_once(engine):
    store, _ = engine
    with EngineClient(store) as a, EngineClient(store) as b:
        a.subscribe()
        b.subscribe()
        blocker = a.submit("sleep", steps=100_000, seconds=0.01)   # holds the worker: `job` waits in the queue
        job = a.submit("sleep", steps=5, seconds=0.02)
        seen = b.status()   # the other client sees the job the first one queued, behind the running blocker
        assert [q["id"] for q in seen["queue"]][-1] == job and blocker in \
            [q["id"] for q in seen["queue"]] + [(seen["job"] or {}).get("id")]
        a.request("stop", job=blocker)   # running: it stops at its next step; queued: it leaves the queue
        seen_a = _until(a, _done(job))
        seen_b = _until(b, _done(job))
    stream_a = [(m.TYPE, m.seq) for m in seen_a if m.seq and getattr(m, "job", None) == job]
    stream_b = [(m.TYPE, m.seq) for m in seen_b if m.seq and getattr(m, "job", None) == job]
    assert stream_a == stream_b
    assert [t for t, _ in stream_a] == ["job_started"] + ["job_progress"] * 5 + ["job_done"]
    seqs = [s for _, s in stream_a]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert seen_a[-1].status == "ok" and seen_a[-1].result == {"steps": 5}


def test_client_disconnect_mid_job(engine):
    store, _ = engine
    watcher = EngineClient(store).connect()
    watcher.subscribe()
    with EngineClient(store) as leaver:
        leaver.subscribe()
        job = leaver.submit("sleep", steps=15, seconds=0.03)
        _until(leaver, lambda m: isinstance(m, P.JobProgress) and m.job == job)
    # the submitting client is gone; the job goes on and the other client sees it finish
    events = _until(watcher, _done(job))
    watcher.close()
    assert events[-1].status == "ok"
    assert sum(isinstance(m, P.JobProgress) for m in events) == 15


def test_bad_messages_get_errors_and_the_engine_keeps_serving(engine):
    store, _ = engine
    with EngineClient(store) as c:
        c.send_raw(b"this is not json\n")
        c.send_raw(b'{"v": 2, "type": "launch", "id": "u1"}\n')
        c.send_raw(b'{"v": 7, "type": "status", "id": "v1"}\n')
        c.send_raw(b'{"v": 2, "type": "remove_task", "id": "m1"}\n')
        c.send_raw(b'{"v": 2, "type": "status", "id": "x1", "extra": true}\n')
        c.send_raw(b'{"v": 2, "type": "log", "seq": 1, "message": "hi"}\n')
        c.send_raw(b'{"v": 2, "type": "sleep", "steps": -1, "id": "b1"}\n')
        c.send_raw(b'{"v": 2, "type": "pause", "id": "p1"}\n')
        c.send_raw(b'{"v": 2, "type": "log", "message": "' + b"x" * (P.MAX_MESSAGE_BYTES + 10) + b'"}\n')
        errors = [c.recv(10) for _ in range(9)]
        assert all(isinstance(e, P.Error) and e.seq == 0 for e in errors), errors
        assert [e.code for e in errors] == ["malformed", "unknown_type", "version", "missing_field", "extra_field",
                                            "not_a_command", "bad_field", "no_job", "oversized"]
        assert [e.id for e in errors][1:5] == ["u1", "v1", "m1", "x1"]
        assert errors[7].id == "p1"
        # still serving, on the same connection and on new ones
        assert c.status()["job"] is None
    with EngineClient(store) as c2:
        c2.subscribe()
        job = c2.submit("sleep", steps=1)
        assert _until(c2, _done(job))[-1].status == "ok"


def test_status_reads_the_engines_config_once_not_per_call(tmp_path, monkeypatch):
    """`status` used to parse the config file twice per call; the engine now resolves it once, at its start."""
    import engine.config.loader as loader
    from engine.config import load_config
    from engine.service.server import EngineServer

    cfg = load_config(None, {"TANAS_PROJECT_DEVICE": "cpu"}, {"project.store": str(tmp_path / "s.zarr")})
    server = EngineServer(cfg.store_path, cfg)
    monkeypatch.setattr(loader, "_parse", lambda *a: pytest.fail("status parsed a config"))
    for _ in range(3):
        st = server.status()
    assert st["device"] == "cpu" and st["executor"] == "local" and st["config"] is None


def test_engine_log_is_capped_and_private(tmp_path):
    import logging

    from engine.service.runfiles import LOG_BACKUPS, PrivateRotatingLog

    path = tmp_path / "engine.log"
    handler = PrivateRotatingLog(path, max_bytes=10_000)
    logger = logging.getLogger("test-engine-log")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        for i in range(2_000):   # ~200 kB of tracebacks-worth of lines
            logger.error("line %d %s", i, "x" * 90)
    finally:
        logger.removeHandler(handler)
        handler.close()
    files = sorted(tmp_path.glob("engine.log*"))
    assert len(files) == 1 + LOG_BACKUPS
    assert all(f.stat().st_size <= 10_000 for f in files)
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    assert "line 1999" in path.read_text()


def test_second_engine_on_the_same_store_is_refused(engine):
    store, pid = engine
    proc = subprocess.run([sys.executable, "-m", "engine", "--store", str(store)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 4
    assert f"pid {pid}" in proc.stderr and "in use" in proc.stderr
    with pytest.raises(EngineAlreadyRunning) as err:
        start_engine(store)
    assert err.value.pid == pid
    assert engine_running(store) == pid  # the first engine is untouched


def test_slow_client_is_dropped_and_training_goes_on(engine):
    store, _ = engine
    slow = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(str(store / "runs" / "engine.sock"))
    slow.sendall(P.encode(P.Subscribe(id="s")))
    with EngineClient(store) as fast:
        fast.subscribe()
        job = fast.submit("sleep", steps=6000, seconds=0.0002)
        events = _until(fast, _done(job), timeout=60)
    assert events[-1].status == "ok"
    assert sum(isinstance(m, P.JobProgress) for m in events) == 6000
    slow.settimeout(10)
    data = b""
    while True:
        chunk = slow.recv(1 << 16)
        if not chunk:
            break
        data += chunk
    slow.close()
    msgs = [P.decode(line) for line in data.splitlines(keepends=True)]
    assert isinstance(msgs[-1], P.Dropped) and msgs[-1].limit == 512
    assert len(msgs) < 6000
    assert msgs[-1].last_seq == max(m.seq for m in msgs)


def test_pause_resume_stop(engine):
    store, _ = engine
    with EngineClient(store) as c:
        c.subscribe()
        job = c.submit("sleep", steps=400, seconds=0.01)
        _until(c, lambda m: isinstance(m, P.JobProgress))
        assert c.request("pause")["paused"] is True
        _until(c, lambda m: isinstance(m, P.JobState) and m.state == "paused")
        assert c.status()["job"]["paused"] is True
        assert c.recv(0.4) is None  # nothing moves while paused
        c.request("resume", job=job)
        _until(c, lambda m: isinstance(m, P.JobProgress))
        queued = c.submit("sleep", steps=1)
        assert c.request("stop", job=queued)["state"] == "removed"
        c.request("stop")
        done = _until(c, _done(job))[-1]
        assert done.status == "stopped"
        assert _until(c, _done(queued))[-1].status == "stopped"
        with pytest.raises(Exception, match="no job"):
            c.request("resume")


def test_sigterm_cleans_up_and_seq_keeps_increasing(engine):
    store, pid = engine
    with EngineClient(store) as c:
        c.subscribe()
        job = c.submit("sleep", steps=2)
        last = _until(c, _done(job))[-1].seq
    os.kill(pid, signal.SIGTERM)
    _, status = os.waitpid(pid, 0)   # start_engine's child: its exit status is ours to read
    assert os.waitstatus_to_exitcode(status) == 143   # 128 + SIGTERM, after a clean stop
    runs = store / "runs"
    assert not (runs / "engine.pid").exists() and not (runs / "engine.sock").exists()
    assert not (runs / "lock").exists()
    start_engine(store)
    with EngineClient(store) as c:
        assert c.subscribe() >= last
        job = c.submit("sleep", steps=1)
        assert min(m.seq for m in _until(c, _done(job)) if m.seq) > last


def test_shutdown_command(engine):
    store, pid = engine
    with EngineClient(store) as c:
        c.subscribe()
        job = c.submit("sleep", steps=1000, seconds=0.01)
        _until(c, lambda m: isinstance(m, P.JobProgress))
        assert c.request("shutdown")["stopping"] == job
        assert _until(c, _done(job))[-1].status == "stopped"
    assert stop_engine(store) is None or engine_running(store) is None
