"""Where the channel lives: the engine's files in the store's run directory, and socket addresses for long paths.

engine.pid, engine.sock, engine.log (and its rotated engine.log.1 ...), engine.seq; every one of them is private to
the user who runs the engine (mode 0600), like the socket.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

PID_FILE, SOCK_FILE, LOG_FILE, SEQ_FILE = "engine.pid", "engine.sock", "engine.log", "engine.seq"
PRIVATE = 0o600


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
