"""A hand-made store of finished comparison runs with planted per-sample outcomes (for `searches compare` and the
UI's compare view): three seeds; FUSE task-aware errs on about 10 % of 400 test samples, the farthest-tasks control
on about 30 % (a real difference), random search on the same samples as task-aware but for two swapped ones (no
difference), ResNet-18 exactly like task-aware."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from store import Store
from store.records import BudgetRecord, SearchRunRecord

N_TEST = 400


def _add_run(st, run_id, arm, kind, seed, correct, *, space_kind=None, unit="candidate-epochs"):
    record = SearchRunRecord(kind=kind, target="tid", target_name="tgt", space_kind=space_kind, seed=seed,
                             status="running", device="cpu", arm=arm, config={"rounds": 1},
                             budget=BudgetRecord(epochs=12 if unit == "candidate-epochs" else 5, unit=unit,
                                                 final_epochs=5).to_attrs())
    st.create_search(run_id, record.to_attrs(), 1).flush()
    st.save_test_outcome(run_id, correct, "tid")
    err = 100.0 * (1 - correct.mean())
    st.update_search(run_id, status="done", result={"test_error": err, "params": 1000 + seed, "params_m": 0.001,
                                                    "seconds": 90.0 + seed, "cost_device_hours": 0.025})


def build_compare_store(path: Path) -> Path:
    rng = np.random.default_rng(0)
    with Store.open(path, mode="w", create=True) as st:
        st.add_task("tid", {"name": "tgt", "role": "target", "definition": {"name": "tgt", "source": "x"}})
        for seed in range(3):
            aware = rng.random(N_TEST) > 0.1
            control = aware & (rng.random(N_TEST) > 0.25)
            same = aware.copy()   # one right sample made wrong, one wrong made right: no net difference
            i, j = np.flatnonzero(aware)[seed], np.flatnonzero(~aware)[seed]
            same[i], same[j] = False, True
            _add_run(st, f"tgt-task-aware-{seed}", "fuse-task-aware", "fuse", seed, aware, space_kind="task-aware")
            _add_run(st, f"tgt-farthest-{seed}", "fuse-farthest", "fuse", seed, control, space_kind="farthest")
            _add_run(st, f"tgt-random-{seed}", "random", "random", seed, same)
            _add_run(st, f"tgt-resnet18-{seed}", "fixed", "fixed:ResNet-18", seed, aware, unit="network-epochs")
    return path
