"""The dictionary's units of work for a remote executor: plain functions of plain data, returning arrays.

They never touch the store: the engine passes the probe weights and task tensors in and writes what comes back.
`train_probe_unit` is one probe training (one task, one seed); `fisher_unit` is one probe's Fisher passes: its own
task's Fisher when asked and its Fisher on every listed target's samples, so each probe is loaded once;
`transfer_unit` is one source probe's transfer distances to every listed target (`method = "transfer"`).
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from engine.data.tasks import TaskData
from engine.runtime.reporting import SILENT, Reporter


def worker_task(task: TaskData) -> TaskData:
    """The task as shipped to workers: train and validation splits only (units never read the held-out test split,
    so it stays in the engine, where its reads are counted)."""
    empty_x, empty_y = task.val_x[:0], task.val_y[:0]
    return TaskData(id=task.id, definition=task.definition, class_names=task.class_names,
                    num_classes=task.num_classes, train_x=task.train_x.cpu(), train_y=task.train_y.cpu(),
                    val_x=task.val_x.cpu(), val_y=task.val_y.cpu(), _test_x=empty_x.cpu(), _test_y=empty_y.cpu())


def train_probe_unit(task: TaskData, dcfg: Any, seed: int, seed_index: int, device: str,
                     reporter: Reporter = SILENT) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """One probe training. Returns (weights as numpy arrays, {val_acc, epochs, seconds, pid})."""
    import torch

    from engine.similarity.probe import probe_state, train_probe

    device = torch.device(device)
    reporter.emit("log", level="debug", message=f"unit probe {task.definition.name} seed {seed_index} "
                                                 f"started on pid {os.getpid()}")
    if device.type != "cpu":
        task = worker_task(task).to(device)
    result = train_probe(task, dcfg, seed=seed, device=device, reporter=reporter, seed_index=seed_index)
    return probe_state(result.model), {"val_acc": result.val_acc, "epochs": result.epochs,
                                       "seconds": result.seconds, "pid": os.getpid()}


def fisher_unit(fisher_fn: Any, arch: str, num_classes: int, probe: tuple[dict[str, np.ndarray], Any], dcfg: Any,
                seed_index: int, device: str, target_ids: list[str], target_classes: list[int],
                *samples: tuple) -> dict[str, np.ndarray]:
    """One probe's Fisher passes: {task id: vector} on each listed task's Fisher samples (`fisher_samples(task, M)`:
    M rows and the task's seed, all a pass needs, so a unit never receives whole tasks), computed by `fisher_fn`
    (the dictionary's form: `engine.similarity.fisher.classifier_fisher` or `domain_fisher`). `probe`: a probe
    unit's result, or (stored weights, None). The probe's own task is listed when its own Fisher is wanted (no head
    padding: the stored own Fisher is unpadded)."""
    import torch

    from engine.runtime.device import prepare_model
    from engine.similarity.probe import load_probe

    device = torch.device(device)
    net = prepare_model(load_probe(arch, num_classes, probe[0]), device).eval()
    out: dict[str, np.ndarray] = {}
    for tid, classes, (x, y, seed) in zip(target_ids, target_classes, samples):
        head_classes = max(num_classes, classes) if dcfg.include_head and classes else None
        out[tid] = fisher_fn(net, (x.to(device), y.to(device), seed), seed_index, dcfg, head_classes).numpy()
    return out


def transfer_unit(arch: str, num_classes: int, probe: tuple[dict[str, np.ndarray], Any], tcfg: Any, seed_index: int,
                  seed: int, device: str, reporter: Reporter, target_ids: list[str], target_classes: list[int],
                  *probes_and_tasks: Any) -> dict[str, float]:
    """One source probe A's transfer distances {target id: d(A, B)}, the probe loaded once for all its targets.
    `probes_and_tasks`: each target's probe (a probe unit's result or (stored weights, None)), then each target's
    task as `worker_task` ships it (train + val: all a transform network reads). Object refs at the top level, so
    Ray resolves them (a target's probe may still be training when this unit is submitted)."""
    import torch

    from engine.runtime.device import prepare_model
    from engine.similarity.probe import load_probe
    from engine.similarity.transfer import transfer_distance

    device = torch.device(device)
    n = len(target_ids)
    target_probes, tasks = probes_and_tasks[:n], probes_and_tasks[n:]
    net_a = prepare_model(load_probe(arch, num_classes, probe[0]), device).eval()
    out: dict[str, float] = {}
    for tid, classes, target_probe, task in zip(target_ids, target_classes, target_probes, tasks):
        net_b = prepare_model(load_probe(arch, classes, target_probe[0]), device).eval()
        if device.type != "cpu":
            task = task.to(device)
        out[tid] = float(transfer_distance(net_a, net_b, task, tcfg, device=device, seed=seed,
                                           reporter=reporter).distance)
    return out
