"""Training throughput of the engine with two clients attached against none (target: ratio >= 0.98).

Starts an engine on a scratch store and runs the same FUSE search (standard space, fixed seed, a fresh run id each
time) alternately with no client attached and with two subscribed clients reading every event. The time is the
search's own wall time as stored with its result, and the engine process's CPU time (user + system) over the job;
the ratios are median(none) / median(two clients), so 1.0 means attached clients cost nothing. On a shared machine
the wall time swings with other load; the CPU-time ratio is the steadier measure there.

    .venv/bin/python benchmarks/bench_clients.py [--repeats 3] [--device cpu]
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.service import protocol as P  # noqa: E402
from tanas_tui.client import EngineClient, start_engine, stop_engine  # noqa: E402

CONFIG = """
[project]
store = "store.zarr"
device = "{device}"
seed = 0
threads = 1                  # one intra-op thread: CPU time then measures work, not spinning

[space]
channels = [4]
layers = [3]
nodes = [2]

[search]
rounds = 2
candidates = 2
alternations = 3
batch_size = 64
final_epochs = 1

[sources.sketches]
per_class = 50
seed = 0

[target]
name = "moon"
source = "sketches"
positive = ["moon"]
"""


def _reader(store: Path, stop: threading.Event, counts: list[int], ready: threading.Barrier) -> None:
    with EngineClient(store) as c:
        c.subscribe()
        ready.wait()
        while not stop.is_set():
            msg = c.recv(0.2)
            if msg is not None:
                counts[0] += 1


def _run_search(store: Path, run_id: str) -> float:
    with EngineClient(store) as c:
        c.subscribe()
        job = c.submit("start_search", space="standard", run_id=run_id, seed=0)
        for ev in c.follow_job(job, reconnect=False):
            if isinstance(ev, P.JobDone):
                if ev.status != "ok":
                    raise SystemExit(f"search failed: {ev.message}")
                return float(ev.result["seconds"])
    raise SystemExit("the job did not finish")


def _run_detached(store: Path, run_id: str) -> float:
    """No client attached while the job runs: submit, disconnect, poll the status once a second."""
    with EngineClient(store) as c:
        job = c.submit("start_search", space="standard", run_id=run_id, seed=0)
    while True:
        time.sleep(1.0)
        with EngineClient(store) as c:
            st = c.status()
        if (st["job"] is None or st["job"]["id"] != job) and all(q["id"] != job for q in st["queue"]):
            break
    from store import Store

    with Store.open(store) as s:
        result = s.search(run_id).get("result") or {}
    if "seconds" not in result:
        raise SystemExit(f"search {run_id} did not finish: {s.search(run_id).get('status')}")
    return float(result["seconds"])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(pid: int, fn, *args) -> tuple[float, float]:
    c0 = _cpu_seconds(pid)
    wall = fn(*args)
    return wall, _cpu_seconds(pid) - c0


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` stops the engine
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "tanas.toml").write_text(CONFIG.format(device=args.device))
        store = root / "store.zarr"
        pid = start_engine(store, root / "tanas.toml")
        none, two = [], []
        try:
            _run_detached(store, "warmup")  # imports, data generation, allocator warm-up
            for i in range(args.repeats):
                # ABBA order, so a drift in machine load hits both conditions alike
                if i % 2 == 0:
                    none.append(_measure(pid, _run_detached, store, f"none-{i}"))
                stop, counts = threading.Event(), [0]
                ready = threading.Barrier(3)
                readers = [threading.Thread(target=_reader, args=(store, stop, counts, ready)) for _ in range(2)]
                for t in readers:
                    t.start()
                ready.wait()
                two.append(_measure(pid, _run_search, store, f"two-{i}"))
                stop.set()
                for t in readers:
                    t.join()
                if i % 2 == 1:
                    none.append(_measure(pid, _run_detached, store, f"none-{i}"))
                print(f"repeat {i}: none {none[-1][0]:.2f} s wall / {none[-1][1]:.2f} s CPU, two clients "
                      f"{two[-1][0]:.2f} s wall / {two[-1][1]:.2f} s CPU ({counts[0]} events read by the extra clients)",
                      flush=True)
        finally:
            stop_engine(store)
    for label, k in (("wall", 0), ("CPU", 1)):
        a, b = statistics.median(x[k] for x in none), statistics.median(x[k] for x in two)
        ratio = a / b
        print(f"device {args.device}, {label} time: no client {a:.2f} s, two clients {b:.2f} s; "
              f"throughput ratio {ratio:.3f} (target >= 0.98: {'PASS' if ratio >= 0.98 else 'FAIL'})")

if __name__ == "__main__":
    main()
