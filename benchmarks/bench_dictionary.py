"""Distance build for the default tanas.toml dictionary: wall time split into probe training and distances, and
the incremental add's distance time at N = 10 vs N = 20 (linear growth gives a ratio near 2, quadratic near 4).

    .venv/bin/python benchmarks/bench_dictionary.py [--config tanas.toml] [--device cpu] [--skip-incremental]
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from engine.config import load_config  # noqa: E402
from engine.similarity.dictionary import Dictionary  # noqa: E402
from engine.runtime.reporting import Reporter  # noqa: E402
from store import Store  # noqa: E402


class Timer(Reporter):
    """Attributes wall time to the probe stage or the distance stage from the job_progress events."""

    def __init__(self):
        super().__init__()
        self.stage, self.since = "other", time.perf_counter()
        self.seconds = {"probe": 0.0, "distances": 0.0, "other": 0.0}
        self.distances = 0

    def _switch(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[self.stage] += now - self.since
        self.stage, self.since = stage, now

    def emit(self, event: str, **data) -> None:
        if event == "job_progress":
            self._switch("probe" if data["stage"].startswith("probe") else "distances")
        elif event == "distance":
            self.distances += 1

    def done(self) -> None:
        self._switch("other")


def print_matrix(st: Store, method: str) -> None:
    m = st.distances(method)
    names = {t["id"]: t["name"] for t in st.list_tasks()}
    short = [names[i][:10] for i in m.ids]
    print(f"{method} distances (rows = source b, columns = target t, d(b, t)):")
    print(" " * 16 + " ".join(f"{s:>10}" for s in short))
    for i, row in enumerate(m.value):
        print(f"{names[m.ids[i]][:15]:<16}" + " ".join(f"{v:10.3f}" for v in row))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(Path(__file__).resolve().parents[1] / "tanas.toml"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--skip-incremental", action="store_true")
    ap.add_argument("--skip-full", action="store_true")
    ap.add_argument("--inc-fisher-samples", type=int, default=100,
                    help="fisher_samples for the N = 10 / N = 20 comparison (it builds 20 tasks; only the ratio counts)")
    ap.add_argument("--inc-max-epochs", type=int, default=2)
    args = ap.parse_args()
    cfg = load_config(args.config)
    tasks, target = list(cfg.tasks), cfg.target
    print(f"config {args.config}: {len(tasks)} base tasks + target {target.name if target else '-'}, probe "
          f"{cfg.dictionary.probe}, fisher {cfg.dictionary.fisher} on {cfg.dictionary.fisher_samples} samples, "
          f"max_epochs {cfg.dictionary.max_epochs}, seeds {cfg.dictionary.seeds}, device {args.device}")

    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_full:
            full_build(cfg, tasks, target, args.device, Path(tmp))
        if not args.skip_incremental:
            incremental(cfg, tasks, args, Path(tmp))


def full_build(cfg, tasks, target, device, tmp: Path) -> None:
    with Store.open(tmp / "bench.zarr", "w", create=True) as st:
        timer = Timer()
        dic = Dictionary(st, cfg, device, timer)
        start = time.perf_counter()
        dic.ensure(tasks)
        if target is not None:
            dic.ensure([target], role="target")
        timer.done()
        total = time.perf_counter() - start
        print(f"full build: {total:.1f} s wall = probes (incl. own Fishers) {timer.seconds['probe']:.1f} s + distances "
              f"{timer.seconds['distances']:.1f} s ({timer.distances} entries) + data/other "
              f"{timer.seconds['other']:.1f} s   [target < 60 s]")
        print_matrix(st, "fisher")
        if target is not None:
            near = dic.nearest(target.name, k=cfg.dictionary.k)
            print("nearest to " + target.name + ": " + ", ".join(f"{n.name} ({n.distance:.3f})" for n in near))


def incremental(cfg, tasks, args, tmp: Path) -> None:
    cfg = dataclasses.replace(cfg, dictionary=dataclasses.replace(
        cfg.dictionary, fisher_samples=args.inc_fisher_samples, max_epochs=args.inc_max_epochs))
    print(f"incremental add: fisher_samples {args.inc_fisher_samples}, max_epochs {args.inc_max_epochs}")
    # Incremental add at N = 10 and N = 20: the same new task added to dictionaries of 10 and of 20 tasks.
    extra = [dataclasses.replace(t, name=f"{t.name}-s{k}", seed=t.seed + k) for k in (1, 2) for t in tasks]
    new = dataclasses.replace(tasks[0], name="incremental-new", seed=tasks[0].seed + 99)
    times = {}
    with Store.open(tmp / "inc.zarr", "w", create=True) as st:
        dic = Dictionary(st, cfg, args.device, Reporter())
        pool = tasks + extra
        for n in (10, 20):
            dic.ensure(pool[:n])
            timer = Timer()
            dic.reporter = timer
            dic.add_task(new)
            timer.done()
            times[n] = (timer.seconds["distances"], timer.distances)
            dic.reporter = Reporter()
            dic.remove_task("incremental-new")
    for n, (sec, count) in times.items():
        print(f"incremental add at N = {n}: distances {sec:.2f} s for {count} entries")
    print(f"ratio N=20 / N=10: {times[20][0] / times[10][0]:.2f}   [linear ≈ 2, quadratic ≈ 4]")
    assert times[10][1] == 21 and times[20][1] == 41


if __name__ == "__main__":
    main()
