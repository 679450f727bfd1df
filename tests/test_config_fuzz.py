"""A config fuzzer: a few hundred random invalid configs (wrong types, out-of-range values, NaN / inf, huge integers,
unicode, Rich markup, NUL bytes, missing or malformed tables, bad TANAS_* values), drawn from a fixed seed, each
through the CLI's own config path (`tanas-tui run --dry-run`): every one exits 2 with one error line, no traceback,
and nothing is created."""
from __future__ import annotations

import dataclasses
import json
import math
import random
import sys

import pytest
from typer.testing import CliRunner

from engine.config import SECTIONS
from engine.data.tasks import TaskDef
from tanas_tui.cli import app
from tests.synthetic import tiny_project

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SEED = 20_240_607
CASES = 300
runner = CliRunner()
BASE = tomllib.loads(tiny_project())

HUGE = [2 ** 64, 10 ** 30, -(2 ** 63), 10 ** 400]
MARKUP = ["[red]x[/red]", "t[/red]3", "[bold", "[link=file:///etc/passwd]x[/link]"]
UNICODE = ["ñoño", "数据", "🙂", "e\u0301", "\u202eevil"]
NUL = ["a\x00b", "\x00"]
WRONG_TYPES = {"int": ["3", 1.5, True, [1], {"a": 1}], "float": ["0.1", True, [0.1], {"a": 1}],
               "str": [1, 2.5, True, ["x"], {"a": 1}], "bool": ["true", 1, [True], {"a": 1}],
               "tuple": [{"a": 1}, 2.5, True]}
# Values no rule of a field of that kind accepts: every int field's lower bound is >= 0 and upper bound < 1e12,
# every float field's range lies within [0, 1e6] and every string field is a choice, a path or a bounded text.
BAD = {
    "int": [-1, 10 ** 12, *HUGE],
    "float": [math.nan, math.inf, -math.inf, -1.0, 1e300, 10 ** 400],
    "choice": ["", *MARKUP, *UNICODE, *NUL, "x" * 10_000],
    "path": ["", "   ", *NUL, "x" * 5000, "a/" + "y" * 300],
    "text": [*NUL, "a\nb", "x" * 2000],
    "tuple_int": [[], [7 ** 9], ["a"], [[1]], [2 ** 70], [1, 1, 1]],
    "tuple_str": [[], ["vgg"], MARKUP[:1], UNICODE[:1], [""], ["x", "x"]],
}
TEXT_FIELDS = {("project", "store"): "path", ("project", "data_dir"): "path", ("executor", "address"): "text"}
TASK_BAD = {
    "name": ["", "  ", *NUL, "x" * 200, "a\tb"],
    "source": ["cifar", "", *MARKUP, *UNICODE, *NUL],
    "positive": [[], ["dragon"], [["x"]], ["moon", "moon"], MARKUP[:1]],
    "val_fraction": [math.nan, math.inf, 1.5, 0.0, -0.1, 0.99],
    "test_fraction": [math.nan, -math.inf, 1.0, 0.0, 0.95],
    "seed": [2 ** 32, -1, 2 ** 70, 10 ** 400],
    "limit": [5, 10 ** 12, -1, *HUGE],
    "group": ["", "   "],
}
ENV_BAD = {"TANAS_SEARCH_ROUNDS": ["nan", "0", "1e99", "\"3\"", "[1]", str(2 ** 70)],
           "TANAS_PROJECT_SEED": ["-1", str(2 ** 64)], "TANAS_SEARCH_ALPHA_LR": ["inf", "nan", "-1"],
           "TANAS_PROJECT_THREADS": ["100000"], "TANAS_PROJECT_DEVICE": ["[red]gpu", "cuda:x"],
           "TANAS_SEARCH_ROUNDZ": ["3"], "TANAS_PROJECT_STORE": ["''"]}


def _kind(section: str, f: dataclasses.Field) -> str:
    if (section, f.name) in TEXT_FIELDS:
        return TEXT_FIELDS[(section, f.name)]
    return {"int": "int", "float": "float", "bool": "bool", "str": "choice", "tuple[int, ...]": "tuple_int",
            "tuple[str, ...]": "tuple_str"}[str(f.type)]


def _wrong_type(kind: str) -> list:
    return WRONG_TYPES[{"choice": "str", "path": "str", "text": "str", "tuple_int": "tuple",
                        "tuple_str": "tuple"}.get(kind, kind)]


# ------------------------------------------------------------------------------------------------- TOML writing


def _key(key: str) -> str:
    return key if key and all(c.isalnum() and c.isascii() or c in "_-" for c in key) else json.dumps(key)


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(v)


