"""The default pipeline (`tanas-tui run tanas.toml`) quiet and with one competing CPU-bound process
(`python -c "while True: pass"`), the ratio of the two wall times measured in the same run. Target: <= 2.5.

    .venv/bin/python benchmarks/bench_contention.py [--config tanas.toml] [--quick] [--threads N]

Each run is `tanas-tui run` in a child process on a fresh store in a temporary directory (a copy of the config:
the store and data_dir point there). The child's environment has no OMP_NUM_THREADS / MKL_NUM_THREADS: the
engine's own thread choice (`engine.runtime.threads`, `[project] threads`, `--threads`) is what is measured.
`--quick` cuts the config down (3 base tasks, short probe training, one search round, no comparison arms) so both
runs take a few minutes instead of the full pipeline's much longer time; its ratio is the quick pipeline's.
The load average before each run is printed: on a shared machine the "quiet" run is only as quiet as the machine.

Measured (--quick, the 2-core machine shared with other work, docs/SCALE.md): with torch's default of 2 threads,
quiet 126.6 s, loaded 529.4 s, ratio 4.18; with the one-thread default, quiet 48.8 s, loaded 88.9 s, ratio 1.82.
The full default pipeline on an otherwise idle machine: quiet 439.4 s, loaded 459.3 s, ratio 1.05.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

QUICK_TASKS = ("mnist-0", "mnist-1", "sketch-circle")
QUICK = {
    "dictionary": {"max_epochs": "2", "min_epochs": "1", "fisher_samples": "200", "shared_epochs": "1"},
    "search": {"rounds": "1", "candidates": "2", "alternations": "1", "final_epochs": "2", "compare": "false"},
    "sources.sketches": {"per_class": "100"},
}


def set_key(text: str, section: str, key: str, value: str) -> str:
    """Replaces `key = ...` inside `[section]` of a TOML text (the key must be there)."""
    head = re.search(rf"^\[{re.escape(section)}\]\s*$", text, re.M)
    if head is None:
        raise SystemExit(f"bench_contention: the config has no [{section}] section")
    end = re.search(r"^\[", text[head.end():], re.M)
    stop = head.end() + (end.start() if end else len(text) - head.end())
    body, n = re.subn(rf"^{re.escape(key)}\s*=.*$", f"{key} = {value}", text[head.end():stop], count=1, flags=re.M)
    if n == 0:
        raise SystemExit(f"bench_contention: [{section}] has no key {key!r}")
    return text[:head.end()] + body + text[stop:]


def quick_config(text: str) -> str:
    for section, keys in QUICK.items():
        for key, value in keys.items():
            text = set_key(text, section, key, value)
    blocks = re.split(r"(?m)^(?=\[\[tasks\]\]|\[target\])", text)
    kept = [b for b in blocks if not b.startswith("[[tasks]]")
            or re.search(r'^name\s*=\s*"([^"]+)"', b, re.M).group(1) in QUICK_TASKS]
    return "".join(kept)


def run_once(config_text: str, base: Path, label: str, threads: int | None) -> float:
    work = base / label
    work.mkdir()
    text = set_key(config_text, "project", "store", '"store.zarr"')
    text = set_key(text, "project", "data_dir", '"data"')
    text = set_key(text, "project", "device", '"cpu"')
    (work / "tanas.toml").write_text(text)
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") and not k.startswith("TANAS_")}
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = [sys.executable, "-c", "from tanas_tui.cli import main; main()", "run", str(work / "tanas.toml")]
    if threads:
        env["TANAS_PROJECT_THREADS"] = str(threads)
    print(f"{label}: load average {os.getloadavg()[0]:.2f} before the run", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=work)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{label} run failed (exit {proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
    print(f"{label}: {seconds:.1f} s", flush=True)
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(ROOT / "tanas.toml"))
    ap.add_argument("--quick", action="store_true", help="a cut-down copy of the config (a few minutes in all)")
    ap.add_argument("--threads", type=int, default=0, help="[project] threads for both runs (0: the engine's choice)")
    args = ap.parse_args()
    text = Path(args.config).read_text()
    if args.quick:
        text = quick_config(text)
    base = Path(tempfile.mkdtemp(prefix="bench-contention-"))
    try:
        quiet = run_once(text, base, "quiet", args.threads)
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(1.0)   # the competitor is running before the pipeline starts choosing threads
            loaded = run_once(text, base, "one competing process", args.threads)
        finally:
            hog.kill()
            hog.wait()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    what = "quick pipeline" if args.quick else "default pipeline"
    print(f"{what}: quiet {quiet:.1f} s, with one competing CPU-bound process {loaded:.1f} s, "
          f"ratio {loaded / quiet:.2f} (target <= 2.5) on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
