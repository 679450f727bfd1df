"""A client flooding the engine with garbage and never reading its replies, against a well-behaved client.

Starts an engine on a scratch store (default client queue) and measures, in this one process:
- `status` latency of a well-behaved client while idle (median of --samples requests), then while a flooder sends
  garbage lines as fast as it can without reading (targets: median ratio flood / idle <= 10);
- the engine's resident memory (VmRSS) before the flood, at its peak, and after the engine dropped the flooder
  (target: after / before <= 1.10).

    .venv/bin/python benchmarks/bench_flood.py [--samples 200] [--seconds 20]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tanas_tui.client import EngineClient, _connect_socket, start_engine, stop_engine  # noqa: E402


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def latencies(client: EngineClient, samples: int) -> list[float]:
    out = []
    for _ in range(samples):
        start = time.perf_counter()
        client.status()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0, help="longest flood before giving up")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store.zarr"
        pid = start_engine(store)
        try:
            with EngineClient(store) as client:
                latencies(client, 20)  # warm-up
                idle = latencies(client, args.samples)
                before = rss_kib(pid)
                flooder = _connect_socket(store, 5)
                state = {"sent": 0, "dropped_after": None}
                garbage = b"not json\n" * 10_000
                started = time.perf_counter()

                def flood() -> None:
                    try:
                        while time.perf_counter() - started < args.seconds:
                            flooder.sendall(garbage)
                            state["sent"] += 10_000
                    except OSError:
                        state["dropped_after"] = time.perf_counter() - started

                thread = threading.Thread(target=flood, daemon=True)
                thread.start()
                during: list[float] = []
                peak = before
                while thread.is_alive() and len(during) < args.samples:
                    during += latencies(client, 1)
                    peak = max(peak, rss_kib(pid))
                thread.join()
                flooder.close()
                time.sleep(1.0)
                after = rss_kib(pid)
                client.status()
        finally:
            stop_engine(store)
    idle_ms, flood_ms = statistics.median(idle) * 1e3, statistics.median(during) * 1e3
    print(f"status latency idle:   median {idle_ms:.3f} ms, max {max(idle) * 1e3:.3f} ms ({len(idle)} requests)")
    print(f"status latency flood:  median {flood_ms:.3f} ms, max {max(during) * 1e3:.3f} ms ({len(during)} requests)")
    dropped = state["dropped_after"]
    print(f"flooder: {state['sent']:,} lines sent, "
          + (f"dropped by the engine after {dropped:.2f} s" if dropped is not None else "NOT dropped"))
    print(f"engine RSS: before {before / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB, after {after / 1024:.1f} MiB")
    print(f"ratio flood/idle status latency (median): {flood_ms / idle_ms:.2f}  (target <= 10)")
    print(f"ratio engine RSS after/before: {after / before:.3f}  (target <= 1.10)")


if __name__ == "__main__":
    main()
