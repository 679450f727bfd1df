"""The engine's files in the store's run directory: their names, socket addresses for long paths, the event
sequence counter and the rotating log.

engine.pid, engine.sock, engine.log (rotated at LOG_MAX_BYTES: engine.log.1, .2), engine.seq; every one of them is
private to the user who runs the engine (mode 0600), like the socket.
"""
from __future__ import annotations

import logging.handlers
import os
from pathlib import Path
from typing import Any

PID_FILE, SOCK_FILE, LOG_FILE, SEQ_FILE = "engine.pid", "engine.sock", "engine.log", "engine.seq"
PRIVATE = 0o600
SEQ_BLOCK = 1000           # seq numbers reserved on disk at a time, so they keep increasing after a kill -9
LOG_MAX_BYTES = 10 << 20   # engine.log is rotated at this size; LOG_BACKUPS older files are kept
LOG_BACKUPS = 2


def run_paths(store_path: Path) -> dict[str, Path]:
    run_dir = Path(store_path) / "runs"
    return {"run_dir": run_dir, "pid": run_dir / PID_FILE, "sock": run_dir / SOCK_FILE,
            "log": run_dir / LOG_FILE, "seq": run_dir / SEQ_FILE}


def write_private(path: Path, text: str) -> None:
    """Writes `text` to `path`, created (or left) with mode 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE)
    try:
        os.fchmod(fd, PRIVATE)
        os.write(fd, text.encode())
    finally:
        os.close(fd)


class SocketPath:
    """A bind/connect address for a socket file: sun_path holds ~107 bytes, store paths can be longer, so long paths
    go through /proc/self/fd/<dirfd>/<name> (Linux) while the directory descriptor is open."""

    LIMIT = 100

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None

    def __enter__(self) -> str:
        text = str(self.path)
        if len(text.encode()) <= self.LIMIT or not Path("/proc/self/fd").is_dir():
            return text
        self._fd = os.open(self.path.parent, os.O_RDONLY)
        return f"/proc/self/fd/{self._fd}/{self.path.name}"

    def __exit__(self, *exc: Any) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class SeqCounter:
    """Event sequence numbers that increase over the life of the store, across engine restarts and crashes."""

    def __init__(self, path: Path):
        self.path = path
        self.value = self._read()
        self._ceiling = self.value
        self._reserve()

    def _read(self) -> int:
        try:
            return max(0, int(self.path.read_text().strip() or 0))
        except (FileNotFoundError, ValueError):
            return 0

    def _write(self, value: int) -> None:
        tmp = self.path.with_suffix(".tmp")
        write_private(tmp, f"{value}\n")
        os.replace(tmp, self.path)

    def _reserve(self) -> None:
        self._ceiling = self.value + SEQ_BLOCK
        self._write(self._ceiling)

    def next(self) -> int:
        self.value += 1
        if self.value >= self._ceiling:
            self._reserve()
        return self.value

    def close(self) -> None:
        self._write(self.value)


class PrivateRotatingLog(logging.handlers.RotatingFileHandler):
    """engine.log, mode 0600, rotated at LOG_MAX_BYTES. The engine's stdout and stderr are the log file when a
    client started it (tanas_tui.client.start_engine): after a rotation they follow to the new file, so a stray
    traceback cannot grow the old one without bound."""

    def __init__(self, path: Path, max_bytes: int = LOG_MAX_BYTES):
        super().__init__(path, maxBytes=max_bytes, backupCount=LOG_BACKUPS, encoding="utf-8")
        self._private()
        self._std = [fd for fd in (1, 2) if _same_file(fd, path)]

    def _private(self) -> None:
        if self.stream is not None:
            os.fchmod(self.stream.fileno(), PRIVATE)

    def doRollover(self) -> None:
        super().doRollover()
        self._private()
        for fd in self._std:
            os.dup2(self.stream.fileno(), fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except OSError:
        return False