def _toml(doc: dict) -> str:
    out = []
    for name, table in doc.items():
        if name == "tasks" and isinstance(table, list) and all(isinstance(t, dict) for t in table):
            for task in table:
                out += ["[[tasks]]"] + [f"{_key(k)} = {_value(v)}" for k, v in task.items()] + [""]
        elif name == "sources" and isinstance(table, dict):
            for source, options in table.items():
                out += [f"[sources.{_key(source)}]"] + [f"{_key(k)} = {_value(v)}" for k, v in options.items()] + [""]
        elif isinstance(table, dict):
            out += [f"[{_key(name)}]"] + [f"{_key(k)} = {_value(v)}" for k, v in table.items()] + [""]
        else:
            out.insert(0, f"{_key(name)} = {_value(table)}")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------------------------- the draws


def _draw(rng: random.Random) -> tuple[str, bytes, dict[str, str]]:
    """(what was broken, the config file's bytes, TANAS_* variables)."""
    doc = json.loads(json.dumps(BASE))
    kind = rng.choices(["field", "task", "structure", "env", "bytes"], weights=[45, 25, 15, 10, 5])[0]
    if kind == "field":
        section = rng.choice(sorted(SECTIONS))
        f = rng.choice([f for f in dataclasses.fields(SECTIONS[section])])
        field_kind = _kind(section, f)
        pool = (BAD.get(field_kind, []) + _wrong_type(field_kind)) if field_kind != "bool" else _wrong_type("bool")
        value = rng.choice(pool)
        doc.setdefault(section, {})[f.name] = value
        return f"{section}.{f.name} = {value!r:.60}", _toml(doc).encode(), {}
    if kind == "task":
        where = rng.choice(["tasks", "target"])
        key = rng.choice(sorted(TASK_BAD) + ["other", "balance", "colour"])
        value = rng.choice(TASK_BAD.get(key) or ([1, "yes"] if key != "colour" else ["red"]))
        task = doc["tasks"][0] if where == "tasks" else doc["target"]
        task[key] = value
        if key == "val_fraction" and value == 0.99:
            task["test_fraction"] = 0.2
        return f"{where}.{key} = {value!r:.60}", _toml(doc).encode(), {}
    if kind == "structure":
        how = rng.choice(["no tasks, no target", "unknown key", "unknown section", "section not a table",
                          "tasks not a list", "target not a table", "duplicate names", "markup key", "sources 1"])
        if how == "no tasks, no target":
            doc.pop("tasks"), doc.pop("target")
        elif how == "unknown key":
            doc.setdefault(rng.choice(sorted(SECTIONS)), {})[rng.choice(["roundz", "ñ", "x" * 300])] = 1
        elif how == "markup key":
            doc["search"][rng.choice(MARKUP)] = 1
        elif how == "unknown section":
            doc[rng.choice(["serach", "[red]", "数据"])] = {"a": 1}
        elif how == "section not a table":
            doc[rng.choice(sorted(SECTIONS))] = rng.choice([1, "x", [1]])
        elif how == "tasks not a list":
            doc["tasks"] = {"name": "x"}
        elif how == "target not a table":
            doc["target"] = rng.choice([1, "moon", [1]])
        elif how == "duplicate names":
            doc["target"]["name"] = doc["tasks"][0]["name"]
        else:
            doc["sources"] = 1
        return how, _toml(doc).encode(), {}
    if kind == "env":
        name = rng.choice(sorted(ENV_BAD))
        value = rng.choice(ENV_BAD[name])
        return f"{name}={value}", _toml(doc).encode(), {name: value}
    lines = _toml(doc).encode().splitlines(keepends=True)
    at = rng.randrange(len(lines))       # at a line's start, where none of these can be part of a value
    junk = rng.choice([b"\xff\xfe", b"\x00", b"= = =\n", b"[[[", b'"unterminated'])
    return f"bytes {junk!r} at line {at + 1}", b"".join(lines[:at] + [junk] + lines[at:]), {}


def _draws() -> list[tuple[str, bytes, dict[str, str]]]:
    rng = random.Random(SEED)
    return [_draw(rng) for _ in range(CASES)]


def test_the_base_config_is_valid(tmp_path):
    path = tmp_path / "tanas.toml"
    path.write_text(_toml(BASE))
    result = runner.invoke(app, ["run", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("chunk", range(3))
def test_random_invalid_configs_exit_2_without_a_traceback(tmp_path, chunk):
    draws = _draws()
    size = -(-len(draws) // 3)
    tried = 0
    for i, (what, data, env) in enumerate(draws[chunk * size:(chunk + 1) * size]):
        path = tmp_path / f"c{i}.toml"
        path.write_bytes(data)
        result = runner.invoke(app, ["run", str(path), "--dry-run"], env=env)
        tried += 1
        assert result.exit_code == 2, (what, result.output, result.exception)
        assert "Traceback" not in result.output and result.output.startswith("error: "), (what, result.output)
        assert not (tmp_path / "store.zarr").exists(), what
    assert tried == size or chunk == 2
    print(f"config fuzzer: {tried} invalid configs tried (chunk {chunk}, {CASES} in all, seed {SEED})")
