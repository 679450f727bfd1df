"""FUSE performance ratios, measured in one run (prints figures; never asserts).

1. Mixture overhead: one FUSE weight epoch over C candidates / the same C candidates trained alone on the same
   batches (target <= 1.15).
2. Input pipeline: a training epoch with the project's batching (uint8 index slices, per-batch float conversion) /
   a pure-compute loop over pre-made float batches (target <= 1.10).
3. Store writes: time inside the SearchWriter (append, set_candidates, flush) / the whole search's wall time
   (target <= 1 %).

    .venv/bin/python benchmarks/bench_fuse.py [--device cpu|cuda] [--candidates 4] [--samples 1024] [--threads 1]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.config import SearchSection  # noqa: E402
from engine.runtime.device import autocast, prepare_model, resolve_device  # noqa: E402
from engine.search.fuse import Fuse, Mixture  # noqa: E402
from engine.space.spaces import SearchSpace  # noqa: E402
from engine.data.tasks import TaskData, TaskDef, batches  # noqa: E402
from engine.search.training import data_generator, model_input, train_epoch  # noqa: E402
from engine.space.network import build_network


def synthetic_task(n: int, size: int = 28) -> TaskData:
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (n,), generator=g)
    x = (torch.rand(n, 1, size, size, generator=g) * 80).to(torch.uint8)
    x[y == 1, :, : size // 2, : size // 2] += 150
    x[y == 0, :, size // 2:, size // 2:] += 150
    a, b = n * 7 // 10, n * 8 // 10
    return TaskData(id="bench", definition=TaskDef(name="bench", source="synthetic", positive=("1",)),
                    class_names=("rest", "1"), num_classes=2, train_x=x[:a], train_y=y[:a], val_x=x[a:b],
                    val_y=y[a:b], _test_x=x[b:], _test_y=y[b:])


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


CLOCK = time.perf_counter


def paired(fn_a, fn_b, device, repeats: int) -> tuple[float, float]:
    """Median times of a and b, run alternately (a, b, a, b, ...) so load drift on a shared machine hits both."""
    fn_a(), fn_b()  # warm-up (allocator, cudnn autotune, first-touch)
    ta, tb = [], []
    for _ in range(repeats):
        for fn, out in ((fn_a, ta), (fn_b, tb)):
            sync(device)
            t0 = CLOCK()
            fn()
            sync(device)
            out.append(CLOCK() - t0)
    return statistics.median(ta), statistics.median(tb)


def mixture_overhead(space, task, device, c: int, batch: int, repeats: int) -> tuple[float, float]:
    models = [prepare_model(build_network(g, 2, seed=i), device) for i, g in enumerate(space.sample_many(c, 1))]
    x, y = task.train_x.to(device), task.train_y.to(device)
    alpha = torch.nn.Parameter(torch.zeros(c, device=device), requires_grad=False)
    mixture = Mixture(models, alpha)
    opt = torch.optim.Adam([p for m in models for p in m.parameters()], lr=1e-3)
    alone_opts = [torch.optim.Adam(m.parameters(), lr=1e-3) for m in models]

    def fuse_epoch():
        train_epoch(mixture, opt, x, y, device=device, batch_size=batch, generator=data_generator(0))

    def alone_epochs():
        for m, o in zip(models, alone_opts):
            train_epoch(m, o, x, y, device=device, batch_size=batch, generator=data_generator(0))

    return paired(fuse_epoch, alone_epochs, device, repeats)


def input_pipeline(space, task, device, batch: int, repeats: int) -> tuple[float, float]:
    model = prepare_model(build_network(space.sample(5), 2, seed=0), device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = task.train_x.to(device), task.train_y.to(device)
    pre = [(model_input(xb, device).clone(), yb.clone()) for xb, yb in batches(x, y, batch, True, data_generator(0))]

    def ours():
        train_epoch(model, opt, x, y, device=device, batch_size=batch, generator=data_generator(0))

    def pure():
        model.train()
        for xb, yb in pre:
            with autocast(device):
                logits = model(xb)
            loss = F.cross_entropy(logits.float(), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return paired(ours, pure, device, repeats)


def store_share(space, task, device, cfg: SearchSection) -> tuple[float, float, int]:
    from store import SearchWriter, Store

    spent = [0.0]
    originals = {name: getattr(SearchWriter, name) for name in ("append", "flush", "set_candidates")}

    def wrap(fn):
        def inner(*args, **kwargs):
            t0 = time.perf_counter()   # wall time: file writes wait on I/O, which CPU time would miss
            try:
                return fn(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - t0
        return inner

    for name, fn in originals.items():
        setattr(SearchWriter, name, wrap(fn))
    try:
        with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "s.zarr", mode="w", create=True) as st:
            t0 = time.perf_counter()
            Fuse(task, space, cfg, store=st, run_id="bench", device=device, seed=0).run()
            wall = time.perf_counter() - t0
            steps = st.read_search("bench").steps
    finally:
        for name, fn in originals.items():
            setattr(SearchWriter, name, fn)
    return spent[0], wall, steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--candidates", type=int, default=4)
    ap.add_argument("--samples", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--nodes", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1,
                    help="CPU threads (default 1: on a shared machine, multi-threaded kernels spin-wait on busy "
                         "cores and the ratios measure the neighbours; 0 keeps torch's default)")
    args = ap.parse_args()
    global CLOCK
    device = resolve_device(args.device)
    if device.type == "cpu" and args.threads > 0:
        torch.set_num_threads(args.threads)
    if device.type == "cpu" and torch.get_num_threads() == 1:
        # One thread: this process's CPU time is its compute, unaffected by other processes sharing the cores.
        CLOCK = time.process_time
    space = SearchSpace(kind="standard", op_weights={op: 1.0 for op in (
        "skip_connect", "avg_pool_3x3", "max_pool_3x3", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3",
        "dil_conv_5x5", "conv_7x1_1x7")}, nodes=(args.nodes,), channels=(args.channels,), layers=(args.layers,))
    task = synthetic_task(args.samples)
    clock = "process CPU time" if CLOCK is time.process_time else "wall time"
    print(f"device {device}, torch threads {torch.get_num_threads()}, timed by {clock}; {len(task.train_y)} train "
          f"samples, batch {args.batch}, C={args.channels}, layers={args.layers}, nodes={args.nodes}, "
          f"median of {args.repeats}")

    fuse_t, alone_t = mixture_overhead(space, task, device, args.candidates, args.batch, args.repeats)
    r1 = fuse_t / alone_t
    print(f"mixture overhead: FUSE weight epoch over {args.candidates} candidates {fuse_t:.3f} s / "
          f"alone {alone_t:.3f} s = {r1:.3f} (target <= 1.15) {'ok' if r1 <= 1.15 else 'OVER'}")

    ours_t, pure_t = input_pipeline(space, task, device, args.batch, args.repeats)
    r2 = ours_t / pure_t
    print(f"input pipeline: uint8 index-slice epoch {ours_t:.3f} s / pre-made float epoch {pure_t:.3f} s = "
          f"{r2:.3f} (target <= 1.10) {'ok' if r2 <= 1.10 else 'OVER'}")

    cfg = SearchSection(rounds=2, candidates=args.candidates, alternations=2, w_epochs=1, alpha_epochs=1,
                        batch_size=args.batch, final_epochs=1, alpha_lr=3e-2)
    spent, wall, steps = store_share(space, task, device, cfg)
    r3 = spent / wall
    print(f"store writes: {spent * 1000:.1f} ms in the SearchWriter over a {wall:.2f} s search ({steps} α steps) = "
          f"{100 * r3:.3f} % (target <= 1 %) {'ok' if r3 <= 0.01 else 'OVER'}")


if __name__ == "__main__":
    main()
