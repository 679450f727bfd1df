"""A reader process polls a search while this process appends and flushes: it only ever sees complete steps."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from store import Store

ROOT = Path(__file__).resolve().parents[1]
_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
C = 4
TOTAL = 2500

# Row i encodes i everywhere, so any torn or stale row is detectable.
_READER = textwrap.dedent(f"""
    import json, sys, time
    import numpy as np
    from store import Store
    C, TOTAL = {C}, {TOTAL}
    st = Store.open(sys.argv[1])
    print("ready", flush=True)
    polls, seen, last, problems = 0, set(), 0, []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rec = st.read_search("run")
        polls += 1
        s = rec.steps
        seen.add(s)
        if s < last:
            problems.append(f"committed steps went back from {{last}} to {{s}}")
        last = s
        i = np.arange(s)
        expect = {{
            "alpha": i[:, None] + np.arange(C)[None, :] / 8, "val_acc": i[:, None] * 0.5 + np.arange(C)[None, :],
            "round": i // 100, "step_kind": i % 3, "loss_train": i.astype(float), "loss_val": -i.astype(float),
        }}
        for name, want in expect.items():
            got = getattr(rec, name)
            if got.shape != want.shape or not np.array_equal(got, want.astype(got.dtype)):
                problems.append(f"poll {{polls}} (steps {{s}}): {{name}} inconsistent")
        rounds = {{c["round"] for c in rec.candidates}}
        missing = set(np.unique(rec.round).tolist()) - rounds
        if missing:
            problems.append(f"poll {{polls}} (steps {{s}}): no candidates for rounds {{sorted(missing)}}")
        if s == TOTAL and rec.attrs.get("status") == "done":
            break
    print(json.dumps({{"polls": polls, "seen": len(seen), "last": last, "problems": problems[:5]}}), flush=True)
""")


def test_reader_process_sees_only_complete_steps(tmp_path):
    path = tmp_path / "s.zarr"
    with Store.open(path, mode="w", create=True) as st:
        writer = st.create_search("run", {"status": "running"}, candidates=C, flush_every=10_000, flush_seconds=None)
        reader = subprocess.Popen([sys.executable, "-c", _READER, str(path)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=_ENV, cwd=ROOT)
        try:
            assert reader.stdout.readline().strip() == "ready"
            rng = np.random.default_rng(0)
            i = 0
            while i < TOTAL:
                if i % 100 == 0:
                    writer.set_candidates(i // 100, [{"n": i}], [f"h{i}"])
                writer.append(i + np.arange(C) / 8, i // 100, i % 3, float(i), -float(i), i * 0.5 + np.arange(C))
                i += 1
                if rng.random() < 1 / 25:  # flushes of uneven sizes, some straddling chunk boundaries
                    writer.flush()
            writer.flush()
            st.update_search("run", status="done")
            out, err = reader.communicate(timeout=60)
        finally:
            if reader.poll() is None:
                reader.kill()
                reader.wait()
    assert reader.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["problems"] == []
    assert summary["last"] == TOTAL
    assert summary["seen"] > 3, summary  # the reader really polled while the writer was writing


def test_distance_reader_never_sees_a_torn_matrix(tmp_path):
    """A reader polling while tasks are added and removed: every cell matches the ids it is reported under."""
    import threading

    path = tmp_path / "s.zarr"
    problems: list[str] = []
    done = threading.Event()
    polls = [0]

    def expected(a: str, b: str) -> float:
        return int(a[1:]) * 100 + int(b[1:])

    def poll() -> None:
        reader = Store.open(path)
        while not done.is_set():
            m = reader.distances("fisher")
            polls[0] += 1
            for i, a in enumerate(m.ids):
                for j, b in enumerate(m.ids):
                    v = m.value[i, j]
                    if not (np.isnan(v) or v == expected(a, b)):
                        problems.append(f"{a}->{b} = {v}")

    with Store.open(path, mode="w", create=True) as st:
        def add(n: int) -> None:
            tid = f"t{n}"
            st.add_task(tid, {"name": tid})
            st.add_distance_task("fisher", tid)
            for other in st.distances("fisher").ids:
                st.set_distance("fisher", tid, other, expected(tid, other))
                st.set_distance("fisher", other, tid, expected(other, tid))

        for n in range(4):
            add(n)
        thread = threading.Thread(target=poll)
        thread.start()
        try:
            for n in range(4, 10):
                add(n)
                st.remove_task(f"t{n - 3}")
        finally:
            done.set()
            thread.join(timeout=30)
        assert st.distances("fisher").ids == ["t0", "t7", "t8", "t9"]
    assert problems == [] and polls[0] > 3
