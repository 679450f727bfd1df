"""Hostile input over the engine's socket: every malformed kind of line gets exactly one reply and the engine lives;
a client that floods without reading is dropped while another client is still served."""
from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from engine.service import protocol as P
from tanas_tui.client import EngineClient, _connect_socket, engine_running, start_engine, stop_engine

MALFORMED: dict[str, bytes] = {
    "not json": b"{",
    "not an object": b"[1, 2]",
    "not utf-8": b'{"v":2,"type":"status","id":"\xff\xfe"}',
    "integer of 5,000 digits": b'{"v":2,"type":"sleep","steps":' + b"9" * 5000 + b"}",
    "integer of 4,000 digits": b'{"v":2,"type":"sleep","steps":' + b"9" * 4000 + b"}",
    "100,000 nested lists": b"[" * 100_000,
    "nested objects": b'{"v":2,"type":"add_task","task":' + b'{"a":' * 50_000 + b"1" + b"}" * 50_001,
    "wrong type: steps a string": b'{"v":2,"type":"sleep","steps":"x"}',
    "wrong type: task a number": b'{"v":2,"type":"add_task","task":5}',
    "wrong type: id a list": b'{"v":2,"type":"status","id":[1]}',
    "NaN seconds": b'{"v":2,"type":"sleep","seconds":NaN}',
    "Infinity seconds": b'{"v":2,"type":"sleep","seconds":Infinity}',
    "negative steps": b'{"v":2,"type":"sleep","steps":-1}',
    "version true": b'{"v":true,"type":"status"}',
    "version 2.0": b'{"v":2.0,"type":"status"}',
    "version 3": b'{"v":3,"type":"status"}',
    "version a string": b'{"v":"1","type":"status"}',
    "no version": b'{"type":"status"}',
    "unknown type": b'{"v":2,"type":"format_disk"}',
    "type not a string": b'{"v":2,"type":["status"]}',
    "an event": b'{"v":2,"type":"log","seq":1,"level":"info","message":"x"}',
    "command with seq": b'{"v":2,"type":"status","seq":3}',
    "extra field": b'{"v":2,"type":"status","x":1}',
    "missing field": b'{"v":2,"type":"remove_task"}',
    "bad choice": b'{"v":2,"type":"start_search","space":"huge"}',
    "oversized": b'{"v":2,"type":"status","id":"' + b"x" * (P.MAX_MESSAGE_BYTES + 10) + b'"}',
}


def _engine(path):
    pid = start_engine(path, client_queue=512)
    yield path, pid
    if engine_running(path) is not None:
        stop_engine(path, timeout=10)


@pytest.fixture(scope="module")
def shared_engine(tmp_path_factory):
    """One engine for the tests that leave it running as they found it (an engine start costs seconds)."""
    yield from _engine(tmp_path_factory.mktemp("fuzz") / "store.zarr")


@pytest.fixture
def engine(tmp_path):
    yield from _engine(tmp_path / "store.zarr")


def _lines(sock: socket.socket, n: int, timeout: float = 30.0) -> list[dict]:
    sock.settimeout(timeout)
    buf, out = b"", []
    while len(out) < n:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
        *complete, buf = buf.split(b"\n")
        out += [json.loads(line) for line in complete]
    return out


def test_every_malformed_line_gets_exactly_one_reply_and_the_engine_lives(shared_engine):
    store, pid = shared_engine
    with _connect_socket(store, 30) as sock:
        for kind, line in MALFORMED.items():
            sock.sendall(line + b"\n")
            sock.sendall(b'{"v":2,"type":"status","id":"probe"}\n')
            replies = _lines(sock, 2)
            assert len(replies) == 2, f"{kind}: {replies}"
            assert replies[0]["type"] == "error", f"{kind}: {replies[0]}"
            assert replies[1]["type"] == "reply" and replies[1]["id"] == "probe", f"{kind}: an extra reply {replies}"
        # a flood that is read: one reply per line, in order
        n = 3000
        sock.sendall(b"".join(b'{"v":2,"type":"status","id":"%d"}\n' % i if i % 2 else b"garbage\n"
                              for i in range(n)))
        replies = _lines(sock, n)
        assert [r["type"] for r in replies] == ["error" if i % 2 == 0 else "reply" for i in range(n)]
        assert [r["id"] for r in replies[1::2]] == [str(i) for i in range(1, n, 2)]
    with EngineClient(store) as c:
        assert c.status()["pid"] == pid
    assert "Traceback" not in (store / "runs" / "engine.log").read_text()


