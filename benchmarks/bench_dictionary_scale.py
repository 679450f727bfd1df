"""A dictionary of N tasks on synthetic vectors of the real dimension (issue 20): the cost of adding a task, the
k = 10 nearest query, memory and store size, each against today's per-entry path measured in the same run.

    python benchmarks/bench_dictionary_scale.py                      # N = 1,000 and 10,000, then 100,000 (reduced)
    python benchmarks/bench_dictionary_scale.py --sizes 1000 --big 0 # quick

Synthetic tasks: `families` patterns (gamma-distributed, like a Fisher diagonal) times per-task log-normal noise of
a random size, so every task has near neighbours at varied distances. A store of N tasks is built through the store
API (task records, vectors, an N × N matrix of random values written in blocks: the add's cost does not depend on
the values), then one more task is added by
- the new path: its vector stored, its distances to the N tasks computed from the stored vectors, its row and
  column written as two slices per array (what `Dictionary.add_task` does for the vector forms);
- today's per-entry path: one growth, then 2N + 1 entries, each two Fisher reads, `fisher_distance` and
  `set_distance` — measured on a prefix of `--prefix` entries and extrapolated (said so in the output).
The nearest query: `store.queries.nearest` (exact scan up to EXACT_MAX, then reduced vectors + exact re-rank) against
today's (the whole matrix and every task's attributes read, the column sorted); recall@10 against an exact scan.
N = 100,000 (`--big`): the reduced vectors only, generated in one streaming pass that also computes the exact
distances of the query tasks (no 22 GB of full vectors on disk); the re-rank's reads are measured on the 10,000-task
store (the same number of rows), and said so.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.similarity.distance import fisher_distance  # noqa: E402
from store import Store  # noqa: E402
from store import queries as Q  # noqa: E402
from store import vectors as V  # noqa: E402

DIM = 55_904
K = 10


def rss_mb() -> tuple[float, float]:
    """(current, peak since the last reset) resident memory of this process, MB."""
    cur = peak = 0.0
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                cur = int(line.split()[1]) / 1024
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    return cur, peak


def reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def du_mb(path: Path) -> float:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.stat(os.path.join(root, f)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total / 2**20


class Synthetic:
    def __init__(self, families: int, dim: int = DIM, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.dim = dim
        self.bases = rng.gamma(0.3, 1.0, (families, dim)).astype(np.float32) + np.float32(1e-6)

    def fisher(self, i: int) -> np.ndarray:
        rng = np.random.default_rng([7, i])
        sigma = np.float32(rng.uniform(0.05, 0.8))
        noise = rng.standard_normal(self.dim, dtype=np.float32)
        return self.bases[i % len(self.bases)] * np.exp(sigma * noise)

    def vector(self, i: int) -> np.ndarray:
        return V.sqrt_unit_trace(self.fisher(i))


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def build(path: Path, n: int, syn: Synthetic, log) -> list[str]:
    """The N-task store through the bulk API (`add_tasks`, `save_task_vectors`: one order update per batch, as an
    import would do); the timed add that follows goes through the one-task API."""
    ids = [f"t{i:06d}" for i in range(n)]
    t0 = time.perf_counter()
    with Store.open(path, "w", create=True) as st:
        for s in range(0, n, 500):
            batch = ids[s:s + 500]
            st.add_tasks({tid: {"name": f"task-{s + i}", "role": "base", "status": "ready"}
                          for i, tid in enumerate(batch)})
            st.save_task_vectors("fisher", batch, np.stack([syn.vector(s + i) for i in range(len(batch))]))
            if (s + 500) % 2000 == 0:
                log(f"  built {s + 500:,} / {n:,} tasks ({time.perf_counter() - t0:.0f} s)")
        st.add_distance_tasks("fisher", ids)
        rng = np.random.default_rng(1)
        for s in range(0, n, 1024):
            rows = ids[s:s + 1024]
            st.set_distances("fisher", rows, ids, rng.uniform(0.05, 0.7, (len(rows), n)).astype(np.float32),
                             np.zeros((len(rows), n), np.float32))
    log(f"  store of {n:,} tasks built in {time.perf_counter() - t0:.0f} s")
    return ids


def add_new_path(st, tid: str, vec: np.ndarray, ids: list[str]) -> None:
    st.add_task(tid, {"name": tid, "role": "base", "status": "ready"})
    st.save_task_vector("fisher", tid, vec)
    st.add_distance_tasks("fisher", [tid])
    table = st.task_vectors("fisher")
    rows = table.rows_of()
    everyone = ids + [tid]
    d = table.distances_to(table.vectors([tid])[0], [rows[t] for t in everyone])
    d[-1] = 0.0
    st.set_distances("fisher", everyone, [tid], d[:, None], np.zeros((len(everyone), 1)))
    st.set_distances("fisher", [tid], everyone, d[None, :], np.zeros((1, len(everyone))))


def add_old_path(st, tid: str, fisher: np.ndarray, ids: list[str], prefix: int) -> tuple[float, float, int]:
    """Today's add: one growth, then per entry two Fisher reads, fisher_distance and set_distance. Returns (growth s,
    per-entry s measured on the first `prefix` entries, entries measured)."""
    st.add_task(tid, {"name": tid, "role": "base", "status": "ready"})
    st.save_fisher(tid, fisher)
    for b in ids[:prefix]:
        st.save_fisher(b, _SYN.fisher(int(b[1:])))      # the per-entry path reads the tasks' Fishers
    _, growth = timed(st.add_distance_task, "fisher", tid)
    pairs = [(b, tid) for b in ids[:prefix // 2]] + [(tid, b) for b in ids[:prefix - prefix // 2]]
    t = time.perf_counter()
    for b, t2 in pairs:
        value = fisher_distance(st.load_fisher(b), st.load_fisher(t2))
        st.set_distance("fisher", b, t2, value, 0.0)
    return growth, (time.perf_counter() - t) / len(pairs), len(pairs)


def old_nearest(st, tid: str, k: int):
    """Today's query: the whole matrix and every task's attributes read, the target's column sorted."""
    matrix = st.distances("fisher")
    tasks = {t["id"]: t for t in st.list_tasks()}
    j = matrix.index(tid)
    out = [(float(matrix.value[i, j]), b) for i, b in enumerate(matrix.ids)
           if b != tid and tasks.get(b, {}).get("role") != "target" and not np.isnan(matrix.value[i, j])]
    return sorted(out)[:k]


