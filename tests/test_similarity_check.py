"""`tanas-tui distances --check`, the noise floor job and `nearest`'s ties, through the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from store import Store
from tanas_tui.cli import app
from tanas_tui.exitcodes import ExitCode

runner = CliRunner()


def _run(*args):
    return runner.invoke(app, list(args), catch_exceptions=False)


def _planted(n_per_group: int = 6, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Two groups: same-group distances around 0.3, cross-group around 0.7, with noise."""
    rng = np.random.default_rng(seed)
    groups = ["a"] * n_per_group + ["b"] * n_per_group
    n = len(groups)
    d = np.where(np.equal.outer(groups, groups), 0.3, 0.7) + rng.normal(0, 0.05, (n, n))
    np.fill_diagonal(d, 0.0)
    return groups, d


def _write_store(path, groups, d, *, seed_values=None, floor=None, use_group_field=False):
    ids = [f"{i:012x}" for i in range(len(groups))]
    with Store.open(path, mode="w", create=True) as st:
        for i, (tid, g) in enumerate(zip(ids, groups)):
            attrs = {"name": f"t{i}", "role": "base", "status": "ready"}
            attrs.update({"source": "shared-src", "group": g} if use_group_field else {"source": g})
            st.add_task(tid, attrs)
            st.add_distance_task("fisher", tid)
        st.set_distance_params("fisher", {"seeds": 1 if seed_values is None else len(seed_values)})
        for i, b in enumerate(ids):
            for j, t in enumerate(ids):
                per = None if seed_values is None else [float(m[i, j]) for m in seed_values]
                std = 0.0 if per is None else float(np.std(per, ddof=1))
                st.set_distance("fisher", b, t, float(d[i, j]), std, per)
        if floor is not None:
            st.set_noise_floor("fisher", {"distances": {tid: [floor] for tid in ids}, "kind": "test"})
    return ids


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)   # no ./tanas.toml: built-in defaults
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


def test_planted_group_structure_is_detected(here):
    groups, d = _planted()
    _write_store(here / "s.zarr", groups, d, use_group_field=True)
    r = _run("distances", "--check", "--json", "--store", str(here / "s.zarr"))
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    f = out["methods"]["fisher"]
    assert out["detected"] and f["detected"]
    assert f["hits"] == f["counted"] == 12 and f["groups"] == {"a": 6, "b": 6}
    assert f["contrast"] > 3 and f["p_value"] < 0.01
    assert f["noise_floor"] is None
    r = _run("distances", "--check", "--store", str(here / "s.zarr"))
    assert r.exit_code == 0
    assert "12/12" in r.output and "noise floor: not measured" in r.output and "structure detected" in r.output


def test_shuffled_groups_are_not_detected(here):
    groups, d = _planted()
    shuffled = ["a", "b", "b", "a", "a", "b"] * 2    # the same matrix, groups cut across it
    _write_store(here / "s.zarr", shuffled, d)
    r = _run("distances", "--check", "--json", "--store", str(here / "s.zarr"))
    assert r.exit_code == ExitCode.NO_STRUCTURE == 7, r.output
    f = json.loads(r.output)["methods"]["fisher"]
    assert not f["detected"] and f["p_value"] >= 0.05 and "p " in f["reason"]


def test_a_noise_floor_above_the_between_group_distances_fails_the_check(here):
    groups, d = _planted()
    _write_store(here / "s.zarr", groups, d, floor=0.9)
    r = _run("distances", "--check", "--json", "--store", str(here / "s.zarr"))
    assert r.exit_code == ExitCode.NO_STRUCTURE, r.output
    f = json.loads(r.output)["methods"]["fisher"]
    assert f["p_value"] < 0.01 and f["noise_floor"]["max"] == pytest.approx(0.9) and not f["noise_floor"]["below"]
    _write_store(here / "t.zarr", groups, d, floor=0.05)
    r = _run("distances", "--check", "--json", "--store", str(here / "t.zarr"))
    assert r.exit_code == 0 and json.loads(r.output)["methods"]["fisher"]["noise_floor"]["below"]


