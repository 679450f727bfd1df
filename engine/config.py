"""The project configuration: `tanas.toml` sections as frozen dataclasses, and their loader.

Precedence: command-line override > `TANAS_*` environment variable > config file > built-in default.
Unknown keys, wrong types and missing required values raise `ConfigError`, naming the file, the key and the line.
"""
from __future__ import annotations

import dataclasses
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from engine.choices import ARMS, DEVICES, DISTANCE_METHODS, EXECUTOR_KINDS, SPACE_KINDS
from engine.data.tasks import TaskDef, definition_problems


class ConfigError(ValueError):
    """A configuration problem, located as precisely as the source allows."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None, line: int | None = None):
        self.file, self.key, self.line, self.message = file, key, line, message
        where = file or "<config>"
        if line is not None:
            where += f":{line}"
        super().__init__(f"{where}: {key + ': ' if key else ''}{message}")


@dataclass(frozen=True)
class ProjectSection:
    store: str = "tanas-store.zarr"
    data_dir: str = "data"
    device: str = "auto"          # auto | cpu | cuda
    seed: int = 0
    threads: int = 0              # torch intra-op threads on CPU; 0 = one (engine.runtime.threads.job_threads)


@dataclass(frozen=True)
class DictionarySection:
    probe: str = "cnn"            # cnn | resnet18
    epsilon: float = 0.05
    max_epochs: int = 20
    # Epochs every probe trains before the 1 − ε stop may end it (1 = stop as soon as 1 − ε is reached). Equal budgets
    # keep the Fisher distance from tracking how long each probe happened to train.
    min_epochs: int = 1
    batch_size: int = 128
    lr: float = 1e-3
    method: str = "fisher"        # fisher | transfer: the distance used for nearest tasks and spaces
    fisher: str = "empirical"     # empirical | model
    fisher_samples: int = 1000
    include_head: bool = False
    seeds: int = 1
    # Where the Fisher is taken (docs/SIMILARITY.md): "per-task" trains one probe per task (METHOD 3a as published);
    # "shared" trains one body on every class of the config's sources and fits only a linear head per task.
    fisher_body: str = "per-task"
    shared_epochs: int = 3        # epochs of the shared body on the broad task
    # "pair": d(b, t) compares F(b, t) with F(t, t) (METHOD 3a); "embedding": F(b, b) with F(t, t) (Task2Vec);
    # "domain": like "embedding", each task's Fisher of the shared body's features on its own inputs, no head
    # (label-free; needs fisher_body = "shared"; docs/SIMILARITY.md).
    fisher_form: str = "pair"
    # "global": one unit trace over all included parameters (METHOD 3a); "layer": unit trace per layer.
    fisher_norm: str = "global"
    k: int = 3
    # Budget of the search that gives each base task its best genotype (0 rounds = inherit from the nearest task).
    genotype_rounds: int = 1


@dataclass(frozen=True)
class TransferSection:
    epsilon: float = 0.05
    epochs: int = 10              # MSE training epochs of the transform network
    finetune_epochs: int = 2      # after each pruning step
    prune_step: float = 0.05
    lr: float = 1e-3
    batch_size: int = 128
    max_samples: int = 2000       # samples of B's train split used to fit the transform


@dataclass(frozen=True)
class SpaceSection:
    kind: str = "task-aware"      # task-aware | standard
    channels: tuple[int, ...] = (8, 16, 32)
    layers: tuple[int, ...] = (3, 5, 8)
    nodes: tuple[int, ...] = (4,)
    smoothing: float = 0.05


@dataclass(frozen=True)
class SearchSection:
    rounds: int = 5
    candidates: int = 4
    alternations: int = 5
    w_epochs: int = 1
    alpha_epochs: int = 1
    w_lr: float = 1e-3
    alpha_lr: float = 3e-3
    batch_size: int = 128
    final_epochs: int = 10
    alpha_batch_size: int = 32    # α steps per α epoch = ceil(n_val / this); 0: one full-val-split step
    checkpoint_minutes: float = 5.0
    compare: bool = False         # also run random search, FUSE in the standard space and fixed networks
    fixed_networks: tuple[str, ...] = ("resnet18",)
    repeats: int = 1              # every arm runs with seeds project.seed .. project.seed + repeats - 1
    arms: tuple[str, ...] = ARMS  # the comparison's arms (engine.choices.ARMS); fixed = search.fixed_networks


@dataclass(frozen=True)
class ExecutorSection:
    kind: str = "local"           # local | ray: where units of work (probes, Fisher passes) run
    address: str = ""             # ray: "auto", "host:6379", "ray://host:10001", or "" for a Ray started here
    gpus_per_job: float = 0.0     # ray: GPUs each unit asks for (fractions allowed)
    cpus_per_job: float = 1.0     # ray: CPUs each unit asks for (fractions allowed)
    max_retries: int = 3          # ray: re-runs of a unit whose worker died


@dataclass(frozen=True)
class EngineSection:
    idle_exit: float = 30.0       # minutes without a job or a following client before a background engine exits; 0 = never


@dataclass(frozen=True)
class SourceSection:
    name: str
    kind: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    file: str | None
    project: ProjectSection
    dictionary: DictionarySection
    transfer: TransferSection
    space: SpaceSection
    search: SearchSection
    sources: Mapping[str, SourceSection]
    tasks: tuple[TaskDef, ...]
    target: TaskDef | None
    engine: EngineSection = EngineSection()
    executor: ExecutorSection = field(default_factory=ExecutorSection)

    def snapshot(self) -> dict[str, Any]:
        """Plain-data copy for the store and for comparing a resume's config with the original."""
        return _plain(dataclasses.asdict(self))

    @property
    def root(self) -> Path:
        return Path(self.file).resolve().parent if self.file else Path.cwd()

    def path(self, value: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.root / p

    @property
    def store_path(self) -> Path:
        return self.path(self.project.store)

    @property
    def data_dir(self) -> Path:
        return self.path(self.project.data_dir)

    def task(self, name: str) -> TaskDef:
        for t in self.all_tasks():
            if t.name == name:
                return t
        raise ConfigError(f"no task named {name!r} (known: {', '.join(t.name for t in self.all_tasks())})", file=self.file)

    def all_tasks(self) -> tuple[TaskDef, ...]:
        return self.tasks + ((self.target,) if self.target else ())


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------------------------
# Loading and validation

SECTIONS: dict[str, type] = {
    "project": ProjectSection,
    "dictionary": DictionarySection,
    "transfer": TransferSection,
    "space": SpaceSection,
    "search": SearchSection,
    "executor": ExecutorSection,
    "engine": EngineSection,
}
TASK_FIELDS = {f.name: f for f in dataclasses.fields(TaskDef)}
CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("project", "device"): DEVICES,
    ("dictionary", "probe"): ("cnn", "resnet18"),
    ("dictionary", "method"): DISTANCE_METHODS,
    ("dictionary", "fisher"): ("empirical", "model"),
    ("dictionary", "fisher_body"): ("per-task", "shared"),
    ("dictionary", "fisher_form"): ("pair", "embedding", "domain"),
    ("dictionary", "fisher_norm"): ("global", "layer"),
    ("space", "kind"): SPACE_KINDS,
    ("executor", "kind"): EXECUTOR_KINDS,
}
SPACE_CHOICES = {"channels": (4, 8, 16, 24, 32, 48, 64), "layers": tuple(range(1, 21)), "nodes": tuple(range(1, 8))}
ENV_PREFIX = "TANAS_"


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


