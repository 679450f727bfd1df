"""The store's writer lock, across real processes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from store import Store, StoreLocked

ROOT = Path(__file__).resolve().parents[1]
_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}

_HOLDER = textwrap.dedent("""
    import sys
    from store import Store
    st = Store.open(sys.argv[1], mode="w")
    print("ready", flush=True)
    command = sys.stdin.readline().strip()
    if command == "close":
        st.close()
        print("closed", flush=True)
        sys.stdin.readline()
    # "exit": leave without closing; the interpreter-exit hook must release the lock
""")


def _holder(path: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=_ENV, cwd=ROOT)
    assert proc.stdout.readline().strip() == "ready"
    return proc


@pytest.fixture
def store_path(tmp_path):
    path = tmp_path / "s.zarr"
    Store.open(path, mode="w", create=True).close()
    return path


def test_second_writer_in_another_process_is_refused(store_path):
    proc = _holder(store_path)
    try:
        assert (store_path / "runs" / "lock").read_text().strip() == str(proc.pid)
        with pytest.raises(StoreLocked, match=rf"store {store_path} is in use by pid {proc.pid}") as info:
            Store.open(store_path, mode="w")
        assert info.value.pid == proc.pid
        # readers are never refused
        with Store.open(store_path) as reader:
            assert reader.task_ids() == []
        proc.stdin.write("close\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "closed"
        with Store.open(store_path, mode="w") as st:
            assert st.writable
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)


def test_lock_released_at_interpreter_exit(store_path):
    proc = _holder(store_path)
    proc.stdin.write("exit\n")
    proc.stdin.close()
    assert proc.wait(timeout=10) == 0
    assert not (store_path / "runs" / "lock").exists()
    Store.open(store_path, mode="w").close()


def test_stale_lock_of_dead_pid_is_taken_over(store_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    lock = store_path / "runs" / "lock"
    lock.write_text(f"{pid}\n")
    with Store.open(store_path, mode="w") as st:
        assert st.writable
        assert lock.read_text().strip() == str(os.getpid())
    assert not lock.exists()


def test_lock_of_killed_writer_is_taken_over(store_path):
    proc = _holder(store_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    lock = store_path / "runs" / "lock"
    assert lock.read_text().strip() == str(proc.pid)  # left behind by the crash
    with Store.open(store_path, mode="w"):
        assert lock.read_text().strip() == str(os.getpid())


def test_same_process_second_writer_is_refused(store_path):
    with Store.open(store_path, mode="w"):
        with pytest.raises(StoreLocked, match=f"already open for writing in this process \\(pid {os.getpid()}\\)"):
            Store.open(store_path, mode="w")
    with Store.open(store_path, mode="w"):  # released by the first one's close
        pass


def test_read_only_takes_no_lock(store_path):
    with Store.open(store_path):
        assert not (store_path / "runs" / "lock").exists()
        with Store.open(store_path, mode="w") as st:
            assert st.writable


def test_empty_lock_file_left_by_a_crash_is_taken_over(store_path):
    lock = store_path / "runs" / "lock"
    lock.write_text("")
    with Store.open(store_path, mode="w"):
        assert lock.read_text().strip() == str(os.getpid())
