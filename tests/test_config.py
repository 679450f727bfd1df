"""The config loader: the default files load, and every kind of mistake is named with file, key and line."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from engine.config import ConfigError, load_config, diff_snapshots

ROOT = Path(__file__).resolve().parents[1]

BASE = """
[project]
seed = 3

[[tasks]]
name = "a"
source = "mnist-5k"
positive = ["0"]

[[tasks]]
name = "b"
source = "sketches"
positive = ["circle"]

[target]
name = "t"
source = "uci-digits"
positive = [3]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tanas.toml"
    path.write_text(textwrap.dedent(text))
    return path


def error_of(tmp_path, text, env=None, overrides=None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env or {}, overrides)
    return info.value


def test_default_config_loads_with_fifteen_base_tasks_of_three_sources_and_a_target():
    cfg = load_config(ROOT / "tanas.toml", {})
    assert len(cfg.tasks) == 15
    assert {t.source for t in cfg.tasks} == {"mnist-5k", "sketches", "uci-digits"}
    assert cfg.dictionary.fisher_body == "shared" and cfg.dictionary.fisher_form == "domain"
    assert cfg.target is not None and cfg.target.source == "uci-digits"
    assert cfg.store_path == ROOT / "tanas-store.zarr"


def test_paper_preset_loads_without_touching_the_network():
    cfg = load_config(ROOT / "presets" / "paper.toml", {}, check_classes=False)
    assert cfg.target.name == "quickdraw-moon" and cfg.target.balance is False
    assert cfg.dictionary.seeds == 10
    assert [t.source for t in cfg.tasks].count("fashion-mnist") == 5


def test_values_and_defaults(tmp_path):
    cfg = load_config(write(tmp_path, BASE), {})
    assert cfg.project.seed == 3
    assert cfg.tasks[0].seed == 3, "tasks inherit the project seed"
    assert cfg.target.positive == ("3",), "integers in class lists become class names"
    assert cfg.search.candidates == 4 and cfg.dictionary.epsilon == 0.05


def test_precedence_flag_over_env_over_file(tmp_path):
    text = BASE + "\n[search]\nrounds = 2\n"
    assert load_config(write(tmp_path, text), {}).search.rounds == 2
    assert load_config(write(tmp_path, text), {"TANAS_SEARCH_ROUNDS": "7"}).search.rounds == 7
    cfg = load_config(write(tmp_path, text), {"TANAS_SEARCH_ROUNDS": "7"}, {"search.rounds": 9})
    assert cfg.search.rounds == 9
    assert load_config(write(tmp_path, text), {"TANAS_PROJECT_DEVICE": "cpu"}).project.device == "cpu"


def test_unknown_key_names_file_key_and_line(tmp_path):
    err = error_of(tmp_path, BASE + "\n[search]\nrounds = 2\nround = 3\n")
    assert err.key == "search.round"
    assert err.line == BASE.count("\n") + 4
    assert "tanas.toml" in str(err) and "unknown key" in str(err)


def test_unknown_section(tmp_path):
    err = error_of(tmp_path, BASE + "\n[serach]\nrounds = 2\n")
    assert err.key == "serach" and "unknown section" in err.message


def test_wrong_type(tmp_path):
    err = error_of(tmp_path, BASE + '\n[dictionary]\nepsilon = "small"\n')
    assert err.key == "dictionary.epsilon" and "expected a number" in err.message
    err = error_of(tmp_path, BASE + "\n[search]\nrounds = 2.5\n")
    assert err.key == "search.rounds" and "integer" in err.message


def test_bad_choice_and_range(tmp_path):
    err = error_of(tmp_path, BASE + '\n[dictionary]\nmethod = "cosine"\n')
    assert err.key == "dictionary.method" and "fisher" in err.message
    err = error_of(tmp_path, BASE + "\n[dictionary]\nepsilon = 1.5\n")
    assert err.key == "dictionary.epsilon"
    err = error_of(tmp_path, BASE + "\n[space]\nchannels = [7]\n")
    assert err.key == "space.channels"
    err = error_of(tmp_path, BASE + '\n[dictionary]\nfisher_body = "frozen"\n')
    assert err.key == "dictionary.fisher_body" and "shared" in err.message
    err = error_of(tmp_path, BASE + '\n[dictionary]\nfisher_form = "cosine"\n')
    assert err.key == "dictionary.fisher_form" and "embedding" in err.message
    err = error_of(tmp_path, BASE + '\n[dictionary]\nfisher_form = "domain"\nfisher_body = "per-task"\n')
    assert err.key == "dictionary.fisher_form" and 'fisher_body = "shared"' in err.message
    err = error_of(tmp_path, BASE + '\n[dictionary]\nfisher_form = "domain"\nfisher_body = "shared"\n'
                   'include_head = true\n')
    assert err.key == "dictionary.include_head"
    err = error_of(tmp_path, BASE + "\n[dictionary]\nshared_epochs = 0\n")
    assert err.key == "dictionary.shared_epochs"