class _Loader:
    def __init__(self, file: str | None, text: str):
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
        elif kind == "int":
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        elif kind == "float":
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
        elif kind == "str":
            if isinstance(value, str):
                return value
        elif kind == "optional_str":
            if value is None or isinstance(value, str):
                return value
        elif kind == "optional_int":
            if value is None or (isinstance(value, int) and not isinstance(value, bool)):
                return value
        elif kind in ("tuple_int", "tuple_str", "optional_tuple_str"):
            if kind != "tuple_int" and isinstance(value, (str, int)) and not isinstance(value, bool):
                value = [value]
            if isinstance(value, list):
                want = int if kind == "tuple_int" else (str, int)
                if all(isinstance(v, want) and not isinstance(v, bool) for v in value):
                    return tuple(value) if kind == "tuple_int" else tuple(str(v) for v in value)
        else:  # pragma: no cover - a dataclass field type the loader was not taught
            raise AssertionError(f"unsupported config type {annotation!r}")
        raise self.error(f"expected {_KIND_WORDS[kind]}, got {_describe(value)}", table, key)

    def section(self, name: str, cls: type, raw: Any, env: Mapping[str, Any]) -> Any:
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
            if key in env:
                values[key] = self.coerce(env[key], f.type, name, key)
            elif key in raw:
                values[key] = self.coerce(raw[key], f.type, name, key)
        instance = cls(**values)
        self.check_section(name, instance)
        return instance

    def check_section(self, name: str, section: Any) -> None:
        for (table, key), allowed in CHOICES.items():
            if table == name:
                value = getattr(section, key)
                ok = value in allowed or (key == "device" and re.fullmatch(r"cuda:\d+", value))
                if not ok:
                    raise self.error(f"must be one of {', '.join(allowed)}, got {value!r}", name, key)
        for f in dataclasses.fields(section):
            value = getattr(section, f.name)
            if f.name in ("epsilon", "smoothing", "prune_step") and not 0.0 <= value < 1.0:
                raise self.error(f"must be in [0, 1), got {value}", name, f.name)
            if f.name in ("lr", "w_lr", "alpha_lr") and not value > 0:
                raise self.error(f"must be positive, got {value}", name, f.name)
            if f.name in ("max_epochs", "min_epochs", "batch_size", "fisher_samples", "seeds", "k", "rounds",
                          "shared_epochs",
                          "candidates", "alternations", "w_epochs", "alpha_epochs", "final_epochs", "epochs", "max_samples",
                          "repeats") and value < 1:
                raise self.error(f"must be at least 1, got {value}", name, f.name)
            if f.name in ("genotype_rounds", "finetune_epochs", "threads", "seed", "alpha_batch_size",
                          "idle_exit", "max_retries", "gpus_per_job") and value < 0:
                raise self.error(f"must not be negative, got {value}", name, f.name)
            if name == "space" and f.name in SPACE_CHOICES:
                if not value:
                    raise self.error("must list at least one value", name, f.name)
                bad = [v for v in value if v not in SPACE_CHOICES[f.name]]
                if bad:
                    raise self.error(f"unsupported value(s) {bad}; allowed: {list(SPACE_CHOICES[f.name])}", name, f.name)
        if name == "dictionary" and section.fisher_form == "domain" and section.fisher_body != "shared":
            raise self.error('"domain" compares Fishers of one shared body: it needs fisher_body = "shared", got '
                             f'{section.fisher_body!r}', name, "fisher_form")
        if name == "dictionary" and section.fisher_form == "domain" and section.include_head:
            raise self.error('"domain" takes no head into its Fisher: it needs include_head = false', name,
                             "include_head")
        if name == "dictionary" and section.min_epochs > section.max_epochs:
            raise self.error(f"must not exceed max_epochs ({section.max_epochs}), got {section.min_epochs}", name,
                             "min_epochs")
        if name == "search":
            self._arms(section.arms, name)
        if name == "executor" and not section.cpus_per_job > 0:
            raise self.error(f"must be positive, got {section.cpus_per_job}", name, "cpus_per_job")
        if name == "search" and section.candidates < 2:
            raise self.error("FUSE needs at least 2 candidates", name, "candidates")

    def _arms(self, arms: Any, name: str) -> None:
        if isinstance(arms, str) or not isinstance(arms, (list, tuple)) or not arms:
            raise self.error(f"must be a non-empty list of arms from {', '.join(ARMS)}, got {arms!r}", name, "arms")
        bad = [a for a in arms if a not in ARMS]
        if bad:
            raise self.error(f"unknown arm(s) {', '.join(map(repr, bad))}; known: {', '.join(ARMS)}", name, "arms")
        twice = sorted({a for a in arms if list(arms).count(a) > 1})
        if twice:
            raise self.error(f"arm(s) listed twice: {', '.join(twice)}", name, "arms")

    def sources(self, raw: Any, data_dir: Path) -> dict[str, SourceSection]:
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
        values = {k: self.coerce(v, TASK_FIELDS[k].type, table, k) for k, v in raw.items()}
        values.setdefault("seed", default_seed)
        for key, message in definition_problems(values):
            raise self.error(message, table, key)
        return TaskDef(**values)

    def check_task_classes(self, task: TaskDef, table: str, sources: Mapping[str, SourceSection], data_dir: Path,
                           root: Path) -> None:
        from engine.data import DataUnavailable, UnknownSource, get_source

        try:
            source = get_source(task.source, sources, data_dir, base_dir=root)
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
    return f"{type(value).__name__} {value!r}"


def _parse_env_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _env_overrides(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
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
    return out


def load_config(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    check_classes: bool = True,
) -> Config:
    """Reads and validates a config file. `overrides` maps "section.key" to a value (command-line flags)."""
    env = os.environ if env is None else env
    file = str(path) if path is not None else None
    text = ""
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError("config file not found", file=file)
        try:
            text = p.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            line = p.read_bytes()[: exc.start].count(b"\n") + 1
            raise ConfigError(f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); save the file as UTF-8",
                              file=file, line=line) from None
        except OSError as exc:
            raise ConfigError(f"cannot read the config file ({exc.strerror or exc})", file=file) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # Python 3.11's TOMLDecodeError has no lineno attribute; its message ends "(at line L, column C)".
        m = re.search(r"\(at line (\d+), column \d+\)$", str(exc))
        line = getattr(exc, "lineno", None) or (int(m.group(1)) if m else None)
        message = str(exc)[: m.start()].strip() if m else str(exc)
        raise ConfigError(f"not valid TOML: {message}", file=file, line=line) from None
    if path is not None and not raw:
        raise ConfigError("the config file is empty: it needs at least a [project] section, tasks and a target "
                          "(see tanas.toml)", file=file)
    loader = _Loader(file, text)

    known_top = set(SECTIONS) | {"sources", "tasks", "target"}
    for key in raw:
        if key not in known_top:
            raise loader.error(f"unknown section (known: {', '.join(sorted(known_top))})", key)

    layered = _env_overrides(env)
    for section, values in layered.items():
        for key in values:
            loader.origins[(section, key)] = ("environment", f"{ENV_PREFIX}{section.upper()}_{key.upper()}")
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        if section not in SECTIONS or key not in {f.name for f in dataclasses.fields(SECTIONS[section])}:
            raise ConfigError(f"unknown setting {dotted!r}", key=dotted, file="command line")
        layered.setdefault(section, {})[key] = value
        loader.origins[(section, key)] = ("command line", dotted)

    sections = {name: loader.section(name, cls, raw.get(name), layered.get(name, {})) for name, cls in SECTIONS.items()}
    project: ProjectSection = sections["project"]
    root = Path(file).resolve().parent if file else Path.cwd()
    data_dir = Path(project.data_dir).expanduser()
    data_dir = data_dir if data_dir.is_absolute() else root / data_dir
    sources = loader.sources(raw.get("sources"), data_dir)

    raw_tasks = raw.get("tasks", [])
    if not isinstance(raw_tasks, list):
        raise loader.error("expected an array of tables [[tasks]]", "tasks")
    tasks = tuple(loader.task(t, f"tasks[{i}]", project.seed) for i, t in enumerate(raw_tasks))
    target = loader.task(raw["target"], "target", project.seed) if "target" in raw else None

    seen: dict[str, str] = {}
    for table, task in [(f"tasks[{i}]", t) for i, t in enumerate(tasks)] + ([("target", target)] if target else []):
        if task.name in seen:
            raise loader.error(f"duplicate task name {task.name!r} (also used by {seen[task.name]})", table, "name")
        seen[task.name] = table
        if check_classes:
            loader.check_task_classes(task, table, sources, data_dir, root)

    return Config(file=file, sources=sources, tasks=tasks, target=target, **sections)


def diff_snapshots(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two config snapshots (for refusing a mismatched resume)."""
    keys = sorted(set(old) | set(new))
    out = []
    for key in keys:
        a, b = old.get(key), new.get(key)
        dotted = f"{prefix}{key}"
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += diff_snapshots(a, b, dotted + ".")
        elif a != b:
            out.append(dotted)
    return out
