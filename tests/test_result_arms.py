"""The comparison's arms end to end: `search.arms` validation, the farthest-tasks control space and its provenance,
per-sample test correctness stored for every run, and `searches compare` (rich, --json, --csv, --markdown, -o) on a
tiny store."""
from __future__ import annotations

import csv
import io
import json
import textwrap

import numpy as np
import pytest
from typer.testing import CliRunner

from engine.choices import ARMS, DEFAULT_ARMS
from engine.config import ConfigError, load_config
from engine.search.searching import build_space
from engine.service.context import JobContext
from store import Store, StoreError
from store.queries import farthest, nearest
from store.records import BudgetRecord, SearchRunRecord, TaskRecord, SampleOutcomeRecord
from tanas_tui.cli import app
from tanas_tui.exitcodes import ExitCode

from result_fixtures import N_TEST, build_compare_store
from tests.synthetic import tiny_project

runner = CliRunner()

BASE = """
[[tasks]]
name = "a"
source = "sketches"
positive = ["circle"]

[target]
name = "t"
source = "sketches"
positive = ["moon"]
"""


def _load(tmp_path, search: str):
    path = tmp_path / "tanas.toml"
    path.write_text(textwrap.dedent(BASE + "\n[search]\n" + search))
    return load_config(path, {})


# -- search.arms ------------------------------------------------------------------------------------------------------
def test_arms_default_to_the_five_operation_form_arms_and_a_subset_is_kept_in_order(tmp_path):
    assert _load(tmp_path, "").search.arms == tuple(a for a in ARMS if not a.endswith("-cells")) == (
        "random", "fuse-standard", "fuse-task-aware", "fuse-farthest", "fixed")
    assert _load(tmp_path, 'arms = ["fuse-farthest", "fuse-task-aware"]\nrepeats = 3\n').search.arms == (
        "fuse-farthest", "fuse-task-aware")


@pytest.mark.parametrize("value, words", [
    ('["random", "fuse-nearest"]', ["unknown arm", "'fuse-nearest'", "fuse-farthest"]),
    ('["random", "random"]', ["listed twice", "random"]),
    ("[]", ["non-empty"]),
    ("[1.5]", ["expected"]),
])
def test_bad_arms_are_refused_naming_the_key(tmp_path, value, words):
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, f"arms = {value}\n")
    assert info.value.key == "search.arms" or "arms" in str(info.value)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_repeats_below_one_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="repeats"):
        _load(tmp_path, "repeats = 0\n")


# -- the control arm's space --------------------------------------------------------------------------------------------
@pytest.fixture
def dictionary_store(tmp_path):
    """Base tasks a, b, c with genotypes of different operations; target t; d(b, t) by hand: b nearest, a farthest."""
    from engine.space.genotype import Cell, Genotype

    def genotype(op: str, channels: int) -> Genotype:
        cell = Cell((((op, 0), ("skip_connect", 1)),))
        return Genotype(normal=cell, reduce=cell, channels=channels, layers=3)

    with Store.open(tmp_path / "s.zarr", mode="w", create=True) as st:
        ops = {"a": ("max_pool_3x3", 8), "b": ("dil_conv_3x3", 16), "c": ("sep_conv_5x5", 16)}
        for tid in ("a", "b", "c", "t"):
            st.add_task(tid, {"name": f"task-{tid}", "role": "target" if tid == "t" else "base"})
            st.add_distance_task("fisher", tid)
            if tid in ops:
                g = genotype(*ops[tid])
                st.update_task(tid, best_genotype=g.to_dict(), genotype_hash=g.hash)
        for src, value in (("a", 0.9), ("b", 0.1), ("c", 0.4)):
            st.set_distance("fisher", src, "t", value)
        yield st


def _ctx(store, k: int) -> JobContext:
    from engine.config import (Config, DictionarySection, ProjectSection, SearchSection, SpaceSection,
                               TransferSection)

    cfg = Config(file=None, project=ProjectSection(), dictionary=DictionarySection(k=k), transfer=TransferSection(),
                 space=SpaceSection(channels=(8, 16), layers=(3,), nodes=(1,)), search=SearchSection(), sources={},
                 tasks=(), target=None)
    return JobContext(store, cfg, "cpu")


