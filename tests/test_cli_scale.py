"""The commands that list the dictionary, at a size where they must page or sample (issue 20 item 3): `tasks list`
paged with --json, `distances --check` sampled (and saying so), `nearest` answered from the task vectors."""
from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from store import Store
from store.vectors import sqrt_unit_trace
from tanas_tui.cli import app
from tanas_tui.commands import dictionary as cli_dictionary

runner = CliRunner()
N = 12


@pytest.fixture
def store_path(tmp_path, monkeypatch):
    """N tasks of two sources whose vectors differ by source; the matrix filled from the vectors, as a vector form's
    dictionary writes it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "160")
    rng = np.random.default_rng(0)
    bases = rng.gamma(0.3, 1.0, (2, 2_000))
    path = tmp_path / "s.zarr"
    with Store.open(path, mode="w", create=True) as st:
        ids = [f"task{i:03d}" for i in range(N)]
        for i, tid in enumerate(ids):
            st.add_task(tid, {"name": f"t-{i}", "source": f"src{i % 2}", "role": "base", "status": "ready"})
            st.save_task_vector("fisher", tid, sqrt_unit_trace(bases[i % 2] * np.exp(0.3 * rng.standard_normal(2_000))))
        st.add_distance_tasks("fisher", ids)
        table = st.task_vectors("fisher")
        for tid in ids:
            d = table.distances_to(table.vectors([tid])[0])
            st.set_distances("fisher", ids, [tid], d[:, None], np.zeros((N, 1)))
    return path


def test_tasks_list_pages_with_json(store_path):
    result = runner.invoke(app, ["tasks", "list", "--store", str(store_path), "--offset", "3", "--limit", "4",
                                 "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["id"] for r in rows] == [f"task{i:03d}" for i in range(3, 7)]
    result = runner.invoke(app, ["tasks", "list", "--store", str(store_path), "--limit", "0", "--json"])
    assert [r["id"] for r in json.loads(result.output)][:N] == [f"task{i:03d}" for i in range(N)]
    result = runner.invoke(app, ["tasks", "list", "--store", str(store_path), "--offset", "10", "--limit", "5"])
    assert result.exit_code == 0, result.output
    assert "stored tasks 11–12 of 12" in result.output and "t-11" in result.output and "t-9 " not in result.output
    result = runner.invoke(app, ["tasks", "list", "--store", str(store_path), "--offset", "-1"])
    assert result.exit_code != 0 and "--offset" in result.output


def test_distances_check_samples_a_large_matrix_and_says_so(store_path, monkeypatch):
    monkeypatch.setattr(cli_dictionary, "CHECK_MAX", 8)
    result = runner.invoke(app, ["distances", "--check", "--store", str(store_path), "--json"])
    report = json.loads(result.output)
    assert report["sampled"] == {"fisher": {"tasks": 8, "of": N}}
    assert report["methods"]["fisher"]["tasks"] == 8
    assert any("random sample of 8 of its 12 tasks" in note for note in report["notes"])
    result = runner.invoke(app, ["distances", "--check", "--store", str(store_path)])
    assert "random sample of 8 of its 12 tasks" in result.output
    monkeypatch.setattr(cli_dictionary, "CHECK_MAX", 100)
    report = json.loads(runner.invoke(app, ["distances", "--check", "--store", str(store_path), "--json"]).output)
    assert report["sampled"] == {} and report["methods"]["fisher"]["tasks"] == N


def test_nearest_answers_from_the_vectors(store_path, monkeypatch):
    from store import queries

    monkeypatch.setattr(queries, "EXACT_MAX", 4)      # the reduced scan and re-rank path
    result = runner.invoke(app, ["nearest", "t-0", "-k", "3", "--store", str(store_path)])
    assert result.exit_code == 0, result.output
    with Store.open(store_path) as st:
        m = st.distances("fisher")
    column = m.value[:, 0].copy()
    column[0] = np.inf
    want = [f"t-{i}" for i in np.argsort(column)[:3]]
    cells = [[c.strip() for c in line.split("│")] for line in result.output.splitlines() if line.count("│") >= 4]
    listed = [c[2] for c in cells if c[1].isdigit()]
    assert listed[:3] == want
    assert all(int(name.split("-")[1]) % 2 == 0 for name in want)    # same source first
