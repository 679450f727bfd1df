"""The store's exclusive writer lock: `runs/lock` holds the writer's pid.

The file is created with O_CREAT|O_EXCL and held with `fcntl.flock` on an open descriptor for as long as the writer
lives. The kernel drops the flock when the process dies, so a lock file whose flock can be taken is stale (its
writer died without cleaning up) and is taken over. Where flock is unsupported (some network file systems), the
pid in the file decides: a live pid keeps the lock. The lock is released on `release()` and at interpreter exit.
"""
from __future__ import annotations

import atexit
import errno
import fcntl
import os
import threading
import time
import weakref
from pathlib import Path

from store.errors import StoreLocked

_held: dict[str, "WriterLock"] = {}      # lock path -> lock held by this process
_held_guard = threading.Lock()
_live_locks: "weakref.WeakSet[WriterLock]" = weakref.WeakSet()

_EMPTY_FILE_WAIT_S = 0.5                  # a new writer writes its pid right after creating the file


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except (FileNotFoundError, IsADirectoryError):
        return None
    try:
        return int(text.split()[0]) if text else None
    except ValueError:
        return None


def live_writer(lock_path: Path) -> int | None:
    """The pid of another live process holding the writer lock at `lock_path` (None: no writer, or this process).

    Reads the pid only (no flock: inspecting must never make a writer's acquisition fail)."""
    pid = read_pid(Path(lock_path))
    if pid is None or pid == os.getpid() or not pid_alive(pid):
        return None
    return pid


class WriterLock:
    """One acquisition of a store's writer lock; `release()` is idempotent."""

    def __init__(self, path: Path, store_path: Path):
        self.path = path
        self.store_path = store_path
        self._fd: int | None = None
        self._owner = os.getpid()

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "WriterLock":
        key = str(self.path.resolve())
        with _held_guard:
            if key in _held:
                raise StoreLocked(
                    f"store {self.store_path} is already open for writing in this process (pid {os.getpid()}); "
                    "close the other Store first",
                    pid=os.getpid(),
                )
            deadline = time.monotonic() + _EMPTY_FILE_WAIT_S
            while True:
                fd = self._try_once()
                if fd is not None:
                    break
                if time.monotonic() > deadline:
                    # an empty file nobody flocks: its creator died before writing its pid
                    fd = self._take_over(force=True)
                    if fd is not None:
                        break
                time.sleep(0.02)
            self._fd = fd
            self._owner = os.getpid()
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            _held[key] = self
            _live_locks.add(self)
        return self

    def _try_once(self) -> int | None:
        """Returns a descriptor holding the lock, raises StoreLocked, or None to retry shortly."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return self._take_over(force=False)
        for _ in range(200):
            # someone else may briefly flock our brand-new (still empty) file to inspect it; they let go at once
            if _flock(fd) is not False:
                return fd
            time.sleep(0.001)
        os.close(fd)
        return None

    def _take_over(self, force: bool) -> int | None:
        try:
            fd = os.open(self.path, os.O_RDWR)
        except FileNotFoundError:
            return None  # released meanwhile: retry the exclusive create
        try:
            flocked = _flock(fd)
            if flocked is False:
                pid = read_pid(self.path)
                raise StoreLocked(self._in_use(pid), pid=pid)
            if not _same_file(fd, self.path):
                os.close(fd)  # the holder released (unlinked) the file after we opened it
                return None
            pid = read_pid(self.path)
            if pid is None and not force:
                os.close(fd)
                return None
            if flocked is None and pid is not None and pid != os.getpid() and pid_alive(pid):
                raise StoreLocked(self._in_use(pid), pid=pid)
            return fd  # stale: its writer is gone
        except BaseException:
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
            raise

    def _in_use(self, pid: int | None) -> str:
        who = f"pid {pid}" if pid is not None else "another process"
        return f"store {self.store_path} is in use by {who} (lock file {self.path})"

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if os.getpid() != self._owner:  # a forked child must not remove its parent's lock
            os.close(fd)
            return
        with _held_guard:
            _held.pop(str(self.path.resolve()), None)
            try:
                if _same_file(fd, self.path):
                    # unlink while still holding the flock, so nobody takes over a file that is going away
                    self.path.unlink()
            except OSError:
                pass
            finally:
                os.close(fd)


def _flock(fd: int) -> bool | None:
    """True: locked; False: held by someone else; None: flock unsupported here."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        return None


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


@atexit.register
def _release_all() -> None:
    for lock in list(_live_locks):
        lock.release()
