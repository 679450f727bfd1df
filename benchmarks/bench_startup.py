"""Start-up cost of the front end, whole processes from exec to result, as ratios to `python -c pass`.

    python benchmarks/bench_startup.py [--repeat 5] [--tasks 30]

1. `tanas-tui --help` (`python -m tanas_tui.cli --help`). Target: ≤ 0.5 s.
2. The UI's first paint on an existing store: a child process loads the config the way `tanas-tui` does, starts the
   app headless and reports the moment of its first paint (measured from the parent's exec). Target: ≤ 1 s.
Neither may import torch; the script says whether they did. Each figure is the median of `--repeat` runs and is
printed with the median of `python -c pass` measured in the same run.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

CHILD = r"""
import sys, time
from pathlib import Path
from tanas_tui.common import load_cli_config
cfg = load_cli_config(Path(sys.argv[1]), Path(sys.argv[2]), check_classes=False)
from tanas_tui.app import TanasApp

class Probe(TanasApp):
    CSS_PATH = str(Path(sys.modules["tanas_tui.app"].__file__).with_name("app.tcss"))

    def _after_first_paint(self):
        print(f"PAINT {time.time():.6f} torch={'torch' in sys.modules}", flush=True)
        self.exit()

Probe(cfg.store_path, cfg, Path(sys.argv[1]), connect=False).run(headless=True, size=(100, 30))
"""


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def wall(args: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(args, cwd=cwd, env=_env(), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def first_paint(config: Path, store: Path, cwd: Path) -> tuple[float, bool]:
    script = cwd / "first_paint.py"   # a file: Textual finds the app's CSS next to the class's source
    if not script.exists():
        script.write_text(CHILD)
    t0 = time.time()
    out = subprocess.run([sys.executable, str(script), str(config), str(store)], cwd=cwd, env=_env(), check=True,
                         capture_output=True, text=True, timeout=120).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("PAINT "))
    stamp, flag = line.split()[1:3]
    return float(stamp) - t0, flag == "torch=True"


def help_imports_torch(cwd: Path) -> bool:
    code = ("import sys; sys.argv=['tanas-tui','--help']\nfrom tanas_tui.cli import app\n"
            "try: app(standalone_mode=False)\nfinally: print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=_env(), capture_output=True, text=True).stdout
    return out.strip().endswith("True")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=30)
    args = parser.parse_args()
    from ui_fixtures import build_fixture_store

    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        store = build_fixture_store(cwd / "tanas-store.zarr", tasks=args.tasks, searches=4)
        config = cwd / "tanas.toml"
        config.write_text('[project]\nstore = "tanas-store.zarr"\n')
        base, helps, paints, torch_in_ui = [], [], [], False
        first_paint(config, store, cwd)   # warm the file cache once
        for _ in range(args.repeat):
            base.append(wall([sys.executable, "-c", "pass"], cwd))
            helps.append(wall([sys.executable, "-m", "tanas_tui.cli", "--help"], cwd))
            seconds, torch_loaded = first_paint(config, store, cwd)
            paints.append(seconds)
            torch_in_ui |= torch_loaded
        b, h, p = (statistics.median(x) for x in (base, helps, paints))
        torch_in_help = help_imports_torch(cwd)
    print(f"python -c pass           {b:.3f} s (baseline)")
    print(f"tanas-tui --help         {h:.3f} s  = {h / b:5.1f} x baseline; target ≤ 0.5 s: "
          f"{'ok' if h <= 0.5 else 'MISSED'}; imports torch: {torch_in_help}")
    print(f"UI first paint ({args.tasks} tasks) {p:.3f} s  = {p / b:5.1f} x baseline; target ≤ 1 s: "
          f"{'ok' if p <= 1.0 else 'MISSED'}; imports torch before the paint: {torch_in_ui}")


if __name__ == "__main__":
    main()
