"""Process exit codes of `tanas-tui`; documented in `tanas-tui --help` and the README."""
from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    USAGE = 2            # bad command line or configuration
    DATA_UNAVAILABLE = 3 # a data source's files are missing and cannot be downloaded
    STORE = 4            # store locked by another process, missing, or written by an incompatible version
    JOB_FAILED = 5       # a job (training, distances, search) failed
    NOT_FOUND = 6        # no such task, run or source in the store / config
    NO_STRUCTURE = 7     # `distances --check`: no group structure; `premise`: the premise is not supported
    INTERRUPTED = 130    # Ctrl-C or a stop request
    TERMINATED = 143     # SIGTERM (128 + 15): the job stopped at its next safe point, as after Ctrl-C


EXIT_CODE_HELP = (
    "Exit codes: 0 ok; 2 usage or configuration error; 3 data unavailable; 4 store locked, missing or "
    "incompatible; 5 job failed; 6 not found; 7 distances --check found no group structure, or premise found "
    "the premise not supported; 130 interrupted; "
    "143 terminated (SIGTERM)."
)
