"""The kill matrix: SIGKILL at random points of a headless `run`, a `tasks add`, a `tasks remove` and the engine
(running a detached `run`), then the same command again, on a CI-sized project (embedded sketches, 1-epoch probes,
one FUSE round).

Each kill is classified by what the re-run gives, against the same command run once without interruption in this
process's session (same seed, same store start):
- resumed exactly: the re-run succeeds with the same tasks, distances and search results, and no writer's open had
  to recover anything;
- recovered automatically: the same, after a writer's open finished or undid an interrupted operation (the store's
  `recoveries` count grew);
- needed --repair: the re-run failed, and succeeded with the same results after `tanas-tui store check --repair`;
- lost: anything else (a different result, or no success even after the repair);
- finished: the command was already done when the kill came (not a kill in a write window).

    PYTHONPATH=. python benchmarks/bench_kills.py --kills 40 [--seed 0] [--only run,tasks-add,...]

Prints one line per kill and the counts; exit 1 when any kill needed --repair or lost data.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CLI = "import sys; from tanas_tui.cli import main; sys.argv[0] = 'tanas-tui'; main()"
TASKS = ("circle", "square")
TARGET = "moon"
SCENARIOS = ("run", "tasks-add", "tasks-remove", "engine")


def project_text() -> str:
    """The tests' CI-sized project (tests/synthetic.py), without the comparison."""
    sys.path.insert(0, str(ROOT))
    from tests.synthetic import tiny_project

    return tiny_project(store="store.zarr", tasks=TASKS, target=TARGET, search="compare = false")


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("TANAS_")}
    out.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return out


def cli(folder: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CLI, *args], cwd=folder, env=env(), capture_output=True, text=True,
                          timeout=timeout)


def command(scenario: str) -> list[str]:
    return {"run": ["run", "tanas.toml"], "engine": ["run", "tanas.toml"],
            "tasks-add": ["tasks", "add", TASKS[0], "--config", "tanas.toml"],
            "tasks-remove": ["tasks", "remove", TASKS[0], "--yes", "--config", "tanas.toml"]}[scenario]


def snapshot(folder: Path) -> tuple:
    """What a kill must not change: tasks (name, status), every distance matrix by names, each search's result."""
    from store import Store

    with Store.open(folder / "store.zarr") as st:
        tasks = tuple((t["name"], t.get("status")) for t in st.list_tasks())
        names = {t["id"]: t["name"] for t in st.list_tasks()}
        matrices = []
        for method in st.distance_methods():
            m = st.distances(method)
            matrices.append((method, tuple(names.get(i, i) for i in m.ids), np.nan_to_num(m.value, nan=-1.0).tobytes()))
        searches = tuple(sorted((s["id"], s.get("status"), (s.get("result") or {}).get("hash"),
                                 (s.get("result") or {}).get("test_error")) for s in st.list_searches()))
        return tasks, tuple(matrices), searches


def recoveries(folder: Path) -> int:
    from store import Store

    with Store.open(folder / "store.zarr") as st:
        return int(st.attrs.get("recoveries", 0))


