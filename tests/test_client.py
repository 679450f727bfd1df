"""tanas_tui.client: finding the engine, the asyncio client, replay + follow without duplicates, reconnecting."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from engine.service import protocol as P
from tanas_tui.client import (AsyncEngineClient, EngineClient, EngineNotRunning, RequestFailed, engine_running,
                              start_engine, stop_engine)


@pytest.fixture
def store_path(tmp_path):
    path = tmp_path / "s.zarr"
    yield path
    if engine_running(path) is not None:
        stop_engine(path, timeout=10)


def test_no_engine(store_path):
    assert engine_running(store_path) is None
    runs = store_path / "runs"
    runs.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (runs / "engine.pid").write_text(f"{dead.pid}\n")   # a stale pid file of a process that is gone
    assert engine_running(store_path) is None
    (runs / "engine.pid").write_text(f"{os.getpid()}\n")  # a live pid, but no socket: not an engine
    assert engine_running(store_path) is None
    with pytest.raises(EngineNotRunning):
        EngineClient(store_path).connect()
    assert stop_engine(store_path) is None


def test_async_client_sends_typed_commands_and_gets_typed_replies(store_path):
    start_engine(store_path)

    async def main():
        async with AsyncEngineClient(store_path) as c:
            queued = await c.request(P.Sleep(steps=1, seconds=0.01))
            with pytest.raises(RequestFailed) as refused:
                await c.request(P.Pause(job="no-such-job"))
            return queued, refused.value, await c.status()

    with EngineClient(store_path) as follower:
        follower.subscribe()
        queued, refused, status = asyncio.run(asyncio.wait_for(main(), 30))
        seen = [e.TYPE for e in follower.follow_job(queued.data["job"], timeout=20)]
    assert isinstance(queued, P.Reply) and queued.command == "sleep" and queued.data["job"].startswith("sleep")
    assert refused.code == "no_job" and "no-such-job" in refused.error.message
    assert status["pid"] and "seq" in status
    assert seen[0] == "job_started" and seen[-1] == "job_done"


def test_subscribe_then_follow_sees_only_later_events(store_path):
    start_engine(store_path)
    with EngineClient(store_path) as c:
        job = c.submit("sleep", steps=2)   # before this client subscribes: covered by the seq subscribe returns
        time.sleep(0.5)
        seq = c.subscribe()
        later = c.submit("sleep", steps=1)
        seen = list(c.follow_job(later, timeout=20))
    assert all(e.seq > seq for e in seen) and not any(getattr(e, "job", None) == job for e in seen)


def test_reconnects_after_an_engine_restart(store_path):
    pid = start_engine(store_path)
    reconnects: list[int] = []
    with EngineClient(store_path) as c:
        c.subscribe()
        first = c.submit("sleep", steps=1)
        before = list(c.follow_job(first, timeout=20))[-1].seq
        os.kill(pid, signal.SIGKILL)   # a crash: pid, socket and lock files stay behind

        def restart_and_submit():
            time.sleep(0.5)
            start_engine(store_path)
            time.sleep(0.5)
            with EngineClient(store_path) as other:
                other.submit("sleep", steps=2)

        t = threading.Thread(target=restart_and_submit)
        t.start()
        seen = []
        for ev in c.events(timeout=20, reconnect=True, on_reconnect=reconnects.append):
            seen.append(ev)
            if isinstance(ev, P.JobDone):
                break
        t.join()
    assert reconnects and reconnects[0] >= before
    assert [e.TYPE for e in seen] == ["job_started", "job_progress", "job_progress", "job_done"]
    assert all(e.seq > before for e in seen)


def test_duplicate_events_are_dropped(store_path):
    start_engine(store_path)
    with EngineClient(store_path) as c:
        c.subscribe()
        job = c.submit("sleep", steps=3)
        seen = list(c.follow_job(job, timeout=20))
        # pretend the client had already seen everything up to the second event (e.g. from a replay)
        c.last_seq = seen[1].seq
        c._pending.extend(seen)
        again = []
        for ev in c.events(timeout=0.5):
            again.append(ev)
    assert [e.seq for e in again] == [e.seq for e in seen[2:]]


def test_store_path_longer_than_a_socket_address(tmp_path):
    store = tmp_path / ("d" * 60) / ("e" * 60) / "store.zarr"
    assert len(str(store / "runs" / "engine.sock")) > 108
    pid = start_engine(store)
    try:
        assert engine_running(store) == pid
        with EngineClient(store) as c:
            assert c.status()["pid"] == pid

        async def check():
            async with AsyncEngineClient(store) as ac:
                return (await ac.status())["pid"]

        assert asyncio.run(check()) == pid
    finally:
        assert stop_engine(store) == pid
