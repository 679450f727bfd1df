"""Config values that used to pass the loader and then crash, hang or compute garbage: each is refused by `run` with
exit 2 naming the key (and the file), without a traceback, before a store exists or anything trains."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from engine.config import ConfigError, load_config
from tanas_tui.cli import app
from tests.synthetic import tiny_project

runner = CliRunner()
TINY = tiny_project()


def _set(text: str, table: str, line: str) -> str:
    """`line` added at the top of `[table]` (created at the end when missing)."""
    header = f"[{table}]\n"
    return text.replace(header, header + line + "\n", 1) if header in text else text + f"\n{header}{line}\n"


def _target(text: str, line: str) -> str:
    return text.replace('[target]\nname = "moon"\n', f'[target]\nname = "moon"\n{line}\n')


CASES = {
    # threads: 100,000 made the process die with SIGSEGV after "can't start new thread"
    "threads": (lambda t: t.replace("threads = 1\n", "threads = 100000\n"), "project.threads", "CPUs"),
    # alpha_lr = inf finished with exit 0, a NaN α and a result; lr = inf failed after 33 s
    "alpha_lr inf": (lambda t: _set(t, "search", "alpha_lr = inf"), "search.alpha_lr", "finite"),
    "lr inf": (lambda t: _set(t, "dictionary", "lr = inf"), "dictionary.lr", "finite"),
    "w_lr nan": (lambda t: _set(t, "search", "w_lr = nan"), "search.w_lr", "finite"),
    "epsilon nan": (lambda t: _set(t, "dictionary", "epsilon = nan"), "dictionary.epsilon", "finite"),
    "smoothing inf": (lambda t: _set(t, "space", "smoothing = inf"), "space.smoothing", "finite"),
    "idle_exit inf": (lambda t: _set(t, "engine", "idle_exit = inf"), "engine.idle_exit", "finite"),
    "checkpoint_minutes -1": (lambda t: _set(t, "search", "checkpoint_minutes = -1.0"), "search.checkpoint_minutes",
                              "must be in"),
    "gpus_per_job nan": (lambda t: _set(t, "executor", "gpus_per_job = nan"), "executor.gpus_per_job", "finite"),
    "cpus_per_job inf": (lambda t: _set(t, "executor", "cpus_per_job = inf"), "executor.cpus_per_job", "finite"),
    # val_fraction + test_fraction > 1 ran to the end with exit 0
    "fractions over 1": (lambda t: _target(t, "val_fraction = 0.7\ntest_fraction = 0.6"), "target.val_fraction",
                         "below 1"),
    # seeds beyond 64 bits failed after 20-80 s with "Overflow when unpacking long long"
    "project seed 2**64": (lambda t: t.replace("seed = 0\n\n[dictionary]", f"seed = {2 ** 64}\n\n[dictionary]"),
                           "project.seed", "4,294,967,295"),
    "task seed 2**70": (lambda t: _target(t, f"seed = {2 ** 70}"), "target.seed", "4,294,967,295"),
    "repeats past the seed range": (lambda t: t.replace("seed = 0\n\n[dictionary]",
                                                        f"seed = {2 ** 32 - 2}\n\n[dictionary]")
                                    .replace("final_epochs = 1\n", "final_epochs = 1\nrepeats = 5\n"),
                                    "search.repeats", "2**32"),
    "huge count": (lambda t: t.replace("\nrounds = 1\n", f"\nrounds = {10 ** 40}\n"), "search.rounds", "digits"),
    # a store path with a NUL byte: `tasks list` printed it, `run` failed with "embedded null byte" (exit 5)
    "store NUL": (lambda t: t.replace('store = "store.zarr"', 'store = "a\\u0000b"'), "project.store", "NUL"),
    "fixed network unknown": (lambda t: _set(t, "search", 'fixed_networks = ["vgg"]'), "search.fixed_networks",
                              "vgg"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_run_refuses_the_value_before_any_work(tmp_path, case):
    change, key, words = CASES[case]
    config = tmp_path / "tanas.toml"
    config.write_text(change(TINY))
    result = runner.invoke(app, ["run", str(config)])
    assert result.exit_code == 2, (case, result.output)
    assert key in result.output and str(config) in result.output and words in result.output, (case, result.output)
    assert "Traceback" not in result.output
    assert not (tmp_path / "store.zarr").exists() and not list(tmp_path.glob("a*b")), "work started"


def test_a_nul_store_path_is_refused_by_readers_too(tmp_path):
    config = tmp_path / "tanas.toml"
    config.write_text(TINY.replace('store = "store.zarr"', 'store = "a\\u0000b"'))
    for args in (["tasks", "list"], ["searches", "list"], ["distances"], ["engine", "status"]):
        result = runner.invoke(app, args + ["--config", str(config)])
        assert result.exit_code == 2 and "project.store" in result.output and "NUL" in result.output, (args, result.output)


def test_a_pipeline_with_nothing_to_build_names_what_is_missing(tmp_path):
    config = tmp_path / "tanas.toml"
    config.write_text('[project]\nstore = "store.zarr"\n')
    result = runner.invoke(app, ["run", str(config)])
    assert result.exit_code == 2 and "no [[tasks]] and no [target]" in result.output, result.output
    assert not (tmp_path / "store.zarr").exists()
    config.write_text(TINY[:TINY.index("[[tasks]]")] + '[target]\nname = "moon"\nsource = "sketches"\n'
                      'positive = ["moon"]\n')
    result = runner.invoke(app, ["run", str(config)])
    assert result.exit_code == 2 and "no [[tasks]]" in result.output and "task-aware" in result.output
    assert not (tmp_path / "store.zarr").exists()


def test_environment_and_flag_values_meet_the_same_rules(tmp_path):
    config = tmp_path / "tanas.toml"
    config.write_text(TINY)
    result = runner.invoke(app, ["run", str(config)], env={"TANAS_SEARCH_ALPHA_LR": "inf"})
    assert result.exit_code == 2 and "TANAS_SEARCH_ALPHA_LR" in result.output and "finite" in result.output
    result = runner.invoke(app, ["run", str(config), "--device", "gpu9"])
    assert result.exit_code == 2 and "project.device" in result.output and "gpu9" in result.output
    assert not (tmp_path / "store.zarr").exists()


def test_dry_run_checks_and_runs_nothing(tmp_path):
    config = tmp_path / "tanas.toml"
    config.write_text(TINY)
    result = runner.invoke(app, ["run", str(config), "--dry-run"], env={"TANAS_SEARCH_ROUNDS": "3"})
    assert result.exit_code == 0 and "ok" in result.output and "3 round(s)" in result.output, result.output
    assert not (tmp_path / "store.zarr").exists()


def test_every_setting_has_a_rule_beside_its_field():
    """The one place: a field without a rule is only a bool (true / false are always valid)."""
    import dataclasses

    from engine.config import SECTIONS
    from engine.config.rules import rule_of

    unruled = [f"{name}.{f.name}" for name, cls in SECTIONS.items() for f in dataclasses.fields(cls)
               if rule_of(f) is None and f.type != "bool"]
    assert unruled == []


def test_fixed_network_names_match_the_networks_the_search_builds():
    from engine.choices import FIXED_NETWORK_NAMES
    from engine.search.baselines import FIXED_NETWORKS

    assert set(FIXED_NETWORK_NAMES) == set(FIXED_NETWORKS)


def test_a_job_config_round_trips_under_the_same_rules(tmp_path):
    from engine.config import config_from_plain

    config = tmp_path / "tanas.toml"
    config.write_text(TINY)
    cfg = load_config(config, {"TANAS_SEARCH_ROUNDS": "3"})
    assert config_from_plain(cfg.snapshot()) == cfg
    moved = config_from_plain(cfg.snapshot(), store="/elsewhere/s.zarr")
    assert str(moved.store_path) == "/elsewhere/s.zarr" and moved.data_dir == cfg.data_dir
    broken = cfg.snapshot()
    broken["search"]["alpha_lr"] = float("inf")
    with pytest.raises(ConfigError) as err:
        config_from_plain(broken)
    assert err.value.key == "search.alpha_lr"
    broken = cfg.snapshot()
    broken["target"]["seed"] = 2 ** 70
    with pytest.raises(ConfigError, match="target.seed"):
        config_from_plain(broken)
