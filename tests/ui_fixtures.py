"""A deterministic fixture store for the UI tests and benchmarks, built through the public Store API only.

Six tasks (five base, one target) with probe results and best genotypes, a full Fisher matrix and a partial
transfer one, a finished search (two rounds, α trajectory, result) and a running one (mid-round). Every value is
a fixed function of indices: no clocks, no randomness.
"""
from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import pytest

from store import Store

OPS = ("skip_connect", "avg_pool_3x3", "max_pool_3x3", "sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7",
       "dil_conv_3x3", "dil_conv_5x5", "conv_7x1_1x7")
CREATED = "2024-01-02T03:04:05+00:00"

TASKS = [
    # id, name, source, positive, role
    ("t-mnist0", "mnist-0", "mnist-5k", ["0"], "base"),
    ("t-mnist1", "mnist-1", "mnist-5k", ["1"], "base"),
    ("t-mnist3", "mnist-3", "mnist-5k", ["3"], "base"),
    ("t-circle", "circle", "sketches", ["circle"], "base"),
    ("t-square", "square", "sketches", ["square"], "base"),
    ("t-moon", "moon", "sketches", ["moon"], "target"),
]


def genotype(seed: int, channels: int = 16, layers: int = 5) -> dict[str, Any]:
    """A valid DARTS genotype whose operations are a fixed function of `seed`."""
    def cell(offset: int) -> dict[str, Any]:
        edges = []
        for node in range(4):
            idx = node + 2
            a = OPS[(seed * 3 + node * 2 + offset) % len(OPS)]
            b = OPS[(seed * 5 + node + offset * 2 + 1) % len(OPS)]
            edges.append([[a, (seed + node) % idx], [b, (seed + node + 1) % idx]])
        return {"edges": edges, "concat": [2, 3, 4, 5]}

    return {"normal": cell(0), "reduce": cell(1), "channels": channels, "layers": layers}


def task_attrs(i: int, name: str, source: str, positive: list[str], role: str) -> dict[str, Any]:
    val_acc = round(0.99 - 0.012 * i, 4)
    g = genotype(i, channels=(8, 16, 32)[i % 3], layers=(3, 5)[i % 2])
    return {
        "name": name, "source": source, "rule": "is " + "|".join(positive),
        "definition": {"name": name, "source": source, "positive": positive, "classes": None, "other": False,
                       "balance": True, "limit": None, "val_fraction": 0.1, "test_fraction": 0.2, "seed": 0},
        "role": role, "seed": 0, "n_train": 720 - 10 * i, "n_val": 80, "n_test": 200,
        "num_classes": 2, "class_names": ["rest", positive[0]], "probe_arch": "cnn",
        "val_acc": val_acc, "representative": val_acc >= 0.95, "epochs": 3 + i,
        "best_genotype": g if role == "base" else None, "status": "ready",
    }


def fisher_value(i: int, j: int) -> float:
    if i == j:
        return 0.0
    same = (i < 3) == (j < 3)
    return round((0.08 if same else 0.31) + 0.013 * ((i * 7 + j * 3) % 5), 4)


def build_fixture_store(path: Path, *, tasks: int | None = None, searches: int = 2, steps_per_round: int = 3,
                        running: bool = True, transfer: bool = True) -> Path:
    """Creates the store at `path` and returns it. `tasks` > 6 adds generated base tasks (for benchmarks);
    `searches` > 2 adds more finished runs; `transfer=False` leaves the transfer matrix out."""
    specs = list(TASKS)
    for n in range(len(specs), tasks or len(specs)):
        specs.append((f"t-gen{n:03d}", f"gen-{n:03d}", "mnist-5k", [str(n % 10)], "base"))
    with Store.open(path, mode="w", create=True) as st:
        ids = []
        for i, (tid, name, source, positive, role) in enumerate(specs):
            st.add_task(tid, task_attrs(i, name, source, positive, role))
            ids.append(tid)
        for tid in ids:
            st.add_distance_task("fisher", tid)
        for i, s in enumerate(ids):
            for j, t in enumerate(ids):
                st.set_distance("fisher", s, t, fisher_value(i, j), std=0.0 if i == j else 0.004)
        for tid in ids[:3] if transfer else ():
            st.add_distance_task("transfer", tid)
        for i, s in enumerate(ids[:3] if transfer else ()):
            for j, t in enumerate(ids[:3]):
                if (i, j) != (2, 0):   # one entry left NaN: "not computed yet"
                    st.set_distance("transfer", s, t, 0.0 if i == j else 10.0 + 7 * i + 3 * j)
        target = "t-moon"
        for r in range(searches):
            finished = not (running and r == searches - 1)
            _search(st, f"run-{r:02d}", target, ids, finished, steps_per_round)
    return path


