"""The default dictionary's build (tanas.toml's base tasks: probes, own Fishers, all distances) on the `local`
executor vs `ray` with 1 and with 2 workers (a fresh local Ray per mode, `num_cpus` = workers), the ratios to local
measured in the same run, and Ray's per-unit overhead: milliseconds to submit and collect a no-op unit.

    .venv/bin/python benchmarks/bench_executor.py [--config tanas.toml] [--tasks N] [--units 200] [--rounds 3]

Each mode runs in its own child process (a process joins one Ray cluster); the cluster's start is reported
separately; the build time includes the executor's start and its workers' start (what a first job on a fresh cluster
pays).
Target: ray at 1 worker within 10 % of local. The three modes run in turn, `--rounds` times: on a shared machine one
build varies by ±10 % from run to run, so each round's ratio is printed and the median is the result.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _noop(x: int) -> int:
    return x


def child(args) -> dict:
    import torch

    from engine.config import ExecutorSection, load_config
    from engine.service.executor import make_executor
    from engine.similarity.dictionary import Dictionary
    from store import Store

    torch.set_num_threads(1)
    cfg = load_config(args.config, {})
    tasks = list(cfg.tasks)[: args.tasks] if args.tasks else list(cfg.tasks)
    out: dict = {"mode": args.mode, "workers": args.workers, "tasks": len(tasks)}
    executor = None
    if args.mode == "ray":
        import ray

        t0 = time.perf_counter()
        ray.init(address="local", num_cpus=args.workers, include_dashboard=False, logging_level="ERROR",
                 log_to_driver=False)
        out["cluster_start_s"] = time.perf_counter() - t0
        section = ExecutorSection(kind="ray", cpus_per_job=1)
        cfg = dataclasses.replace(cfg, executor=section)
        executor = make_executor(section, None, threads=1)   # started inside the timed build, as a job starts it
    with tempfile.TemporaryDirectory() as tmp:
        with Store.open(Path(tmp) / "s.zarr", "w", create=True) as st:
            from engine.runtime.reporting import RecordingReporter

            rep = RecordingReporter()
            dic = Dictionary(st, cfg, "cpu", rep, executor=executor)
            for t in tasks:  # data built before timing: both modes build it in the engine the same way
                dic.task_for(t)
            t0 = time.perf_counter()
            if executor is not None:
                executor.start()   # connects and warms the workers up while the engine trains the shared body
            dic.ensure(tasks)
            out["build_s"] = time.perf_counter() - t0
            m = st.distances(cfg.dictionary.method)
            out["entries"] = int((m.value == m.value).sum())
            out["units"] = len(tasks) * cfg.dictionary.seeds * 2
            out["probe_s"] = sum(d["seconds"] for e, d in rep.events if e == "probe_done")
            d = cfg.dictionary
            out["own_only"] = dic.measure(d.method).own_only   # no pass on another's data
            out["fisher_passes"] = (len(tasks) if out["own_only"] else out["entries"]) * d.seeds
    if executor is not None and args.units:
        from engine.runtime.reporting import SILENT

        for _ in executor.completed([executor.submit(_noop, 0)], SILENT):  # a warm worker
            pass
        t0 = time.perf_counter()
        refs = [executor.submit(_noop, i) for i in range(args.units)]
        out["submit_ms"] = (time.perf_counter() - t0) * 1000 / args.units
        for _ in executor.completed(refs, SILENT):
            pass
        out["unit_roundtrip_ms"] = (time.perf_counter() - t0) * 1000 / args.units
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(ROOT / "tanas.toml"))
    ap.add_argument("--tasks", type=int, default=0, help="only the first N base tasks (0: all)")
    ap.add_argument("--units", type=int, default=200, help="no-op units for the per-unit overhead")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of local, ray x1, ray x2 (ratios per round)")
    ap.add_argument("--mode", choices=("local", "ray"), help=argparse.SUPPRESS)
    ap.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.mode:
        print(json.dumps(child(args)))
        return
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    modes = (("local", 1), ("ray", 1), ("ray", 2))
    rounds: list[dict[tuple[str, int], dict]] = []
    for k in range(args.rounds):   # the modes alternate, so a slow spell of the machine hits one round, not one mode
        rounds.append({})
        for mode, workers in modes:
            cmd = [sys.executable, __file__, "--mode", mode, "--workers", str(workers), "--config", args.config,
                   "--tasks", str(args.tasks), "--units", str(args.units)]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                sys.exit(f"{mode} x{workers} failed:\n{proc.stderr[-3000:]}")
            r = rounds[-1][(mode, workers)] = json.loads(proc.stdout.strip().splitlines()[-1])
            extra = f", cluster start {r['cluster_start_s']:.1f} s" if "cluster_start_s" in r else ""
            print(f"round {k + 1}: {mode:5s} {workers} worker(s): build {r['build_s']:.1f} s ({r['tasks']} tasks, "
                  f"{r['entries']} entries){extra}", flush=True)

    def ratios(mode: tuple[str, int]) -> str:
        rs = sorted(rd[mode]["build_s"] / rd[("local", 1)]["build_s"] for rd in rounds)
        return f"{statistics.median(rs):.2f} (rounds: {' '.join(f'{x:.2f}' for x in rs)})"

    print(f"ray 1 worker / local, median over {len(rounds)} round(s): {ratios(('ray', 1))}; target <= 1.10")
    print(f"ray 2 workers / local: {ratios(('ray', 2))} on {os.cpu_count()} cores")
    two = [rd[("ray", 2)] for rd in rounds]
    print(f"per-unit overhead (2 workers, median): submit {statistics.median(r['submit_ms'] for r in two):.2f} ms, "
          f"submit + collect a no-op {statistics.median(r['unit_roundtrip_ms'] for r in two):.2f} ms")
    r = rounds[0][("local", 1)]
    rest = r["build_s"] - r["probe_s"]
    if r["own_only"]:   # the shared body's forms: one own Fisher per (task, seed), distances between them
        print(f"measured costs (local, 1 thread): shared body + heads {r['probe_s']:.1f} s; own Fishers, distances and "
              f"writes {rest:.1f} s = {rest / r['fisher_passes'] * 1000:.0f} ms per own Fisher "
              f"({r['fisher_passes']} own Fishers, {r['entries']} entries)")
    else:
        print(f"measured costs (local, 1 thread): probe training {r['probe_s'] / r['tasks']:.2f} s per task; Fisher "
              f"pass {rest / r['fisher_passes'] * 1000:.0f} ms per (probe, target) incl. the write "
              f"({r['fisher_passes']} passes)")


if __name__ == "__main__":
    main()
