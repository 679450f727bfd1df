"""The premise check on planted dictionaries: when the nearest tasks hold the good genotypes it must say the
premise is supported, and when the farthest do it must not (exit 7 in the CLI). Genotypes are planted through the
store, as a dictionary of known architectures would hold them."""
from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from engine.config import load_config
from engine.results.premise import permutation_p, premise_stats
from engine.runtime.reporting import RecordingReporter
from engine.search.premise import select_tasks
from engine.service.context import JobContext
from engine.service.jobs import execute
from engine.space.genotype import Genotype
from store import Store
from tanas_tui.cli import app
from tests.synthetic import tiny_project

BASES = ("circle", "square", "triangle", "star", "cross", "heart", "spiral", "zigzag")


def _genotype(op: str) -> Genotype:
    cell = {"edges": [[[op, 0], [op, 1]], [[op, 0], [op, 2]]]}
    return Genotype.from_dict({"normal": cell, "reduce": cell, "channels": 8, "layers": 3})


GOOD, BAD = _genotype("sep_conv_3x3"), _genotype("none")   # all-`none` cells: the network sees zeros


def _planted(tmp_path, good_near: bool):
    path = tmp_path / "tanas.toml"
    path.write_text(tiny_project(store="s.zarr", tasks=BASES, k=2).replace("per_class = 24", "per_class = 40"))
    cfg = load_config(path, {})
    with Store.open(cfg.store_path, "w", create=True) as st:
        ctx = JobContext(st, cfg, "cpu", RecordingReporter(), "setup")
        ctx.dictionary.ensure(list(cfg.tasks), "base")
        ctx.dictionary.ensure([cfg.target], "target")
        ranked = ctx.dictionary.nearest(st.find_task("moon"), 20, cfg.dictionary.method)
        ranked = [n for n in ranked if n.name != "moon"]
        for i, n in enumerate(ranked):
            near = i < len(ranked) // 2
            g = GOOD if near == good_near else BAD
            st.update_task(n.task_id, best_genotype=g.to_dict(), genotype_hash=g.hash,
                           genotype_source={"kind": "given"})
    return path, cfg


def _check(cfg) -> dict:
    with Store.open(cfg.store_path, "w") as st:
        rep = RecordingReporter()
        return execute("check_premise", {"target": "moon", "tasks": 8, "seeds": 2, "epochs": 4},
                       JobContext(st, cfg, "cpu", rep, "premise"))


@pytest.mark.parametrize("good_near", [True, False], ids=["near-tasks-better", "far-tasks-better"])
def test_the_check_detects_a_planted_premise_and_only_then(tmp_path, good_near):
    path, cfg = _planted(tmp_path, good_near)
    record = _check(cfg)
    rows, stats = record["rows"], record["stats"]
    assert len(rows) == 8 and {r["group"] for r in rows} == {"near", "middle", "far"}
    assert all(len(r["val_errors"]) == 2 for r in rows)
    assert [r["distance"] for r in rows] == sorted(r["distance"] for r in rows)
    assert stats["supported"] is good_near
    assert (stats["kendall_tau"] > 0) is good_near
    assert (stats["near_minus_far"]["mean"] < 0) is good_near
    with Store.open(cfg.store_path, "r") as st:   # stored with the target, with its settings
        stored = st.task(st.find_task("moon"))["premise"]
    assert stored["settings"]["seeds"] == 2 and stored["stats"] == stats

    # the CLI finds the stored record for the same settings (no training) and exits 7 when not supported
    result = CliRunner().invoke(app, ["premise", "moon", "--config", str(path), "--seeds", "2", "--epochs", "4",
                                      "--json"])
    assert result.exit_code == (0 if good_near else 7), result.output
    assert json.loads(result.stdout)["stats"] == stats
    shown = CliRunner().invoke(app, ["premise", "moon", "--config", str(path), "--seeds", "2", "--epochs", "4"])
    assert ("not supported" in shown.output) is not good_near and "Kendall τ" in shown.output