def _space(ids: list[str]) -> dict[str, Any]:
    provenance = []
    for k, (tid, d) in enumerate([(ids[3], 0.0941), (ids[0], 0.1203), (ids[2], 0.1350)]):
        provenance.append({"task_id": tid, "name": dict((t[0], t[1]) for t in TASKS).get(tid, tid), "distance": d,
                           "weight": round(1 - d, 4), "genotype": genotype(3 if k == 0 else 2 * k - 2)})
    weights = {"none": 0.005, "skip_connect": 0.12, "avg_pool_3x3": 0.05, "max_pool_3x3": 0.09,
               "sep_conv_3x3": 0.24, "sep_conv_5x5": 0.14, "sep_conv_7x7": 0.06, "dil_conv_3x3": 0.16,
               "dil_conv_5x5": 0.085, "conv_7x1_1x7": 0.05}
    return {"kind": "task-aware", "op_weights": weights, "nodes": [4], "channels": [8, 16], "layers": [3, 5],
            "provenance": provenance, "notes": []}


def _search(st: Store, run_id: str, target: str, ids: list[str], finished: bool, steps_per_round: int) -> None:
    candidates, rounds, alternations = 3, 2, steps_per_round
    attrs = {"kind": "fuse", "target": target, "target_name": "moon", "space_kind": "task-aware",
             "space": _space(ids), "config": {"rounds": rounds, "candidates": candidates,
                                              "alternations": alternations, "w_epochs": 1, "alpha_epochs": 1},
             "seed": 0, "status": "running", "device": "cpu", "created": CREATED}
    writer = st.create_search(run_id, attrs, candidates)
    total_rounds = rounds if finished else 1
    step = 0
    for rnd in range(total_rounds):
        genos = [genotype(10 * rnd + c + 1) for c in range(candidates)]
        writer.set_candidates(rnd, genos, [f"r{rnd}c{c}{run_id[-2:]}hash"[:10] for c in range(candidates)])
        n_steps = alternations if finished else max(1, alternations - 1)
        for a in range(n_steps):
            alpha = [0.1 * (a + 1) * (c - 1) + 0.01 * rnd for c in range(candidates)]
            acc = [round(0.80 + 0.03 * c + 0.01 * a, 4) for c in range(candidates)]
            loss_t = 0.9 * math.exp(-0.3 * step)
            writer.append(alpha, rnd, a, loss_t, loss_t + 0.05, acc)
            step += 1
    writer.flush()
    if finished:
        best = genotype(10 * (rounds - 1) + candidates)
        st.update_search(run_id, status="done", finished=CREATED,
                         result={"run_id": run_id, "genotype": best, "hash": "beefcafe01", "test_error": 1.25,
                                 "test_acc": 0.9875, "params": 123456, "params_m": 0.123, "cost_device_hours": 0.0042,
                                 "seconds": 15.1, "device": "cpu", "kind": "fuse"})


def async_test(fn):
    """Runs an async test function in a fresh event loop (the project has no pytest asyncio plugin)."""
    import asyncio
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))

    return wrapper


# -- helpers for the app's pilot tests ----------------------------------------------------------------------------

FROZEN = 1704164645.0 + 3600   # CREATED + 1 h: the runs' "updated" column reads "1h ago"


@pytest.fixture(scope="module")
def fixture_store(tmp_path_factory) -> Path:
    return build_fixture_store(tmp_path_factory.mktemp("ui") / "store.zarr")


class FakeClient:
    """Stands in for AsyncEngineClient when sending commands: records each command as (type, the fields it was
    given), answers with a typed reply, or fails like a refused request."""

    def __init__(self, log: list[tuple[str, dict[str, Any]]], fail: str | None = None):
        self.log, self.fail = log, fail

    async def connect(self) -> "FakeClient":
        return self

    async def close(self) -> None:
        pass

    async def request(self, command):
        from engine.service import protocol as P

        if self.fail:
            raise RuntimeError(self.fail)
        self.log.append((command.TYPE, {k: v for k, v in command.payload().items() if v is not None and k != "id"}))
        return P.Reply(command=command.TYPE, id=command.id, data={"job": f"job-{len(self.log)}"})


