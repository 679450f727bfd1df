"""A task's known genotype (`[[tasks]] genotype`, a JSON file or an inline table) is its best genotype, marked
given, and never searched; a broken one is a config error naming the key."""
from __future__ import annotations

import json
import re

import pytest

from engine.config import ConfigError, config_from_plain, load_config
from engine.data.tasks import task_id
from engine.runtime.reporting import RecordingReporter
from engine.search import searching
from engine.service.context import JobContext
from engine.space.genotype import Genotype
from store import Store
from tests.synthetic import tiny_project

CELL = {"edges": [[["sep_conv_3x3", 0], ["skip_connect", 1]], [["max_pool_3x3", 0], ["sep_conv_3x3", 2]]]}
KNOWN = Genotype.from_dict({"normal": CELL, "reduce": CELL, "channels": 4, "layers": 3})
INLINE = Genotype.from_dict({"normal": CELL, "reduce": CELL, "channels": 8, "layers": 3})


def _config(tmp_path, circle: str, square: str):
    text = tiny_project(store="s.zarr", tasks=("circle", "square"))
    text = text.replace('positive = ["circle"]\n', f'positive = ["circle"]\n{circle}\n', 1)
    text = text.replace('positive = ["square"]\n', f'positive = ["square"]\n{square}\n', 1)
    path = tmp_path / "tanas.toml"
    path.write_text(text)
    return path


def test_given_genotypes_are_used_and_never_searched(tmp_path):
    (tmp_path / "known.json").write_text(json.dumps(KNOWN.to_dict()))
    path = _config(tmp_path, 'genotype = "known.json"',
                   f'genotype = {{ channels = 8, layers = 3, normal = {_toml(INLINE.to_dict()["normal"])}, '
                   f'reduce = {_toml(INLINE.to_dict()["reduce"])} }}')
    cfg = load_config(path, {})
    with Store.open(cfg.store_path, "w", create=True) as st:
        ctx = JobContext(st, cfg, "cpu", RecordingReporter(), "j")
        ctx.dictionary.ensure(list(cfg.tasks), "base")
        hashes = searching.assign_base_genotypes(ctx)
        names = {t["id"]: t["name"] for t in st.list_tasks()}
        assert {names[i]: h for i, h in hashes.items()} == {"circle": KNOWN.hash, "square": INLINE.hash}
        assert all(t["genotype_source"] == {"kind": "given"} for t in st.list_tasks())
        assert st.list_searches() == []           # nothing was searched
    # the genotype labels the task: its id is the same as without one; a job's plain config carries it
    plain_def = load_config(_config(tmp_path, "", ""), {}).tasks[0]
    assert task_id(cfg.tasks[0]) == task_id(plain_def)
    assert config_from_plain(cfg.snapshot()).tasks[0].genotype == cfg.tasks[0].genotype


def _toml(cell: dict) -> str:
    edges = ", ".join("[" + ", ".join(f'["{op}", {src}]' for op, src in node) + "]" for node in cell["edges"])
    concat = f", concat = {list(cell['concat'])}" if cell.get("concat") else ""
    return f"{{ edges = [{edges}]{concat} }}"


@pytest.mark.parametrize("line, message", [
    ('genotype = "missing.json"', "cannot read the genotype file"),
    ('genotype = { channels = 8 }', "not a genotype (inline)"),
    ('genotype = "bad.json"', "not a genotype"),
])
def test_a_broken_genotype_names_the_task_and_key(tmp_path, line, message):
    (tmp_path / "bad.json").write_text('{"normal": 1}')
    with pytest.raises(ConfigError, match=re.escape(message)) as err:
        load_config(_config(tmp_path, line, ""), {})
    assert "tasks[0].genotype" in str(err.value)
