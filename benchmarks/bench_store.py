"""Appending search steps: buffered flushes vs a flush after every step.

    python benchmarks/bench_store.py [--steps 10000] [--candidates 4] [--flush-every 256]

Prints both times and their ratio. The unbuffered run can be capped (--unbuffered-steps) and is extrapolated
linearly, since one-row flushes cost the same each.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from store import Store  # noqa: E402


def append_steps(store: Store, run_id: str, steps: int, candidates: int, flush_every: int) -> float:
    writer = store.create_search(run_id, {"bench": True}, candidates=candidates, flush_every=flush_every,
                                 flush_seconds=None)
    alpha = np.linspace(0, 1, candidates, dtype=np.float32)
    start = time.perf_counter()
    for i in range(steps):
        writer.append(alpha + i, i // 100, i % 2, float(i), float(i), alpha)
    writer.flush()
    elapsed = time.perf_counter() - start
    assert store.read_search(run_id).steps == steps
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--flush-every", type=int, default=256)
    parser.add_argument("--unbuffered-steps", type=int, default=None,
                        help="steps actually run one-row-at-a-time (default: all); the rest is extrapolated")
    args = parser.parse_args()
    unbuffered_steps = min(args.steps, args.unbuffered_steps or args.steps)
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "bench.zarr", "w", create=True) as store:
        buffered = append_steps(store, "buffered", args.steps, args.candidates, args.flush_every)
        single = append_steps(store, "single", unbuffered_steps, args.candidates, 1)
    single_total = single * args.steps / unbuffered_steps
    note = "" if unbuffered_steps == args.steps else f" (extrapolated from {unbuffered_steps} steps)"
    print(f"steps={args.steps} candidates={args.candidates}")
    print(f"buffered (flush every {args.flush_every}): {buffered:8.3f} s  {1e6 * buffered / args.steps:8.1f} us/step")
    print(f"one row per flush:           {single_total:8.3f} s  {1e6 * single_total / args.steps:8.1f} us/step{note}")
    print(f"ratio one-row / buffered: {single_total / buffered:.1f}x")


if __name__ == "__main__":
    main()