def make_app(store: Path, log: list | None = None, fail: str | None = None):
    """The app on `store` with a frozen clock, no engine connection, and commands going to a FakeClient."""
    from tanas_tui.app import TanasApp

    log = [] if log is None else log
    return TanasApp(store, connect=False, clock=lambda: FROZEN, client_factory=lambda path: FakeClient(log, fail))


async def pretend_engine(app, pilot, state: str = "connected") -> None:
    """The link reports an engine (a FakeClient answers the commands), as the follow worker would."""
    from tanas_tui.link import LinkChanged

    app.link.state = state
    app.post_message(LinkChanged(state))
    await pilot.pause()


async def settle(app, pilot, seconds: float = 0.15) -> None:
    """Waits until the app is quiet: no store/preview worker running or pending (workers start further workers, e.g.
    store -> selected task -> sample preview), no queued events, and every DataTable has sized its columns (it does
    that when idle). Quiet must hold for a few consecutive checks, so a slow machine cannot snapshot a half-built view."""
    from textual.widgets import DataTable
    from textual.worker import WorkerState

    def busy() -> bool:
        working = any(w.state in (WorkerState.PENDING, WorkerState.RUNNING) and w.group != "follow"
                      for w in app.workers)
        sizing = any(t._require_update_dimensions for t in app.screen.query(DataTable))
        return working or sizing or bool(getattr(app, "_inbox", None))

    await pilot.pause(seconds)
    quiet = 0
    for _ in range(400):
        await pilot.pause(0.03)
        quiet = 0 if busy() else quiet + 1
        if quiet >= 4:
            break


def cell_text(table, row: str, col: str) -> str:
    value = table.get_cell(row, col)
    return getattr(value, "plain", str(value))


# -- engine events, built through the protocol's own classes (a renamed field fails the test that uses it) ---------

_SEQ = itertools.count(1)


def event(cls, **fields):
    """A broadcast event of protocol class `cls` with the next sequence number."""
    return cls(seq=next(_SEQ), **fields)


def add_random_run(path: Path, run_id: str = "moon-random-0", candidates: int = 3) -> list[str]:
    """A finished random-search run as the comparison records it (no α steps; each candidate trained alone and
    judged by its val accuracy). Returns the candidates' hashes."""
    from store.records import BudgetRecord, SearchRunRecord

    evaluated = [{"hash": f"rnd{c}hash", "genotype": genotype(60 + c), "val_acc": 0.90 + 0.02 * c,
                  "val_loss": 0.4 - 0.05 * c} for c in range(candidates)]
    record = SearchRunRecord(kind="random", target="t-moon", target_name="moon", space_kind="standard", seed=0,
                             status="running", device="cpu", arm="random", created=CREATED,
                             config={"rounds": 2, "candidates": 3, "alternations": 3, "w_epochs": 1},
                             budget=BudgetRecord(epochs=15, unit="candidate-epochs", final_epochs=5,
                                                 candidates=candidates).to_attrs(),
                             extra={"candidates_evaluated": evaluated, "budget_candidates": candidates})
    with Store.open(path, mode="w") as st:
        st.create_search(run_id, record.to_attrs(), 1).flush()
        st.update_search(run_id, status="done", finished=CREATED,
                         result={"run_id": run_id, "genotype": genotype(60 + candidates - 1),
                                 "hash": evaluated[-1]["hash"], "test_error": 3.5, "test_acc": 0.965, "params": 54321,
                                 "params_m": 0.054, "cost_device_hours": 0.002, "seconds": 7.2, "device": "cpu",
                                 "kind": "random"})
    return [e["hash"] for e in evaluated]


# A stand-in for a headless `tanas-tui run`: holds the writer lock and appends α steps to the running search, then
# records the search done; with a 4th argument it goes on (up to `steps`) until that file exists
WRITER = """
import os, sys, time
from store import Store
path, steps, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
until = sys.argv[4] if len(sys.argv) > 4 else None
with Store.open(path, mode="w") as st:
    print("locked", flush=True)
    w = st.open_search_writer("run-01")
    for i in range(steps):
        if until and os.path.exists(until):
            break
        time.sleep(pause)
        w.append([0.1 * i, 0.0, -0.1 * i], 0, 2, 0.5, 0.6, [0.8, 0.8, 0.8])
        w.flush()
    st.update_search("run-01", status="done", result={"test_error": 2.5, "hash": "abc"})
"""


def headless_writer(store: Path, steps: int, pause: float, until: Path | None = None):
    """Starts WRITER on `store` and returns its Popen once it holds the lock; `until`: it finishes once that file
    exists."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    args = [sys.executable, "-c", WRITER, str(store), str(steps), str(pause)] + ([str(until)] if until else [])
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc
