"""Resolving the effective config, once: file, `TANAS_*` environment, command-line overrides, built-in defaults.

`load_config(path, env, overrides)` parses the TOML file (the only parse of a job's config) and applies the rules
beside each field (engine/config/sections.py); `config_from_plain(data)` rebuilds a `Config` from its plain-data
form (`Config.snapshot()`, what a job carries to the engine) under the very same rules, reading no file and no
environment. Unknown keys, wrong types and broken rules raise `ConfigError` naming the file, the key and the line
(or the variable, or the flag, that set the value).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from engine.config.rules import problems
from engine.config.sections import (SECTIONS, TASK_CROSS_RULES, TASK_RULES, Config, ConfigError, SourceSection)
from engine.data.tasks import TaskDef, definition_problems

TASK_FIELDS = {f.name: f for f in dataclasses.fields(TaskDef)}
ENV_PREFIX = "TANAS_"
TOP_LEVEL = set(SECTIONS) | {"sources", "tasks", "target"}


class _Lines:
    """Maps (table path, key) to the line it was written on; tomllib reports no positions for valid documents."""

    _header = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
    _key = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_.-]+)\s*=""")

    def __init__(self, text: str):
        self.positions: dict[tuple[str, str], int] = {}
        self.tables: dict[str, int] = {}
        table, counts = "", {}
        for number, line in enumerate(text.splitlines(), start=1):
            if m := self._header.match(line):
                name = m.group(2).strip().replace('"', "").replace("'", "")
                if m.group(1) == "[[":
                    counts[name] = counts.get(name, -1) + 1
                    name = f"{name}[{counts[name]}]"
                table = name
                self.tables.setdefault(table, number)
            elif m := self._key.match(line):
                key = m.group(1).strip("\"'")
                self.positions.setdefault((table, key), number)

    def line(self, table: str, key: str | None = None) -> int | None:
        if key is None:
            return self.tables.get(table)
        return self.positions.get((table, key), self.tables.get(table))


_KIND_WORDS = {
    "bool": "true or false", "int": "an integer", "float": "a number", "str": "a string", "optional_str": "a string",
    "optional_int": "an integer", "tuple_int": "a list of integers", "tuple_str": "a list of strings",
    "optional_tuple_str": "a list of class names",
}


def _annotation_kind(annotation: Any) -> str:
    text = str(annotation).replace(" ", "")
    return {
        "bool": "bool", "int": "int", "float": "float", "str": "str", "int|None": "optional_int", "str|None": "optional_str",
        "tuple[int,...]": "tuple_int", "tuple[str,...]": "tuple_str", "tuple[str,...]|None": "optional_tuple_str",
    }.get(text, text)


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int) and abs(value) >= 10 ** 30:
        return f"an integer of {len(str(abs(value)))} digits"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '…'}"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Loader:
    def __init__(self, file: str | None, text: str = ""):
        self.file = file
        self.lines = _Lines(text)
        # (table, key) -> where a value set outside the file came from: ("environment", "TANAS_SEARCH_ROUNDS")
        self.origins: dict[tuple[str, str], tuple[str, str]] = {}

    def error(self, message: str, table: str, key: str | None = None) -> ConfigError:
        if key is not None and (table, key) in self.origins:
            where, name = self.origins[(table, key)]
            return ConfigError(message, file=where, key=name)
        dotted = f"{table}.{key}" if key and table else (key or table)
        return ConfigError(message, file=self.file, key=dotted or None, line=self.lines.line(table, key))

    def coerce(self, value: Any, annotation: Any, table: str, key: str) -> Any:
        kind = _annotation_kind(annotation)
        if kind == "bool":
            if isinstance(value, bool):
                return value
        elif kind in ("int", "optional_int"):
            if _is_int(value) or (kind == "optional_int" and value is None):
                return value
        elif kind == "float":
            if _is_int(value) or isinstance(value, float):
                try:
                    return float(value)
                except OverflowError:
                    raise self.error(f"must be a finite number, got {_describe(value)}", table, key) from None
        elif kind in ("str", "optional_str"):
            if isinstance(value, str) or (kind == "optional_str" and value is None):
                return value
        elif kind in ("tuple_int", "tuple_str", "optional_tuple_str"):
            if kind == "optional_tuple_str" and value is None:
                return None
            if kind != "tuple_int" and (isinstance(value, str) or _is_int(value)):
                value = [value]
            if isinstance(value, (list, tuple)):
                want = int if kind == "tuple_int" else (str, int)
                if all(isinstance(v, want) and not isinstance(v, bool) for v in value):
                    return tuple(value) if kind == "tuple_int" else tuple(str(v) for v in value)
        else:  # pragma: no cover - a dataclass field type the loader was not taught
            raise AssertionError(f"unsupported config type {annotation!r}")
        raise self.error(f"expected {_KIND_WORDS[kind]}, got {_describe(value)}", table, key)

    def section(self, name: str, cls: type, raw: Any, layered: Mapping[str, Any]) -> Any:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise self.error(f"expected a table [{name}], got {_describe(raw)}", name)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key in raw:
            if key not in fields:
                raise self.error(f"unknown key (known keys: {', '.join(fields)})", name, key)
        values = {}
        for key, f in fields.items():
            if key in layered:
                values[key] = self.coerce(layered[key], f.type, name, key)
            elif key in raw:
                values[key] = self.coerce(raw[key], f.type, name, key)
        instance = cls(**values)
        for key, message in problems(instance):
            raise self.error(message, name, key)
        return instance

    def sources(self, raw: Any) -> dict[str, SourceSection]:
        from engine.data import BUILTIN_KINDS, SOURCE_OPTIONS, SourceError, validate_source_options

        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise self.error(f"expected tables [sources.NAME], got {_describe(raw)}", "sources")
        out = {}
        for name, options in raw.items():
            table = f"sources.{name}"
            if not isinstance(options, dict):
                raise self.error(f"expected a table, got {_describe(options)}", table)
            options = dict(options)
            kind = options.pop("kind", name)
            if kind not in BUILTIN_KINDS:
                what = "kind" if "kind" in raw[name] else "source"
                raise self.error(
                    f"unknown data source {what} {kind!r} (known: {', '.join(BUILTIN_KINDS)})", table,
                    "kind" if "kind" in raw[name] else None)
            schema = SOURCE_OPTIONS.get(kind, {})
            for key in options:
                if key not in schema:
                    known = ", ".join(schema) or "none"
                    raise self.error(f"unknown option for a {kind} source (known options: {known})", table, key)
            try:
                validate_source_options(kind, options, name)
            except SourceError as exc:
                bad = next((k for k in options if repr(k) in str(exc) or f" {k} " in str(exc)), None)
                raise self.error(str(exc), table, bad) from None
            for key, spec in schema.items():
                if spec.required and key not in options:
                    raise self.error(f"missing required option {key!r} for a {kind} source", table)
            out[name] = SourceSection(name=name, kind=kind, options=options)
        return out

    def task(self, raw: Any, table: str, default_seed: int) -> TaskDef:
        if not isinstance(raw, dict):
            raise self.error(f"expected a table, got {_describe(raw)}", table)
        for key in raw:
            if key not in TASK_FIELDS:
                raise self.error(f"unknown key (known keys: {', '.join(TASK_FIELDS)})", table, key)
        for key in ("name", "source"):
            if key not in raw:
                raise self.error(f"missing required key {key!r}", table)
        raw = dict(raw)
        if "genotype" in raw:
            raw["genotype"] = self.given_genotype(raw["genotype"], table)
        values = {k: self.coerce(v, TASK_FIELDS[k].type, table, k) for k, v in raw.items()}
        values.setdefault("seed", default_seed)
        for key, message in definition_problems(values):
            raise self.error(message, table, key)
        for key, rule in TASK_RULES.items():
            message = values.get(key) is not None and rule(values[key])
            if message:
                raise self.error(message, table, key)
        task = TaskDef(**values)
        for key, rule in TASK_CROSS_RULES:
            message = rule(task)
            if message:
                raise self.error(message, table, key)
        return task

    def given_genotype(self, value: Any, table: str) -> str:
        """A task's `genotype`: an inline table, a JSON file's path (relative to the config file) or JSON text (as a
        job's plain config carries it); returned as the genotype's canonical JSON."""
        from engine.space.genotype import Genotype, GenotypeError

        where = "inline"
        if isinstance(value, str) and not value.lstrip().startswith("{"):
            path = Path(value).expanduser()
            if not path.is_absolute() and self.file:
                path = Path(self.file).parent / path
            where = str(path)
            try:
                value = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise self.error(f"cannot read the genotype file {path}: {exc.strerror or exc}", table,
                                 "genotype") from None
        try:
            data = json.loads(value) if isinstance(value, str) else value
            genotype = Genotype.from_dict(data)
        except (ValueError, GenotypeError) as exc:
            raise self.error(f"not a genotype ({where}): {exc}", table, "genotype") from None
        return json.dumps(genotype.to_dict(), sort_keys=True, separators=(",", ":"))

    def check_task_classes(self, task: TaskDef, table: str, cfg: Config) -> None:
        from engine.data import DataUnavailable, UnknownSource, get_source

        try:
            source = get_source(task.source, cfg.sources, cfg.data_dir, base_dir=cfg.root)
        except UnknownSource as exc:
            raise self.error(str(exc), table, "source") from None
        try:
            known = source.classes()
        except DataUnavailable:
            raise  # missing data files (an npz, an image folder): exit 3 with where to put them, not a config error
        except Exception as exc:  # noqa: BLE001 - e.g. an unreadable file
            raise self.error(f"cannot read the classes of source {task.source!r}: {exc}", table, "source") from None
        rule = "positive" if task.positive is not None else "classes"
        for name in getattr(task, rule):
            if name not in known:
                raise self.error(
                    f"source {task.source!r} has no class {name!r} (its classes: {', '.join(known)})", table, rule)

    def resolve(self, raw: Mapping[str, Any], layered: Mapping[str, Mapping[str, Any]], base_dir: Path, *,
                check_classes: bool) -> Config:
        """The Config of a parsed document `raw` with `layered` ({section: {key: value}}) over it."""
        for key in raw:
            if key not in TOP_LEVEL:
                raise self.error(f"unknown section (known: {', '.join(sorted(TOP_LEVEL))})", key)
        sections = {name: self.section(name, cls, raw.get(name), layered.get(name, {}))
                    for name, cls in SECTIONS.items()}
        sources = self.sources(raw.get("sources"))
        raw_tasks = raw.get("tasks", [])
        if not isinstance(raw_tasks, list):
            raise self.error("expected an array of tables [[tasks]]", "tasks")
        seed = sections["project"].seed
        tasks = tuple(self.task(t, f"tasks[{i}]", seed) for i, t in enumerate(raw_tasks))
        target = self.task(raw["target"], "target", seed) if raw.get("target") is not None else None
        cfg = Config(file=self.file, sources=sources, tasks=tasks, target=target, base_dir=str(base_dir), **sections)
        for key, rule in Config.RULES:
            message = rule(cfg)
            if message:
                section, _, name = key.partition(".")
                raise self.error(message, section, name)
        seen: dict[str, str] = {}
        for table, task in [(f"tasks[{i}]", t) for i, t in enumerate(tasks)] + ([("target", target)] if target else []):
            if task.name in seen:
                raise self.error(f"duplicate task name {task.name!r} (also used by {seen[task.name]})", table, "name")
            seen[task.name] = table
            if check_classes:
                self.check_task_classes(task, table, cfg)
        return cfg


def _parse_env_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _env_overrides(env: Mapping[str, str], loader: _Loader) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, text in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX):].lower()
        section, _, key = rest.partition("_")
        if section in SECTIONS and key:
            fields = {f.name for f in dataclasses.fields(SECTIONS[section])}
            if key not in fields:
                raise ConfigError(f"unknown setting (known keys of [{section}]: {', '.join(sorted(fields))})", key=name,
                                  file="environment")
            out.setdefault(section, {})[key] = _parse_env_value(text)
            loader.origins[(section, key)] = ("environment", name)
    return out


def _flag_overrides(overrides: Mapping[str, Any], layered: dict[str, dict[str, Any]], loader: _Loader) -> None:
    for dotted, value in overrides.items():
        section, _, key = dotted.partition(".")
        if section not in SECTIONS or key not in {f.name for f in dataclasses.fields(SECTIONS[section])}:
            raise ConfigError(f"unknown setting {dotted!r}", key=dotted, file="command line")
        layered.setdefault(section, {})[key] = value
        loader.origins[(section, key)] = ("command line", dotted)


def _read_text(path: Path, file: str) -> str:
    if not path.is_file():
        raise ConfigError("config file not found", file=file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the config file ({exc.strerror or exc})", file=file) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); save the file as UTF-8",
                          file=file, line=line) from None


def _parse(text: str, file: str | None) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # Python 3.11's TOMLDecodeError has no lineno attribute; its message ends "(at line L, column C)".
        m = re.search(r"\(at line (\d+), column \d+\)$", str(exc))
        line = getattr(exc, "lineno", None) or (int(m.group(1)) if m else None)
        message = str(exc)[: m.start()].strip() if m else str(exc)
        raise ConfigError(f"not valid TOML: {message}", file=file, line=line) from None
    except RecursionError:
        raise ConfigError("not valid TOML: nested too deeply", file=file) from None


def load_config(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    check_classes: bool = True,
) -> Config:
    """The effective config: the file at `path` (None: the built-in defaults), `TANAS_<SECTION>_<KEY>` variables of
    `env` (None: os.environ) over it, and `overrides` ({"section.key": value}, the command-line flags) over those."""
    env = os.environ if env is None else env
    file = str(path) if path is not None else None
    if file is not None and "\x00" in file:
        raise ConfigError("the config file's path holds a NUL byte", file=repr(file))
    text = _read_text(Path(path), file) if path is not None else ""
    raw = _parse(text, file)
    if path is not None and not raw:
        raise ConfigError("the config file is empty: it needs at least a [project] section, tasks and a target "
                          "(see tanas.toml)", file=file)
    loader = _Loader(file, text)
    layered = _env_overrides(env, loader)
    _flag_overrides(overrides or {}, layered, loader)
    base_dir = Path(file).resolve().parent if file else Path.cwd()
    return loader.resolve(raw, layered, base_dir, check_classes=check_classes)


def config_from_plain(data: Any, *, store: str | Path | None = None, check_classes: bool = False) -> Config:
    """The Config of a plain-data config (`Config.snapshot()`, as a job carries it), under the same rules as a file;
    `store` replaces its `[project] store` (an engine's jobs always use the engine's own store)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"a job's config must be a table (Config.snapshot()), got {_describe(data)}",
                          file="job config")
    file = data.get("file")
    base_dir = data.get("base_dir")
    if (file is not None and not isinstance(file, str)) or not isinstance(base_dir, str) or \
            not os.path.isabs(base_dir) or "\x00" in base_dir:
        raise ConfigError("a job's config needs 'file' (a string or null) and 'base_dir' (an absolute path)",
                          file="job config")
    extra = set(data) - TOP_LEVEL - {"file", "base_dir"}
    if extra:
        raise ConfigError(f"unknown key(s) {', '.join(sorted(map(str, extra)))}", file="job config")
    raw: dict[str, Any] = {name: data.get(name) for name in SECTIONS if data.get(name) is not None}
    sources = data.get("sources") or {}
    if not isinstance(sources, Mapping) or not all(isinstance(s, Mapping) for s in sources.values()):
        raise ConfigError("'sources' must map names to {name, kind, options}", file="job config", key="sources")
    raw["sources"] = {name: {"kind": s.get("kind"), **(s.get("options") or {})} for name, s in sources.items()}
    tasks = data.get("tasks") or []
    if not isinstance(tasks, list) or not all(isinstance(t, Mapping) for t in tasks):
        raise ConfigError("'tasks' must be a list of task tables", file="job config", key="tasks")
    raw["tasks"] = [{k: v for k, v in t.items() if v is not None} for t in tasks]
    target = data.get("target")
    if target is not None:
        raw["target"] = {k: v for k, v in target.items() if v is not None} if isinstance(target, Mapping) else target
    loader = _Loader(file or "job config")
    layered: dict[str, dict[str, Any]] = {}
    if store is not None:
        _flag_overrides({"project.store": str(store)}, layered, loader)
    cfg = loader.resolve(raw, layered, Path(base_dir), check_classes=check_classes)
    return dataclasses.replace(cfg, file=file)


def task_definition(raw: Any, *, default_seed: int = 0, where: str = "task", file: str | None = None) -> TaskDef:
    """A TaskDef from plain data (a job's `task`, a form's fields) under the same rules as a [[tasks]] table."""
    if isinstance(raw, Mapping):
        raw = {k: v for k, v in raw.items() if v is not None}
    return _Loader(file).task(raw, where, default_seed)


def config_digest(data: Mapping[str, Any]) -> str:
    """A short stable hash of a plain-data config: how job listings name the config a job carries."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def config_summary(data: Any) -> dict[str, Any] | None:
    """What job listings and events show of a job's config: its file and digest, not the whole table."""
    if not isinstance(data, Mapping):
        return None
    return {"file": data.get("file"), "digest": config_digest(data)}


__all__ = ["ConfigError", "ENV_PREFIX", "TASK_FIELDS", "config_digest", "config_from_plain", "config_summary",
           "load_config", "task_definition"]