class Bench:
    def __init__(self, work: Path):
        self.work = work
        self.starts: dict[str, Path] = {}
        self.references: dict[str, tuple] = {}
        self.durations: dict[str, float] = {}
        self.last_failure = ""

    def prepare(self) -> None:
        empty = self.work / "empty"
        empty.mkdir()
        (empty / "tanas.toml").write_text(project_text())
        full = self.work / "full"
        for scenario, start in (("run", empty), ("tasks-add", empty), ("tasks-remove", None), ("engine", empty)):
            if scenario == "tasks-remove":
                start = full
            self.starts[scenario] = start
            folder = self._fresh(scenario, "reference")
            t0 = time.perf_counter()
            if scenario == "engine":
                done, t0 = self._engine_reference(folder)
            else:
                done = cli(folder, *command(scenario))
            self.durations[scenario] = time.perf_counter() - t0
            if done.returncode != 0:
                raise SystemExit(f"reference {scenario} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
            self.references[scenario] = snapshot(folder)
            if scenario == "run":
                shutil.copytree(folder, full)
            print(f"reference {scenario}: {self.durations[scenario]:.1f} s", flush=True)

    def _engine_reference(self, folder: Path):
        """Queues the run in a fresh engine and times it from the queueing to its search's end (the engine has
        its imports done by then: kills are drawn over that span)."""
        from tanas_tui.client import engine_running

        started = _start_engine(folder)
        if started.returncode != 0:
            return started, time.perf_counter()
        t0 = time.perf_counter()
        queued = cli(folder, "run", "tanas.toml", "--detach")
        while queued.returncode == 0 and not _engine_idle(folder) and time.perf_counter() - t0 < 600:
            time.sleep(0.2)
        pid = engine_running(folder / "store.zarr")
        time.sleep(0.5)                         # the job's last records after its search's result
        cli(folder, "engine", "stop", "--config", "tanas.toml")
        if pid is not None:
            _kill(pid)
        return queued, t0

    def _fresh(self, scenario: str, label: str) -> Path:
        folder = self.work / f"{scenario}-{label}"
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(self.starts[scenario], folder)
        return folder

    def kill_once(self, scenario: str, delay: float, index: int) -> str:
        folder = self._fresh(scenario, f"kill{index}")
        if scenario == "engine":
            if _start_engine(folder).returncode != 0:
                return "not started"       # a loaded machine: the engine did not answer in time (nothing killed)
            queued = cli(folder, "run", "tanas.toml", "--detach")
            from tanas_tui.client import engine_running

            pid = engine_running(folder / "store.zarr")
            if queued.returncode != 0 or pid is None:
                return "lost"
            time.sleep(delay)
            finished = not _alive(pid) or _engine_idle(folder)
            _kill(pid)
        else:
            proc = subprocess.Popen([sys.executable, "-c", CLI, *command(scenario)], cwd=folder, env=env(),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(delay)
            finished = proc.poll() is not None
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        exists = (folder / "store.zarr" / "zarr.json").is_file()
        if finished or (exists and _quiet_snapshot(folder) == self.references[scenario]):
            return "finished"       # the work was all in when the kill came (the process was only exiting)
        before = recoveries(folder) if exists else 0
        rerun = cli(folder, *command(scenario))
        if rerun.returncode == 0 and snapshot(folder) == self.references[scenario]:
            return "recovered automatically" if recoveries(folder) > before else "resumed exactly"
        self.last_failure = f"rerun exit {rerun.returncode}: {(rerun.stderr or rerun.stdout).strip()[-300:]}"
        repaired = cli(folder, "store", "check", "--repair", "--store", "store.zarr")
        again = cli(folder, *command(scenario))
        if repaired.returncode == 0 and again.returncode == 0 and snapshot(folder) == self.references[scenario]:
            return "needed --repair"
        return "lost"


def _start_engine(folder: Path) -> subprocess.CompletedProcess:
    """`engine start`, tried three times (on a loaded machine the first answer can come too late)."""
    for _ in range(3):
        started = cli(folder, "engine", "start", "--config", "tanas.toml")
        if started.returncode == 0:
            break
        time.sleep(2)
    return started


def _quiet_snapshot(folder: Path):
    """The snapshot, or None when the killed writer left the store unreadable to a plain reader."""
    try:
        return snapshot(folder)
    except Exception:  # noqa: BLE001 - the re-run decides what that means
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    for _ in range(200):
        if not _alive(pid):
            return
        try:                         # the engine is our grandchild: reaped by init, or a zombie of ours
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.02)


def _engine_idle(folder: Path) -> bool:
    from store import Store

    with Store.open(folder / "store.zarr") as st:
        return any(s.get("status") == "done" and s["id"].startswith(TARGET) for s in st.list_searches())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    args = parser.parse_args()
    scenarios = [s for s in args.only.split(",") if s]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s) {sorted(unknown)}; choose from {', '.join(SCENARIOS)}")
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="bench-kills-"))
    counts: dict[str, int] = {}
    try:
        bench = Bench(work)
        bench.prepare()
        t0 = time.perf_counter()
        for i in range(args.kills):
            scenario = scenarios[i % len(scenarios)]
            delay = rng.uniform(0.0, bench.durations[scenario])
            outcome = bench.kill_once(scenario, delay, i)
            counts[outcome] = counts.get(outcome, 0) + 1
            why = f" ({bench.last_failure})" if outcome in ("needed --repair", "lost") else ""
            print(f"kill {i + 1:3d}: {scenario:12s} after {delay:5.1f} s -> {outcome}{why}", flush=True)
        print(f"{args.kills} kills in {time.perf_counter() - t0:.0f} s (load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
        for outcome in ("resumed exactly", "recovered automatically", "needed --repair", "lost", "finished",
                        "not started"):
            print(f"  {outcome:24s} {counts.get(outcome, 0)}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if counts.get("needed --repair") or counts.get("lost") else 0


if __name__ == "__main__":
    sys.exit(main())
