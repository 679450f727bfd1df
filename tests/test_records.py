"""store.records: typed records round-trip through store attributes, keep unknown fields, carry a version."""
from __future__ import annotations

import pytest

from store import Store
from store.records import RECORD_VERSION, SearchRunRecord, TaskRecord


def test_task_record_round_trips_through_the_store(tmp_path):
    record = TaskRecord(name="moon", source="sketches", rule="is moon", n_train=10, n_val=2, n_test=3,
                        extra={"written_by_a_newer_version": 1})
    with Store.open(tmp_path / "s.zarr", "w", create=True) as st:
        st.add_task("t1", record.to_attrs())
        stored = st.list_tasks()[0]
    assert stored["record_version"] == RECORD_VERSION
    back = TaskRecord.from_attrs(stored)
    assert back.id == "t1" and back.name == "moon" and (back.n_train, back.n_val, back.n_test) == (10, 2, 3)
    assert back.extra == {"written_by_a_newer_version": 1}
    assert back.genotype_id is None
    back.best_genotype = {"hash": "abc"}
    assert back.genotype_id == "abc"


def test_search_run_record_leaves_unset_fields_and_store_counters_out():
    attrs = SearchRunRecord(kind="random", seed=3, committed_steps=7, extra={"network": "resnet18"}).to_attrs()
    assert "committed_steps" not in attrs and "result" not in attrs and "id" not in attrs
    assert attrs["kind"] == "random" and attrs["network"] == "resnet18"
    read = SearchRunRecord.from_attrs({**attrs, "id": "r", "committed_steps": 7})
    assert (read.id, read.committed_steps, read.seed, read.extra) == ("r", 7, 3, {"network": "resnet18"})


def test_a_table_rows_cost_is_the_runs_device_seconds_as_everywhere_else():
    """Issue 23 item 5: one cost figure. A run stored with a stale 0.0 device-hours and 121.7 device seconds costs
    0.0338 device-hours in the headless result table too, as in `searches list` and `searches compare`."""
    from store.records import table_row

    row = table_row("FUSE, task-aware space", {"test_error": 1.0, "params_m": 0.1, "cost_device_hours": 0.0,
                                               "seconds": 121.7})
    assert row["cost_device_hours"] == pytest.approx(121.7 / 3600)
    assert table_row("old", {"test_error": 1.0, "params_m": 0.1, "cost_device_hours": 0.5})["cost_device_hours"] == 0.5
