"""Fault injection for crash tests: `TANAS_FAULT=<point>[@<n>]` makes the process exit at once (`os._exit`, no clean-up,
like a kill -9) the n-th time (default: first) it reaches `fault_point("<point>")`; `<point>[@<n>]!enospc` raises the
OSError a full disk gives there instead (the write fails, the process goes on). Unset, a point costs one dict lookup.

The points sit in every write window whose interruption the store or the engine must survive; tests/test_faults.py
arms each one in a child process and checks that the store repairs itself and a re-run ends with the uninterrupted
result.
"""
from __future__ import annotations

import errno
import os
from collections import Counter

FAULT_ENV = "TANAS_FAULT"
FAULT_EXIT = 86
_hits: Counter[str] = Counter()


def fault_point(name: str) -> None:
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    spec, _, how = spec.partition("!")
    point, _, nth = spec.partition("@")
    if point != name:
        return
    _hits[name] += 1
    if _hits[name] == int(nth or 1) and how == "enospc":
        raise OSError(errno.ENOSPC, f"No space left on device (injected at {name})")
    if _hits[name] >= int(nth or 1) and how != "enospc":
        os._exit(FAULT_EXIT)
