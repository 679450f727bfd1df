"""The Textual app under load: event-loop stall while α steps stream at full speed, and startup to first paint.

    python benchmarks/bench_ui.py [--seconds 5] [--tasks 100] [--searches 20]

1. Stall: a stand-in engine (a Unix socket speaking `engine.service.protocol`: it answers `subscribe` / `status` and then
   writes `alpha_step` events as fast as the socket takes them) feeds the app through its real client and follow
   worker, with the FUSE tab showing. A 100 Hz probe timer records the largest gap between its ticks.
   Target: largest gap ≤ 100 ms.
2. Startup: a store with `--tasks` tasks and `--searches` searches; time from starting the app to the first paint,
   and to the task table showing every task. Target: first paint ≤ 2 s.
Runs headless (Textual's test driver), so the terminal's own drawing is not counted.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from engine.service import protocol as P  # noqa: E402
from engine.service.server import SocketPath, run_paths  # noqa: E402
from ui_fixtures import build_fixture_store  # noqa: E402

PROBE_INTERVAL = 0.01
WARM_UP = 1.0


class FakeEngine:
    """Serves the app's connection: replies to commands, streams α steps after `subscribe` until stopped.
    Runs in its own process (`--serve`), as the real engine does, so it does not compete for the app's GIL."""

    def __init__(self, store: Path, run_id: str, first_step: int, candidates: int = 3):
        self.store, self.run_id, self.first_step, self.candidates = store, run_id, first_step, candidates
        paths = run_paths(store)
        paths["run_dir"].mkdir(exist_ok=True)
        self.sock_path = paths["sock"]
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with SocketPath(self.sock_path) as address:
            self.server.bind(address)
        self.server.listen(8)
        paths["pid"].write_text(f"{os.getpid()}\n")
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self.server.close()
        for key in ("sock", "pid"):
            run_paths(self.store)[key].unlink(missing_ok=True)

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        seq = 0
        with conn:
            while not self.stop.is_set():
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    cmd = P.decode_command(line)
                    data = {"seq": 0} if cmd.TYPE == "subscribe" else {"device": "cpu (bench)", "job": None}
                    conn.sendall(P.encode(P.Reply(seq=0, command=cmd.TYPE, id=cmd.id, data=data)))
                    if cmd.TYPE == "subscribe":
                        self._stream(conn, seq)
                        return

    def _stream(self, conn: socket.socket, seq: int) -> None:
        step = self.first_step
        c = self.candidates
        while not self.stop.is_set():
            lines = []
            for _ in range(64):
                seq += 1
                ev = P.AlphaStep(seq=seq, run_id=self.run_id, step=step, round=0, alternation=step % 5,
                                 alpha=[0.001 * step * (k - 1) for k in range(c)], loss_train=1.0 / (1 + step),
                                 loss_val=1.1 / (1 + step), val_acc=[0.5 + 0.1 * k for k in range(c)])
                lines.append(P.encode(ev))
                step += 1
            try:
                conn.sendall(b"".join(lines))
            except OSError:
                return


def serve(store: Path, run_id: str, first_step: int) -> None:
    engine = FakeEngine(store, run_id, first_step)
    try:
        while not engine.stop.is_set():
            time.sleep(0.2)
    finally:
        engine.close()


def start_engine_process(store: Path, run_id: str, first_step: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(store), run_id, str(first_step)])
    deadline = time.monotonic() + 30
    while not run_paths(store)["pid"].exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the stand-in engine did not start")
        time.sleep(0.05)
    return proc