def test_bad_arguments_are_refused_before_any_work(tmp_path):
    path = tmp_path / "tanas.toml"
    path.write_text(tiny_project(store="s.zarr", tasks=BASES[:2]))
    runner = CliRunner()
    r = runner.invoke(app, ["premise", "moon", "--config", str(path), "--seeds", "1"])
    assert r.exit_code == 2 and "--seeds must be at least 2" in r.output
    r = runner.invoke(app, ["premise", "nope", "--config", str(path)])
    assert r.exit_code == 6 and "no task named 'nope'" in r.output
    r = runner.invoke(app, ["premise", "moon", "--config", str(path)])   # two base tasks: too few
    assert r.exit_code == 2 and "at least 4 base tasks" in r.output


def test_selection_takes_the_nearest_the_farthest_and_spreads_the_rest():
    ranked = list(range(20))
    chosen = select_tasks(ranked, 8, 2)
    assert [n for n, _ in chosen][:2] == [0, 1] and [n for n, _ in chosen][-2:] == [18, 19]
    assert len(chosen) == 8 and [g for _, g in chosen].count("middle") == 4
    assert len(select_tasks(list(range(5)), 8, 2)) == 5


def test_statistics_on_known_orderings():
    d = np.arange(8.0)
    p, kind = permutation_p(d, d)          # a perfect positive order: 1 of 8! orderings
    assert kind == "exact" and p == pytest.approx(1 / 40320)
    p, _ = permutation_p(d, -d)
    assert p == 1.0
    p, kind = permutation_p(np.arange(10.0), np.arange(10.0))
    assert kind == "sampled" and p < 0.001
    errors = np.stack([d + 1.0, d + 1.5, d + 0.5], axis=1)   # three seeds
    s = premise_stats(d, errors, near=[0, 1], far=[6, 7])
    assert s["kendall_tau"] == pytest.approx(1.0) and s["spearman"] == pytest.approx(1.0) and s["supported"]
    assert s["near_minus_far"]["mean"] == pytest.approx(-6.0) and s["near_minus_far"]["low"] == pytest.approx(-6.0)
    tied = premise_stats(d, np.ones((8, 3)), near=[0, 1], far=[6, 7])
    assert tied["kendall_tau"] is None and not tied["supported"]


def test_genotype_check_ranks_a_planted_genotype_against_random_ones(tmp_path):
    """A working genotype beats most random ones on its own task; one whose cells see only zeros beats none."""
    path = tmp_path / "tanas.toml"
    path.write_text(tiny_project(store="s.zarr", tasks=("circle", "square"), k=1)
                    .replace("per_class = 24", "per_class = 150"))
    cfg = load_config(path, {})
    with Store.open(cfg.store_path, "w", create=True) as st:
        ctx = JobContext(st, cfg, "cpu", RecordingReporter(), "setup")
        ctx.dictionary.ensure(list(cfg.tasks), "base")
        for name, g in (("circle", GOOD), ("square", BAD)):
            st.update_task(st.find_task(name), best_genotype=g.to_dict(), genotype_hash=g.hash,
                           genotype_source={"kind": "given"})
    result = CliRunner().invoke(app, ["genotypes", "check", "--config", str(path), "--random", "4", "--epochs", "4",
                                      "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)["rows"]}
    bad, good = rows["square"], rows["circle"]
    assert bad["val_error"] == 50.0           # its cells see zeros: one constant answer on a balanced val split
    assert good["percentile"] >= 75 and bad["percentile"] == 0, (good, bad)   # measured: 100 and 0
    assert len(rows["circle"]["random_val_errors"]) == 4
    with Store.open(cfg.store_path, "r") as st:   # stored with each task
        assert st.task(st.find_task("circle"))["genotype_quality"]["percentile"] == rows["circle"]["percentile"]
    r = CliRunner().invoke(app, ["genotypes", "check", "--config", str(path), "--random", "0"])
    assert r.exit_code == 2 and "--random must be at least 1" in r.output