def test_seeds_give_stability_and_ties_in_nearest(here):
    groups, d = _planted()
    rng = np.random.default_rng(3)
    seeds = [d + rng.normal(0, 0.01, d.shape) for _ in range(3)]
    for m in seeds:
        np.fill_diagonal(m, 0.0)
    ids = _write_store(here / "s.zarr", groups, np.mean(seeds, axis=0), seed_values=seeds)
    r = _run("distances", "--check", "--json", "--store", str(here / "s.zarr"))
    assert r.exit_code == 0, r.output
    f = json.loads(r.output)["methods"]["fisher"]
    assert f["seeds"] == 3 and 0 < f["std_mean"] < 0.05 and f["seed_r"] > 0.9
    assert 0.0 <= f["nearest_unchanged"] <= 1.0
    r = _run("nearest", "t0", "-k", "4", "--store", str(here / "s.zarr"))
    assert r.exit_code == 0, r.output
    assert "std from std over 3 seeds" in r.output
    # the four nearest of t0 are its own group, ~0.3 ± 0.05 apart with per-cell std 0.01: some are tied, not all
    assert 0 < r.output.count("tied within noise") < 4
    assert len(ids) == 12


def test_missing_store_or_method_exits_6(here):
    r = _run("distances", "--check", "--store", str(here / "none.zarr"))
    assert r.exit_code in (ExitCode.STORE, ExitCode.NOT_FOUND)
    Store.open(here / "e.zarr", mode="w", create=True).close()
    r = _run("distances", "--check", "--store", str(here / "e.zarr"))
    assert r.exit_code == ExitCode.NOT_FOUND, r.output
    groups, d = _planted()
    _write_store(here / "s.zarr", groups, d)
    r = _run("distances", "--check", "--method", "transfer", "--store", str(here / "s.zarr"))
    assert r.exit_code == ExitCode.NOT_FOUND and "transfer" in r.output


CONFIG = """
[project]
store = "s.zarr"
device = "cpu"

[dictionary]
max_epochs = 1
min_epochs = 1
batch_size = 64
fisher_samples = 32

[[tasks]]
name = "m0"
source = "mnist-5k"
positive = ["0"]
limit = 80
group = "digits"

[[tasks]]
name = "m1"
source = "mnist-5k"
positive = ["1"]
limit = 80
group = "digits"

[[tasks]]
name = "s0"
source = "sketches"
positive = ["circle"]
limit = 80
group = "shapes"
"""


@pytest.mark.timeout(900)     # trains 3 + 3 tiny probes: slow only on a loaded machine
def test_noise_floor_is_a_job_stored_and_read_back(here):
    (here / "tanas.toml").write_text(CONFIG)
    for name in ("m0", "m1", "s0"):
        assert _run("tasks", "add", name).exit_code == 0
    r = _run("tasks", "list")
    assert "digits" in r.output and "shapes" in r.output
    r = _run("distances", "--check", "--json")
    assert r.exit_code in (0, ExitCode.NO_STRUCTURE), r.output
    assert json.loads(r.output)["methods"]["fisher"]["noise_floor"] is None
    r = _run("distances", "--check", "--noise-floor")
    assert r.exit_code in (0, ExitCode.NO_STRUCTURE), r.output
    assert "measuring the fisher noise floor" in r.output and "noise floor (" in r.output
    with Store.open(here / "s.zarr", mode="r") as st:
        floor = st.distances("fisher").noise_floor
    assert len(floor["distances"]) == 3 and all(v[0] >= 0 for v in floor["distances"].values())
    r = _run("distances", "--check", "--noise-floor", "--json")       # stored: not measured again
    out = json.loads(r.output)
    assert out["notes"] == [] and out["methods"]["fisher"]["noise_floor"]["tasks"] == 3
    assert out["methods"]["fisher"]["groups"] == {"digits": 2, "shapes": 1}
    r = _run("nearest", "m0", "-k", "3")
    assert r.exit_code == 0 and "std from the noise floor" in r.output


def test_an_empty_group_is_refused(here):
    (here / "tanas.toml").write_text(CONFIG.replace('group = "shapes"', 'group = ""', 1))
    r = _run("tasks", "list")
    assert r.exit_code == ExitCode.USAGE and "group" in r.output