def test_missing_required_task_values(tmp_path):
    err = error_of(tmp_path, '[[tasks]]\nname = "a"\npositive = ["0"]\n')
    assert "source" in err.message and err.key == "tasks[0]" and err.line == 1
    err = error_of(tmp_path, '[[tasks]]\nname = "a"\nsource = "mnist-5k"\n')
    assert "exactly one of" in err.message


def test_empty_and_duplicate_task_names(tmp_path):
    err = error_of(tmp_path, '[[tasks]]\nname = " "\nsource = "mnist-5k"\npositive = ["0"]\n')
    assert err.key == "tasks[0].name" and "empty" in err.message
    err = error_of(tmp_path, BASE + '\n[[tasks]]\nname = "a"\nsource = "mnist-5k"\npositive = ["1"]\n')
    assert err.key == "tasks[2].name" and "duplicate" in err.message and "tasks[0]" in err.message
    assert err.line == BASE.count("\n") + 3


def test_unknown_data_source(tmp_path):
    err = error_of(tmp_path, '[[tasks]]\nname = "a"\nsource = "cifar"\npositive = ["0"]\n')
    assert err.key == "tasks[0].source" and "cifar" in err.message and err.line == 3


def test_class_the_source_does_not_have(tmp_path):
    err = error_of(tmp_path, '[[tasks]]\nname = "a"\nsource = "sketches"\npositive = ["dragon"]\n')
    assert err.key == "tasks[0].positive" and "dragon" in err.message and "circle" in err.message


def test_source_sections_are_validated(tmp_path):
    err = error_of(tmp_path, BASE + "\n[sources.sketches]\nper_klass = 3\n")
    assert err.key == "sources.sketches.per_klass"
    err = error_of(tmp_path, BASE + '\n[sources.mine]\nkind = "tfrecord"\n')
    assert "tfrecord" in err.message
    err = error_of(tmp_path, BASE + '\n[sources.mine]\nkind = "npz"\n')
    assert "path" in err.message and err.key == "sources.mine"


def test_bad_toml_reports_line(tmp_path):
    err = error_of(tmp_path, "[project]\nseed = = 3\n")
    assert err.line == 2 and "not valid TOML" in err.message


def test_missing_file_and_bad_env(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml", {})
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, BASE), {"TANAS_SEARCH_ROUNDZ": "3"})
    assert info.value.key == "TANAS_SEARCH_ROUNDZ"
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, BASE), {"TANAS_SEARCH_ROUNDS": "many"})
    # named as the variable that set it, not as a line of the file that did not
    assert (info.value.file, info.value.key, info.value.line) == ("environment", "TANAS_SEARCH_ROUNDS", None)


def test_snapshot_diff_names_changed_keys(tmp_path):
    a = load_config(write(tmp_path, BASE), {}).snapshot()
    b = load_config(write(tmp_path, BASE), {}, {"search.rounds": 1}).snapshot()
    assert diff_snapshots(a, b) == ["search.rounds"]


def test_source_option_values_are_checked(tmp_path):
    err = error_of(tmp_path, BASE + '\n[sources.mnist]\nsplit = "validation"\n')
    assert err.key == "sources.mnist.split" and "validation" in err.message


def test_executor_section_defaults_precedence_and_checks(tmp_path):
    cfg = load_config(write(tmp_path, BASE), {})
    assert (cfg.executor.kind, cfg.executor.address, cfg.executor.gpus_per_job) == ("local", "", 0.0)
    text = BASE + '\n[executor]\nkind = "ray"\naddress = "auto"\ncpus_per_job = 0.5\nmax_retries = 1\n'
    cfg = load_config(write(tmp_path, text), {})
    assert (cfg.executor.kind, cfg.executor.address, cfg.executor.cpus_per_job, cfg.executor.max_retries) == \
        ("ray", "auto", 0.5, 1)
    env = {"TANAS_EXECUTOR_ADDRESS": "10.0.0.1:6379", "TANAS_EXECUTOR_GPUS_PER_JOB": "0.25"}
    cfg = load_config(write(tmp_path, text), env)
    assert cfg.executor.address == "10.0.0.1:6379" and cfg.executor.gpus_per_job == 0.25
    cfg = load_config(write(tmp_path, text), env, {"executor.address": "ray://head:10001", "executor.kind": "local"})
    assert cfg.executor.address == "ray://head:10001" and cfg.executor.kind == "local"
    assert error_of(tmp_path, BASE + '\n[executor]\nkind = "dask"\n').key == "executor.kind"
    assert error_of(tmp_path, BASE + "\n[executor]\ncpus_per_job = 0\n").key == "executor.cpus_per_job"
    assert error_of(tmp_path, BASE + "\n[executor]\nmax_retries = -1\n").key == "executor.max_retries"
    assert error_of(tmp_path, BASE, {"TANAS_EXECUTOR_GPUS": "1"}).key == "TANAS_EXECUTOR_GPUS"