def test_farthest_query_ranks_by_largest_distance_and_skips_targets(dictionary_store):
    assert [n.task_id for n in farthest(dictionary_store, "t", 2)] == ["a", "c"]
    assert [n.task_id for n in nearest(dictionary_store, "t", 2)] == ["b", "c"]
    assert [n.task_id for n in farthest(dictionary_store, "t", 10)] == ["a", "c", "b"]


def test_control_space_is_built_from_the_k_farthest_tasks_with_their_provenance(dictionary_store):
    control = build_space(_ctx(dictionary_store, 1), "task-t", "farthest")
    aware = build_space(_ctx(dictionary_store, 1), "task-t", "task-aware")
    assert control.kind == "farthest" and aware.kind == "task-aware"
    assert [(p["task_id"], p["name"], p["distance"]) for p in control.provenance] == [
        ("a", "task-a", pytest.approx(0.9))]
    assert control.provenance[0]["hash"] == dictionary_store.task("a")["genotype_hash"]
    assert [p["task_id"] for p in aware.provenance] == ["b"]
    # the spaces follow their tasks' genotypes: the control samples a's max-pool, the task-aware space b's dil-conv
    assert control.op_weights["max_pool_3x3"] > control.op_weights.get("dil_conv_3x3", 0)
    assert aware.op_weights["dil_conv_3x3"] > aware.op_weights.get("max_pool_3x3", 0)
    assert control.channels == (8,) and aware.channels == (16,)
    assert any("farthest" in note for note in control.notes)
    two = build_space(_ctx(dictionary_store, 2), "task-t", "farthest")
    assert [p["task_id"] for p in two.provenance] == ["a", "c"]


# -- stored test outcomes ------------------------------------------------------------------------------------------------
def test_test_outcome_round_trips_through_the_store_and_its_record(tmp_path):
    with Store.open(tmp_path / "s.zarr", mode="w", create=True) as st:
        st.create_search("r1", SearchRunRecord(kind="random", seed=0).to_attrs(), 1).flush()
        assert st.load_test_outcome("r1") is None
        correct = np.array([True, False, True, True])
        st.save_test_outcome("r1", correct, "task-x")
        np.testing.assert_array_equal(st.load_test_outcome("r1"), correct)
        record = SearchRunRecord.from_attrs(st.search("r1")).outcome_record
        assert record == SampleOutcomeRecord(task_id="task-x", n_test=4, n_correct=3)
        with pytest.raises(StoreError, match="flat boolean"):
            st.save_test_outcome("r1", np.zeros((2, 2), bool), "task-x")
        with pytest.raises(StoreError, match="other than 0/1"):
            st.save_test_outcome("r1", np.array([0, 2]), "task-x")
        with pytest.raises(StoreError, match="save_test_outcome"):
            st.update_search("r1", test_outcome={"n_test": 1})
    with Store.open(tmp_path / "s.zarr", mode="r") as ro:
        np.testing.assert_array_equal(ro.load_test_outcome("r1"), correct)


# -- the whole comparison on a tiny project ------------------------------------------------------------------------------
TINY = tiny_project(tasks=("circle", "square", "star"),
                    search='compare = true\nrepeats = 2\nfixed_networks = ["resnet18"]\n')


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("arms")
    (root / "tanas.toml").write_text(TINY)
    result = runner.invoke(app, ["run", str(root / "tanas.toml")])
    return root, result


def test_run_prints_every_arm_with_budget_interval_and_p_value(project):
    _, result = project
    assert result.exit_code == 0, result.output
    out = result.output
    for expected in ("Random search", "FUSE, standard space", "FUSE, task-aware space",
                     "FUSE, farthest-tasks space (control)", "ResNet-18", "95 % CI", "candidate-epochs",
                     "network-epochs", "Verdict", "config hash"):
        assert expected in out, expected


