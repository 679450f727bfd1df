"""The on-disk layout of a tanas store: every path, array name and reserved attribute lives here.

    /                           attrs: format, created, config
    /tasks/                     attrs: order (task ids in insertion order), removing (ids whose removal is under way),
                                names (name -> id)
    /tasks/<id>/                attrs: the task's attrs (name, source, rule, ...)
    /tasks/<id>/probe/<seed>/   attrs: params (original parameter names, in order); one array per parameter
    /tasks/<id>/fisher/<seed>   float32 [P]; attrs: writing (until its data is in), then sum (float64, the mark)
    /distances/<method>/        attrs: ids, params, generation; arrays value, std float32 [N, N] (NaN = not computed)
    /distances/<method>/vectors/<seed>/   the vector forms' per-task vectors (raw float32 rows, store/vectors.py)
    /searches/<run_id>/         attrs: the run's attrs + committed_steps, num_candidates, candidates;
                                arrays alpha [s, C], round [s], step_kind [s], loss_train [s], loss_val [s], val_acc [s, C]
    /searches/<run_id>/test_correct   bool [n_test]: per test sample, right or wrong (attrs: test_outcome)
    /searches/<run_id>/checkpoint/checkpoint.pt   opaque bytes, replaced atomically
    /runs/lock, /runs/engine.pid, /runs/engine.sock   plain files, not Zarr nodes
"""
from __future__ import annotations

import re
from urllib.parse import quote, unquote

from store.errors import StoreError

FORMAT_NAME = "tanas-store"
FORMAT_MAJOR = 1
FORMAT_MINOR = 0
FORMAT = f"{FORMAT_NAME}/{FORMAT_MAJOR}.{FORMAT_MINOR}"

# root attributes
ATTR_FORMAT = "format"
ATTR_CREATED = "created"
ATTR_CONFIG = "config"

TASKS = "tasks"
DISTANCES = "distances"
SEARCHES = "searches"
RUNS = "runs"

ATTR_ORDER = "order"                  # /tasks attrs
ATTR_REMOVING = "removing"            # /tasks attrs: a removal journal, finished by the next writer to open the store
ATTR_REMOVING_NAMES = "removing_names"  # /tasks attrs: {id: name} of the journal's tasks (a re-run names them)
ATTR_RECOVERIES = "recoveries"        # root attrs: interrupted operations the writers' opens finished or undid
ATTR_RECOVERY_LOG = "recovery_log"    # root attrs: the latest of them, "time: what"
ATTR_NAMES = "names"                  # /tasks attrs: task name -> id (ids no longer in the order are stale entries)
PROBE = "probe"
FISHER = "fisher"
ATTR_PARAMS = "params"                # probe/<seed> attrs: original parameter names, in state-dict order
ATTR_WRITING = "writing"              # fisher/<seed> attrs while its data is written: the vector is not there yet
ATTR_SUM = "sum"                      # fisher/<seed> attrs once written: its sum (a store check compares the data)

DIST_VALUE = "value"
DIST_STD = "std"
ATTR_IDS = "ids"
ATTR_GENERATION = "generation"        # odd while the matrix is being rewritten (see Store._rewrite_matrix)
DIST_CHUNK = 64
ATTR_EXTENT = "extent"                # the largest size the matrix's arrays ever had (cells beyond it never written)

# search arrays: name -> (dtype, per-step width: None for [steps], "C" for [steps, candidates])
SEARCH_ARRAYS: dict[str, tuple[str, str | None]] = {
    "alpha": ("float32", "C"),
    "round": ("int32", None),
    "step_kind": ("int32", None),
    "loss_train": ("float32", None),
    "loss_val": ("float32", None),
    "val_acc": ("float32", "C"),
}
SEARCH_CHUNK_STEPS = 256
ATTR_COMMITTED = "committed_steps"
ATTR_NUM_CANDIDATES = "num_candidates"
ATTR_CANDIDATES = "candidates"
SEARCH_RESERVED = frozenset({ATTR_COMMITTED, ATTR_NUM_CANDIDATES, ATTR_CANDIDATES, "test_outcome"})
TEST_CORRECT = "test_correct"
ATTR_TEST_OUTCOME = "test_outcome"
CHECKPOINT = "checkpoint"
CHECKPOINT_FILE = "checkpoint.pt"
CHECKPOINT_TMP_GLOB = f".{CHECKPOINT_FILE}.*.tmp"
NEW_SEARCH_PREFIX = "new-search-"     # runs/new-search-<run_id>.<pid>/: a search group built before it is moved in

LOCK_FILE = "lock"
ENGINE_PID_FILE = "engine.pid"
ENGINE_SOCKET_FILE = "engine.sock"

_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+=-]{0,199}")
_KEY_SAFE = "._-"


def parse_format(value: object) -> tuple[int, int] | None:
    """("tanas-store/1.0") -> (1, 0); None when the value is not a tanas format string."""
    if not isinstance(value, str) or not value.startswith(FORMAT_NAME + "/"):
        return None
    version = value[len(FORMAT_NAME) + 1:]
    major, _, minor = version.partition(".")
    try:
        return int(major), int(minor or 0)
    except ValueError:
        return None


def check_id(kind: str, value: object) -> str:
    """Task ids, run ids and method names become node names: keep them to a safe, portable alphabet."""
    if not isinstance(value, str) or not _ID_RE.fullmatch(value) or value.endswith("."):
        raise StoreError(
            f"invalid {kind} {value!r}: use 1-200 letters, digits and . _ - + =, starting with a letter or digit"
        )
    return value


def param_key(name: str) -> str:
    """A parameter name ("features.0.weight") as a Zarr node name; `param_name` reverses it exactly."""
    if not isinstance(name, str) or not name:
        raise StoreError(f"invalid probe parameter name {name!r}")
    key = quote(name, safe=_KEY_SAFE)
    # Zarr reserves names starting with "__" and the names "." and ".."
    if key.startswith("_"):
        key = "%5F" + key[1:]
    if key.strip(".") == "":
        key = key.replace(".", "%2E")
    return key


def param_name(key: str) -> str:
    return unquote(key)


def task_path(task_id: str) -> str:
    return f"{TASKS}/{task_id}"


def probe_path(task_id: str, seed_index: int) -> str:
    return f"{TASKS}/{task_id}/{PROBE}/{_seed(seed_index)}"


def fisher_group_path(task_id: str) -> str:
    return f"{TASKS}/{task_id}/{FISHER}"


def fisher_path(task_id: str, seed_index: int) -> str:
    return f"{fisher_group_path(task_id)}/{_seed(seed_index)}"


def distance_path(method: str) -> str:
    return f"{DISTANCES}/{method}"


def search_path(run_id: str) -> str:
    return f"{SEARCHES}/{run_id}"


def checkpoint_group_path(run_id: str) -> str:
    return f"{SEARCHES}/{run_id}/{CHECKPOINT}"


def _seed(seed_index: int) -> str:
    if not isinstance(seed_index, int) or isinstance(seed_index, bool) or seed_index < 0:
        raise StoreError(f"invalid seed_index {seed_index!r}: expected an integer >= 0")
    return str(seed_index)

# per-task vectors of the vector distance forms (store/vectors.py): /distances/<method>/vectors/<seed>/
VECTORS = "vectors"
VECTORS_FILE = "vectors.f32"
VECTOR_NORMS_FILE = "vectors.norm.f64"
VECTOR_REDUCED_FILE = "vectors.reduced.f32"
NEW_MATRIX_PREFIX = "new-matrix-"    # runs/new-matrix-<method>.<pid>/: a matrix group built before it is moved in