async def measure_stall(store: Path, seconds: float, stream: bool = True) -> dict[str, float]:
    """With `stream=False` the same app idles on the same tab (no engine): the machine's own timer jitter."""
    from tanas_tui.app import TanasApp
    from tanas_tui.model.snapshot import read_search

    first = read_search(store, "run-01").steps
    engine = start_engine_process(store, "run-01", first) if stream else None
    app = TanasApp(store, connect=stream)
    gaps: list[float] = []
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            tabs = app.query_one("#tabs")
            for _ in range(200):          # the FUSE tab (the panel doing the most per event), connected, streaming
                await pilot.pause(0.05)
                if tabs.active != "fuse":
                    await pilot.press("4")
                run = app.model.searches.get("run-01")
                if tabs.active == "fuse" and run is not None and (run.steps > first or not stream):
                    break
            await pilot.pause(WARM_UP)    # the tab's first layout and the plots' first draw are not the steady state
            last = [time.perf_counter()]

            def probe() -> None:
                now = time.perf_counter()
                gaps.append(now - last[0])
                last[0] = now

            app.set_interval(PROBE_INTERVAL, probe)
            applied0 = app.model.searches["run-01"].steps
            start = time.perf_counter()
            await pilot.pause(seconds)
            elapsed = time.perf_counter() - start
            applied = app.model.searches["run-01"].steps - applied0
            engine_state = app.link.state
            tab = app.query_one("#tabs").active
            received = app.model.searches["run-01"].steps - first + len(app._inbox)
    finally:
        if engine is not None:
            engine.terminate()
            engine.wait(10)
    gaps = gaps[1:]
    return {"max_gap_ms": 1000 * max(gaps), "p99_gap_ms": 1000 * sorted(gaps)[int(0.99 * (len(gaps) - 1))],
            "ticks": len(gaps), "steps_applied_per_s": applied / elapsed, "engine": engine_state, "tab": tab,
            "steps_received": received}


async def measure_startup(store: Path, tasks: int) -> dict[str, float]:
    from textual.widgets import DataTable

    from tanas_tui.app import TanasApp

    start = time.perf_counter()
    app = TanasApp(store, connect=False)
    first_paint = [0.0]

    def painted() -> None:
        first_paint[0] = time.perf_counter() - start

    async with app.run_test(size=(100, 30)) as pilot:
        app.call_after_refresh(painted)
        table = app.query_one("#tasks", DataTable)
        while table.row_count < tasks:
            await pilot.pause(0.01)
        await pilot.pause()
        filled = time.perf_counter() - start
    return {"first_paint_s": first_paint[0], "all_tasks_shown_s": filled}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--searches", type=int, default=20)
    parser.add_argument("--serve", nargs=3, metavar=("STORE", "RUN", "FIRST_STEP"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        serve(Path(args.serve[0]), args.serve[1], int(args.serve[2]))
        return
    with tempfile.TemporaryDirectory(prefix="bench-ui-") as tmp:
        stall_store = build_fixture_store(Path(tmp) / "stall.zarr")
        idle = asyncio.run(measure_stall(stall_store, args.seconds, stream=False))
        print(f"control (no engine, same tab): largest gap {idle['max_gap_ms']:.1f} ms "
              f"(p99 {idle['p99_gap_ms']:.1f} ms, {idle['ticks']} ticks): this machine's own jitter")
        stall = asyncio.run(measure_stall(stall_store, args.seconds))
        print(f"stall: largest gap between {PROBE_INTERVAL * 1000:.0f} ms ticks {stall['max_gap_ms']:.1f} ms "
              f"(p99 {stall['p99_gap_ms']:.1f} ms, {stall['ticks']} ticks) while applying "
              f"{stall['steps_applied_per_s']:.0f} α steps/s (engine {stall['engine']}, "
              f"{stall['steps_received']} received); target ≤ 100 ms: {'ok' if stall['max_gap_ms'] <= 100 else 'MISSED'}")
        big = build_fixture_store(Path(tmp) / "big.zarr", tasks=args.tasks, searches=args.searches)
        startup = asyncio.run(measure_startup(big, args.tasks))
        print(f"startup ({args.tasks} tasks, {args.searches} searches): first paint {startup['first_paint_s']:.2f} s, "
              f"all tasks shown {startup['all_tasks_shown_s']:.2f} s; target first paint ≤ 2 s: "
              f"{'ok' if startup['first_paint_s'] <= 2 else 'MISSED'}")


if __name__ == "__main__":
    main()
