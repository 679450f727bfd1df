"""One format per quantity (issue 11 item 12): percent accuracy, 3-decimal distances, 1-based rounds, cost as a
duration beside device-hours, in the shared formatter and in the headless lines."""
from __future__ import annotations

from engine.service import protocol as P
from tanas_tui import units
from tanas_tui.headless import EventText


def test_formats():
    assert units.pct(0.9731) == "97.3%" and units.pct(None) == "—"
    assert units.distance(0.12345) == "0.123"
    assert [units.duration(s) for s in (42, 196, 3900)] == ["42s", "3m16s", "1h05m"]
    assert units.cost({"seconds": 196.0, "cost_device_hours": 196 / 3600}) == "3m16s (0.0544 device-h)"
    assert units.cost({"cost_device_hours": 0.5}) == "30m00s (0.5000 device-h)"
    assert units.round_number(0) == "1"


def test_headless_lines_use_names_percent_and_one_based_rounds():
    text = EventText()
    text(P.TaskAdded(task_id="abc123", name="moon", role="target"))
    text(P.TaskAdded(task_id="def456", name="circle", role="base"))
    assert text(P.Distance(method="fisher", source="def456", target="abc123", value=0.123456, std=0.0)) == \
        "distance[fisher] circle -> moon = 0.123"
    line = text(P.AlphaStep(run_id="moon-fuse-0", step=0, round=0, alternation=0, alpha=[0.0, 1.0],
                            loss_train=0.5, loss_val=0.6, val_acc=[0.8, 0.9]))
    assert "round 1 step 1" in line and "best val acc 90.0%" in line
    assert "round 1:" in text(P.SearchRound(run_id="moon-fuse-0", round=0, incumbent="abcdef", candidates=["abcdef"],
                                            genotypes=[]))
    done = text(P.SearchDone(run_id="moon-fuse-0", result={"test_error": 1.5, "params_m": 0.2, "seconds": 196.0,
                                                           "cost_device_hours": 196 / 3600}))
    assert "cost 3m16s (0.0544 device-h)" in done
    assert "97.0%" in text(P.ProbeDone(task_id="abc123", name="moon", val_acc=0.97, epochs=3, seconds=12.0,
                                      representative=True))