def recall(store, table, queries: list[str], k: int = K) -> tuple[float, float]:
    """(mean recall@k of `nearest` against an exact scan, mean query s)."""
    rows = table.rows_of()
    hits, times = [], []
    for tid in queries:
        got, s = timed(Q.nearest, store, tid, k)
        times.append(s)
        d = table.distances_to(table.vectors([tid])[0])
        d[rows[tid]] = np.inf
        want = {table.row_ids[i] for i in np.argsort(d)[:k]}
        hits.append(len(want & {n.task_id for n in got}) / k)
    return float(np.mean(hits)), float(np.median(times))


_SYN: Synthetic


def one_size(n: int, root: Path, args, log) -> dict:
    global _SYN
    syn = _SYN
    path = root / f"n{n}.zarr"
    ids = build(path, n, syn, log)
    out = {"n": n}
    with Store.open(path, "w") as st:
        size_before = du_mb(path)
        reset_peak()
        _, out["add_new_s"] = timed(add_new_path, st, "new000", syn.vector(n), ids)
        out["add_new_peak_mb"] = rss_mb()[1]
        table = st.task_vectors("fisher")
        queries = [ids[i] for i in np.random.default_rng(2).choice(n, args.queries, replace=False)]
        Q.nearest(st, queries[0], K)                     # warm: the projection, the page cache
        reset_peak()
        out["recall"], out["query_new_s"] = recall(st, table, queries)
        out["query_peak_mb"] = rss_mb()[1]
        reset_peak()
        _, out["query_old_s"] = timed(old_nearest, st, queries[0], K)
        out["query_old_peak_mb"] = rss_mb()[1]
        growth, per_entry, measured = add_old_path(st, "old000", syn.fisher(n + 1), ids, args.prefix)
        out["add_old_s"] = growth + per_entry * (2 * n + 1)
        out["old_growth_s"], out["old_entry_s"], out["old_measured"] = growth, per_entry, measured
    out["store_mb"] = du_mb(path)
    out["vectors_mb"] = du_mb(path / "distances" / "fisher" / "vectors")
    out["matrix_mb"] = size_before - out["vectors_mb"]
    shutil.rmtree(path, ignore_errors=True)
    return out