def test_a_client_that_floods_without_reading_is_dropped_and_others_are_served(shared_engine):
    store, pid = shared_engine
    flooder = _connect_socket(store, 30)
    garbage = b"x\n" * 50_000
    dropped = threading.Event()

    def flood():
        try:
            for _ in range(400):  # 20 M lines: never finishes unless the engine cuts the flooder off
                flooder.sendall(garbage)
        except OSError:
            dropped.set()

    thread = threading.Thread(target=flood, daemon=True)
    thread.start()
    with EngineClient(store) as c:
        for _ in range(5):
            assert c.status()["pid"] == pid
    thread.join(120)
    assert dropped.is_set(), "the engine never dropped a client that floods without reading its replies"
    flooder.close()
    deadline = time.monotonic() + 20
    with EngineClient(store) as c:  # the flooder's connection is gone, not leaked
        while c.status()["clients"] > 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert c.status()["clients"] == 1


def test_attach_exits_5_when_its_engine_dies_and_another_starts(engine):
    import os
    import signal

    from typer.testing import CliRunner

    from tanas_tui.cli import app

    store, pid = engine
    with EngineClient(store) as c:
        job = c.submit("sleep", steps=5000, seconds=0.01)
    outcome = {}

    def attach():
        outcome["result"] = CliRunner().invoke(app, ["attach", "--store", str(store)])

    thread = threading.Thread(target=attach, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until the attach client is connected
        with EngineClient(store) as c:
            if c.status()["clients"] >= 2:
                break
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    start_engine(store)  # a new engine on the same store: it never runs the old job
    thread.join(60)
    assert not thread.is_alive(), "attach still waits for a job_done the new engine never sends"
    result = outcome["result"]
    assert result.exit_code == 5, result.output
    assert job in result.output and "run the same command again" in result.output


def test_a_background_engine_exits_after_idle_exit_minutes(tmp_path):
    from typer.testing import CliRunner

    from tanas_tui.cli import app

    store = tmp_path / "store.zarr"
    config = tmp_path / "tanas.toml"
    config.write_text(f'[project]\nstore = "{store}"\n\n[engine]\nidle_exit = 0.03\n')  # 1.8 s
    pid = start_engine(store, config)
    try:
        with EngineClient(store) as c:  # a client following events keeps it alive
            c.subscribe()
            assert c.status()["idle_exit"] == 0.03
            time.sleep(2.5)
            assert c.status()["pid"] == pid
        shown = CliRunner().invoke(app, ["engine", "status", "--config", str(config)])
        assert "idle exit: after 0.03 min" in shown.output, shown.output
        deadline = time.monotonic() + 60
        while engine_running(store) is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert engine_running(store) is None, "the idle engine did not exit"
        assert "idle for" in (store / "runs" / "engine.log").read_text()
    finally:
        if engine_running(store) is not None:
            stop_engine(store, timeout=10)


def test_a_burst_of_300_connections_is_queued_not_refused(shared_engine):
    import os
    import signal

    store, pid = shared_engine
    os.kill(pid, signal.SIGSTOP)  # nothing is accepted: only the listen backlog holds the burst
    socks, refused = [], 0
    try:
        from engine.service.protocol import SocketPath

        with SocketPath(store / "runs" / "engine.sock") as address:
            for _ in range(300):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.setblocking(False)
                try:
                    s.connect(address)
                except BlockingIOError:
                    refused += 1
                socks.append(s)
    finally:
        os.kill(pid, signal.SIGCONT)
        for s in socks:
            s.close()
    assert refused == 0
    with EngineClient(store) as c:
        assert c.status()["pid"] == pid