def test_every_arm_ran_for_every_seed_and_stored_its_test_outcome(project):
    root, _ = project
    with Store.open(root / "store.zarr", mode="r") as st:
        target = next(TaskRecord.from_attrs(t) for t in st.list_tasks() if t["name"] == "moon")
        runs = [SearchRunRecord.from_attrs(a) for a in st.list_searches()]
        finished = [r for r in runs if r.extra.get("purpose") != "base-genotype"]
        arms = sorted((r.arm, r.seed) for r in finished)
        assert arms == sorted((arm, seed) for arm in DEFAULT_ARMS for seed in (0, 1)), arms
        for r in finished:
            correct = st.load_test_outcome(r.id)
            assert correct is not None and correct.dtype == bool and len(correct) == target.n_test, r.id
            assert r.outcome_record.task_id == target.id and r.outcome_record.n_correct == int(correct.sum())
            assert r.result["test_error"] == pytest.approx(100.0 * (1 - correct.mean()))
            assert isinstance(r.budget_record, BudgetRecord) and r.budget_record.epochs > 0


def test_the_control_run_records_the_farthest_task_and_its_distance(project):
    root, _ = project
    with Store.open(root / "store.zarr", mode="r") as st:
        matrix = st.distances("fisher")
        tid = st.find_task("moon")
        j = matrix.index(tid)
        base = {t["id"]: t["name"] for t in st.list_tasks() if t.get("role") == "base"}
        by_distance = sorted(base, key=lambda b: float(matrix.value[matrix.index(b), j]))
        for seed in (0, 1):
            control = SearchRunRecord.from_attrs(st.search(f"moon-farthest-{seed}"))
            aware = SearchRunRecord.from_attrs(st.search(f"moon-task-aware-{seed}"))
            assert control.space["kind"] == "farthest" and control.arm == "fuse-farthest"
            [p] = control.space["provenance"]
            assert p["task_id"] == by_distance[-1] and p["name"] == base[by_distance[-1]]
            assert p["distance"] == pytest.approx(float(matrix.value[matrix.index(p["task_id"]), j]), rel=1e-6)
            assert [q["task_id"] for q in aware.space["provenance"]] == [by_distance[0]]
            assert control.config == aware.config   # same budget


def test_searches_compare_on_the_pipeline_store(project):
    root, _ = project
    out = runner.invoke(app, ["searches", "compare", "--json", "--config", str(root / "tanas.toml")])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert [r["arm"] for r in data["rows"]] == ["Random search", "FUSE, standard space", "FUSE, task-aware space",
                                                 "FUSE, farthest-tasks space (control)", "ResNet-18"]
    assert all(r["repeats"] == 2 and r["n_test"] for r in data["rows"])
    assert data["provenance"]["seeds"] == [0, 1] and data["provenance"]["target"] == "moon"


# -- searches compare on a hand-made store -------------------------------------------------------------------------------
@pytest.fixture
def compare_store(tmp_path):
    return tmp_path, build_compare_store(tmp_path / "c.zarr")


def _compare(root, store, *args):
    return runner.invoke(app, ["searches", "compare", "--store", str(store), *args], env={"TANAS_CONFIG": ""},
                         catch_exceptions=False)