def big(n: int, args, log, rerank_s: float | None) -> dict:
    """N tasks' reduced vectors from one streaming pass (plus the exact distances of the query tasks)."""
    syn = _SYN
    proj = V.projection(DIM)
    queries = list(range(args.queries))
    qv = np.stack([syn.vector(i) for i in queries]).astype(np.float32)
    reduced = np.empty((n, V.REDUCED_DIM), np.float32)
    exact = np.empty((n, len(queries)), np.float64)
    t0 = time.perf_counter()
    chunk = 256
    for s in range(0, n, chunk):
        block = np.stack([syn.vector(i) for i in range(s, min(n, s + chunk))]).astype(np.float32)
        reduced[s:s + len(block)] = block @ proj
        sq = (block.astype(np.float64) ** 2).sum(1)
        exact[s:s + len(block)] = V.to_distance(sq[:, None], (qv.astype(np.float64) ** 2).sum(1)[None, :],
                                                V.block_dot(block, qv.T.copy()))
        if (s // chunk) % 40 == 0:
            log(f"  {s + len(block):,} / {n:,} vectors ({time.perf_counter() - t0:.0f} s)")
    out = {"n": n, "build_s": time.perf_counter() - t0}
    reset_peak()
    hits, scan = [], []
    for qi, i in enumerate(queries):
        rq = qv[qi] @ proj
        t = time.perf_counter()
        d2 = np.einsum("ij,ij->i", reduced, reduced) + float(rq @ rq) - 2.0 * (reduced @ rq)
        approx = np.sqrt(np.maximum(d2, 0) * 0.5)
        approx[i] = np.inf
        c = Q.candidates(K)
        pick = np.argpartition(approx, c)[:c]
        scan.append(time.perf_counter() - t)
        # the exact re-rank of the candidates (their exact distances are known from the streaming pass)
        got = set(pick[np.argsort(exact[pick, qi])][:K].tolist()) - {i}
        ex = exact[:, qi].copy()
        ex[i] = np.inf
        want = set(np.argsort(ex)[:K].tolist())
        hits.append(len(got & want) / K)
    out["scan_s"] = float(np.median(scan))
    out["recall"] = float(np.mean(hits))
    out["query_s"] = out["scan_s"] + (rerank_s or 0.0)
    out["peak_mb"] = rss_mb()[1]
    out["reduced_mb"] = reduced.nbytes / 2**20
    return out


def rerank_cost(args, root: Path, log) -> float:
    """Reading and re-ranking `candidates(K)` full rows at random positions of a store of --rerank-n tasks."""
    n = args.rerank_n
    path = root / "rerank.zarr"
    with Store.open(path, "w", create=True) as st:
        for i in range(n):
            st.add_task(f"r{i:06d}", {"name": f"r{i}"})
            st.save_task_vector("fisher", f"r{i:06d}", _SYN.vector(i))
    os.system("sync")
    with Store.open(path) as st:
        table = st.task_vectors("fisher")
        q = table.vectors(["r000000"])[0]
        times = []
        for rep in range(3):
            rows = np.random.default_rng(rep).choice(n, Q.candidates(K), replace=False)
            _, s = timed(table.distances_to, q, rows)
            times.append(s)
    shutil.rmtree(path, ignore_errors=True)
    return float(np.median(times))


def main() -> None:
    global _SYN
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[1_000, 10_000])
    ap.add_argument("--big", type=int, default=100_000, help="N for the reduced-vector query (0: skip)")
    ap.add_argument("--prefix", type=int, default=100, help="entries of today's path measured per add")
    ap.add_argument("--queries", type=int, default=10)
    ap.add_argument("--families", type=int, default=200)
    ap.add_argument("--rerank-n", type=int, default=2_000)
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--dim", type=int, default=DIM, help="vector length (the default probe's: 55,904)")
    args = ap.parse_args()
    globals()["DIM"] = args.dim

    def log(msg: str) -> None:
        print(msg, flush=True)

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    log(f"load average before: {os.getloadavg()}; {os.cpu_count()} CPUs; dim {DIM:,}; EXACT_MAX {Q.EXACT_MAX:,}; "
        f"reduced dim {V.REDUCED_DIM}")
    _SYN = Synthetic(args.families, DIM)
    root = Path(tempfile.mkdtemp(prefix="scale-", dir=args.dir))
    try:
        results = []
        for n in args.sizes:
            log(f"N = {n:,}")
            r = one_size(n, root, args, log)
            results.append(r)
            log(f"  add a task: new {r['add_new_s']:.3f} s, today's {r['add_old_s']:.1f} s (growth "
                f"{r['old_growth_s']:.3f} s + {2 * n + 1:,} entries x {r['old_entry_s'] * 1e3:.1f} ms, extrapolated "
                f"from {r['old_measured']} measured) -> ratio {r['add_new_s'] / r['add_old_s']:.4f}; peak RSS "
                f"{r['add_new_peak_mb']:.0f} MB")
            log(f"  nearest k={K}: new {r['query_new_s'] * 1e3:.1f} ms (median of {args.queries}), today's "
                f"{r['query_old_s'] * 1e3:.0f} ms -> ratio {r['query_new_s'] / r['query_old_s']:.4f}; recall@{K} "
                f"{r['recall']:.3f}; peak RSS new {r['query_peak_mb']:.0f} MB, today's {r['query_old_peak_mb']:.0f} MB")
            log(f"  store {r['store_mb']:.0f} MB (vectors {r['vectors_mb']:.0f} MB, matrix and the rest "
                f"{r['matrix_mb']:.0f} MB; today's layout = the same minus the vectors plus one Fisher array per task "
                f"of the same size)")
        if args.big:
            log(f"N = {args.big:,} (reduced vectors only)")
            rr = rerank_cost(args, root, log)
            b = big(args.big, args, log, rr)
            log(f"  nearest k={K}: reduced scan {b['scan_s'] * 1e3:.1f} ms + re-rank of {Q.candidates(K)} rows "
                f"{rr * 1e3:.1f} ms (measured on a {args.rerank_n:,}-task store) = {b['query_s'] * 1e3:.1f} ms; "
                f"recall@{K} {b['recall']:.3f}; reduced vectors {b['reduced_mb']:.0f} MB; peak RSS {b['peak_mb']:.0f} MB"
                f"; streaming pass {b['build_s']:.0f} s")
            if results:
                last = results[-1]
                scale = args.big / last["n"]
                log(f"  today's query extrapolated from N = {last['n']:,} (matrix read ~ N^2): "
                    f"{last['query_old_s'] * scale ** 2:.0f} s -> ratio {b['query_s'] / (last['query_old_s'] * scale ** 2):.2e}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    log(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