def test_compare_json_tells_the_planted_difference_from_the_identical_arm(compare_store, monkeypatch):
    root, store = compare_store
    monkeypatch.chdir(root)
    out = _compare(root, store, "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    rows = {r["arm"]: r for r in data["rows"]}
    assert data["reference"] == "FUSE, task-aware space"
    assert rows["FUSE, task-aware space"]["verdict"] == "reference"
    control = rows["FUSE, farthest-tasks space (control)"]
    assert control["verdict"] == "distinguishable" and control["p_value"] < 1e-3
    assert control["diff_vs_reference_pp"] > 15 and control["diff_vs_reference_pp_lo"] > 0
    assert rows["Random search"]["verdict"] == "not distinguishable" and rows["Random search"]["p_value"] > 0.05
    assert rows["FUSE, task-aware space"]["n_test"] == N_TEST and rows["ResNet-18"]["budget_unit"] == "network-epochs"
    assert control["budget_epochs"] == 12 and control["final_epochs"] == 5
    assert rows["Random search"]["run_ids"] == ["tgt-random-0", "tgt-random-1", "tgt-random-2"]
    prov = data["provenance"]
    assert prov["seeds"] == [0, 1, 2] and len(prov["config_hash"]) == 16 and prov["packages"]["numpy"]


def test_compare_csv_markdown_and_the_default_rich_table(compare_store, monkeypatch):
    root, store = compare_store
    monkeypatch.chdir(root)
    csv_out = _compare(root, store, "--csv", "-o", str(root / "t.csv"))
    assert csv_out.exit_code == 0 and "wrote the csv table" in csv_out.output, csv_out.output
    text = (root / "t.csv").read_text()
    rows = list(csv.DictReader(io.StringIO("\n".join(l for l in text.splitlines() if not l.startswith("#")))))
    assert [r["arm"] for r in rows][:2] == ["Random search", "FUSE, task-aware space"]
    assert "# config hash:" in text and "# seeds: 0, 1, 2" in text
    md = _compare(root, store, "--markdown")
    assert md.exit_code == 0, md.output
    assert "| FUSE, farthest-tasks space (control) |" in md.output and "distinguishable" in md.output
    assert "12 candidate-epochs + 5 final" in md.output and "- config hash:" in md.output
    rich = _compare(root, store)
    assert rich.exit_code == 0, rich.output
    for expected in ("Result: tgt", "not distinguishable", "95 % CI", "1 min 31 s", "dev-h", "config hash"):
        assert expected in rich.output, expected


def test_compare_errors_exit_non_zero_with_a_message(compare_store, tmp_path, monkeypatch):
    root, store = compare_store
    monkeypatch.chdir(root)
    both = _compare(root, store, "--json", "--csv")
    assert both.exit_code == ExitCode.USAGE and "one output format" in both.output
    unknown = _compare(root, store, "--target", "nope")
    assert unknown.exit_code == ExitCode.NOT_FOUND and "tgt (tid)" in unknown.output
    with Store.open(tmp_path / "empty.zarr", mode="w", create=True):
        pass
    empty = _compare(root, tmp_path / "empty.zarr")
    assert empty.exit_code == ExitCode.NOT_FOUND and "no finished search" in empty.output


def test_more_repeats_reuse_the_finished_runs_and_add_the_new_seeds(project, tmp_path):
    """Raising search.repeats (and narrowing search.arms) on a store with finished runs trains only the new seeds."""
    import shutil

    root, _ = project
    shutil.copytree(root / "store.zarr", tmp_path / "store.zarr")
    text = (root / "tanas.toml").read_text().replace("repeats = 2", 'repeats = 3\narms = ["random"]')
    (tmp_path / "tanas.toml").write_text(text)
    with Store.open(tmp_path / "store.zarr", mode="r") as st:
        before = {s["id"]: s.get("created") for s in st.list_searches()}
    result = runner.invoke(app, ["run", str(tmp_path / "tanas.toml")])
    assert result.exit_code == 0, result.output
    with Store.open(tmp_path / "store.zarr", mode="r") as st:
        after = {s["id"]: s.get("created") for s in st.list_searches()}
    assert set(after) - set(before) == {"moon-random-2"}
    assert all(after[k] == v for k, v in before.items())
    assert "moon-random-0" not in result.output and "moon-random-2" in result.output
    assert "Random search" in result.output


def test_compare_prefers_the_current_definition_of_a_target_name(compare_store, monkeypatch):
    """Runs of an earlier definition of the target (another task id, same name) do not make the name ambiguous."""
    from result_fixtures import _add_run

    root, store = compare_store
    with Store.open(store, mode="w") as st:
        _add_run(st, "tgt-old-random-0", "random", "random", 0, np.ones(50, bool))
        st.update_search("tgt-old-random-0", target="old-id")
    monkeypatch.chdir(root)
    out = _compare(root, store, "--json", "--target", "tgt")
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["provenance"]["target_id"] == "tid"
    ambiguous = _compare(root, store, "--json")
    assert ambiguous.exit_code == ExitCode.NOT_FOUND and "several targets" in ambiguous.output
