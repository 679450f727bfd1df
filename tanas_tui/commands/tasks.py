"""`tanas-tui tasks list` and `tanas-tui tasks show NAME`: the stored task dictionary, read-only.

`tasks_app` is importable so other modules can add commands (`tasks add`, `tasks remove`) to the same group.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from tanas_tui.common import ConfigOption, StoreOption
from tanas_tui.errors import CliError, handle_errors
from tanas_tui.safe_text import plain
from tanas_tui.exitcodes import ExitCode
from tanas_tui.machine_output import CsvOption, JsonOption, emit, wanted

if TYPE_CHECKING:
    from store.records import TaskRecord

tasks_app = typer.Typer(help="The task dictionary: list stored tasks, show one task in full.", no_args_is_help=True)

DASH = "–"
# `show` prints these first, in this order; any other attribute follows alphabetically
_SHOW_ORDER = (
    "name", "id", "role", "source", "group", "rule", "status", "seed", "n_train", "n_val", "n_test", "num_classes",
    "class_names", "probe_arch", "val_acc", "epochs", "representative", "genotype_hash", "best_genotype",
)


def register(app: typer.Typer) -> None:
    app.add_typer(tasks_app, name="tasks")


def _open(config: Path | None, store: Path | None):
    from tanas_tui.common import load_cli_config, open_store

    # reading the store must not depend on the data sources being loadable
    cfg = load_cli_config(config, store, check_classes=False)
    return open_store(cfg, "r")


def _text(value: Any) -> str:
    if value is None or value == "":
        return DASH
    if isinstance(value, float):
        return DASH if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) if value else DASH
    return str(value)


def _samples(task: TaskRecord) -> str:
    parts = [task.n_train, task.n_val, task.n_test]
    if all(p is None for p in parts):
        return DASH
    return "/".join(DASH if p is None else str(p) for p in parts)


def _accuracy(value: Any) -> str:
    from tanas_tui.units import pct

    return pct(value) if pct(value) != "—" else DASH


def _epsilon_flag(value: Any, long: bool = False) -> Text:
    if value is True:
        return Text("yes", style="green")
    if value is False:
        return Text("no (val acc below 1−ε)" if long else "no", style="yellow")
    return Text(DASH)


def _genotype_hash(task: TaskRecord) -> str:
    value = task.genotype_id
    return str(value)[:8] if value else DASH


def _status(value: Any) -> Text:
    if not value:
        return Text(DASH)
    styles = {"ready": "green", "done": "green", "failed": "red", "error": "red", "training": "cyan",
              "pending": "dim", "not built": "dim", "not-representative": "yellow"}
    return plain(value, style=styles.get(str(value), ""))


def tasks_table(tasks: list[dict[str, Any]], title: str | None = None, width: int = 120) -> Table:
    """The dictionary as a table; below 100 columns the id and genotype columns give way to the rest."""
    from store.records import TaskRecord

    wide = width >= 100
    columns = [  # (header, justify, min width; None = fixed format: never wraps)
        ("name", "left", 8), ("id", "left", None), ("source", "left", 6), ("group", "left", 5), ("rule", "left", 6),
        ("samples", "right", None), ("val acc", "right", None), ("ε-repr.", "left", None),
        ("genotype", "left", None), ("status", "left", 6),
    ]
    table = Table(title=title, title_justify="left")
    for header, justify, min_width in columns:
        if wide or header not in ("id", "genotype"):
            fixed = min_width is None or header == "name"   # a name is never cut into lines
            table.add_column(header, justify=justify, no_wrap=fixed, min_width=min_width,
                             overflow="ellipsis" if fixed else "fold")
    for t in map(TaskRecord.from_attrs, tasks):
        cells: list[Any] = [
            _text(t.name), str(t.id)[:8], _text(t.source), _text(t.group or t.source), _text(t.rule),
            _samples(t), _accuracy(t.val_acc), _epsilon_flag(t.representative),
            _genotype_hash(t), _status(t.status),
        ]
        if not wide:
            del cells[8], cells[1]
        table.add_row(*cells)
    return table


PAGE = 1_000     # `tasks list` shows at most this many stored tasks unless --limit says otherwise


@tasks_app.command("list")
@handle_errors
def list_command(
    store: Path | None = StoreOption,
    config: Path | None = ConfigOption,
    as_json: bool = JsonOption,
    as_csv: bool = CsvOption,
    offset: int = typer.Option(0, "--offset", help="Skip this many stored tasks (in the order they were added)."),
    limit: int = typer.Option(None, "--limit", help=f"At most this many stored tasks (default {PAGE:,}; 0 = all)."),
) -> None:
    """Every task in the store's dictionary, in the order it was added, then the config's tasks not built yet.

    Paged: --offset and --limit pick a window of the stored tasks; only that window's tasks are read, so a page of a
    100,000-task dictionary costs its own tasks. The config's tasks not built yet follow on the last page."""
    from tanas_tui.common import console, load_cli_config, open_store

    if offset < 0:
        raise CliError(f"--offset must be 0 or more, got {offset}")
    if limit is not None and limit < 0:
        raise CliError(f"--limit must be 0 (all) or more, got {limit}")
    size = PAGE if limit is None else limit
    cfg = load_cli_config(config, store, check_classes=False)
    stored: list[dict[str, Any]] = []
    total = 0
    built_names: set[str] = set()
    if store is not None and not cfg.store_path.exists():
        raise CliError(f"no store at {cfg.store_path} (`tanas-tui run` creates it)", ExitCode.STORE)
    if cfg.store_path.exists():
        with open_store(cfg, "r") as st:
            ids = st.task_ids()
            total = len(ids)
            window = ids[offset:] if size == 0 else ids[offset:offset + size]
            stored = [a for a in st.tasks_attrs(window) if a is not None]
            built_names = set(st.task_names())
    last_page = size == 0 or offset + size >= total
    pending = [_not_built(t, "target" if t is cfg.target else "base") for t in cfg.all_tasks()
               if t.name not in built_names] if last_page else []
    tasks = stored + pending
    fmt = wanted(as_json, as_csv)
    if fmt is not None:
        emit([_task_row(a) for a in tasks], fmt, TASK_COLUMNS)
        return
    if not tasks and not total:
        where = f"store {cfg.store_path}" if cfg.store_path.exists() else "the config (and there is no store yet)"
        console.print(f"no tasks in {where}; add [[tasks]] to tanas.toml (`tanas-tui init` writes one)")
        return
    if len(stored) < total:
        first = min(offset + 1, total)
        console.print(f"stored tasks {first:,}–{offset + len(stored):,} of {total:,} (--offset / --limit for "
                      f"others, --limit 0 for all)", highlight=False)
    built = f"{total} built" + (f", {len(pending)} not built yet (`tanas-tui run` builds them)"
                                      if pending else "")
    console.print(tasks_table(tasks, title=f"tasks of {cfg.store_path} ({built})", width=console.width))


def _not_built(taskdef, role: str) -> dict[str, Any]:
    """A configured task that the store does not hold yet, as a row of the table."""
    from engine.data.tasks import task_id

    if taskdef.positive:
        rule = "is " + "|".join(taskdef.positive)
    elif taskdef.classes:
        rule = "{" + ",".join(taskdef.classes) + "}" + ("+other" if taskdef.other else "")
    else:
        rule = None
    return {"id": task_id(taskdef), "name": taskdef.name, "source": taskdef.source, "rule": rule, "role": role,
            "status": "not built"}


TASK_COLUMNS = ("id", "name", "role", "source", "rule", "n_train", "n_val", "n_test", "val_acc", "representative",
                "epochs", "genotype_hash", "status")


def _task_row(attrs: dict) -> dict:
    from store.records import TaskRecord

    t = TaskRecord.from_attrs(attrs)
    return {"id": str(t.id), "name": t.name, "role": t.role, "source": t.source, "rule": t.rule,
            "n_train": t.n_train, "n_val": t.n_val, "n_test": t.n_test, "val_acc": t.val_acc,
            "representative": t.representative, "epochs": t.epochs,
            "genotype_hash": str(t.genotype_id) if t.genotype_id else None, "status": t.status}


def _compact(value: Any) -> str:
    """JSON on one line per top-level dict entry: long genotypes stay readable and fold in the table."""
    if isinstance(value, dict):
        return "\n".join(f"{k}: {json.dumps(v, separators=(', ', ': '))}" for k, v in value.items())
    return json.dumps(value, separators=(", ", ": "))


def _value_renderable(key: str, value: Any):
    if key == "val_acc":
        return Text(_accuracy(value))
    if key == "representative":
        return _epsilon_flag(value, long=True)
    if key == "status":
        return _status(value)
    if isinstance(value, dict) and value or isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        return plain(_compact(value))
    return plain(_text(value))


def _distance_table(st, task_id: str, names: dict[str, str]) -> Table | None:
    table = Table(title="distances (NaN/– = not computed)", title_justify="left")
    table.add_column("method")
    table.add_column("other task", no_wrap=True)
    table.add_column("d(other → this)", justify="right")
    table.add_column("d(this → other)", justify="right")
    rows = 0
    for method in st.distance_methods():
        matrix = st.distances(method)
        if task_id not in matrix.ids:
            continue
        k = matrix.ids.index(task_id)
        others = [i for i in range(len(matrix.ids)) if i != k]
        # nearest first, by the distance a task-aware space uses: d(base=other, target=this)
        others.sort(key=lambda i: (math.isnan(matrix.value[i, k]), matrix.value[i, k]))
        for i in others:
            table.add_row(method, names.get(matrix.ids[i], matrix.ids[i]),
                          _distance(matrix.value[i, k], matrix.std[i, k]),
                          _distance(matrix.value[k, i], matrix.std[k, i]))
            rows += 1
    return table if rows else None


def _distance(value: float, std: float) -> str:
    if math.isnan(value):
        return DASH
    return f"{value:.3f}" + (f" ± {std:.3f}" if not math.isnan(std) and std > 0 else "")


@tasks_app.command("show")
@handle_errors
def show_command(
    name: str = typer.Argument(..., help="Task name or id (a unique id prefix works too)."),
    store: Path | None = StoreOption,
    config: Path | None = ConfigOption,
) -> None:
    """Every stored attribute of one task, its stored arrays and its distances to the other tasks."""
    from store import NotFound
    from tanas_tui.common import console

    with _open(config, store) as st:
        try:
            task_id = st.find_task(name)
            task = st.task(task_id)
        except NotFound as exc:
            raise CliError(str(exc), ExitCode.NOT_FOUND) from None
        table = Table(show_header=False, title=f"task {task.get('name', task_id)}", title_justify="left")
        table.add_column("key", style="bold")
        table.add_column("value", overflow="fold")
        keys = [k for k in _SHOW_ORDER if k in task] + sorted(k for k in task if k not in _SHOW_ORDER)
        for key in keys:
            value = task[key]
            if key == "epochs" and task.get("probe_body") == "shared":    # not this task's training: say whose
                value = f"{value} (the shared body's shared_epochs; min_epochs does not apply to it)"
            table.add_row(key, _value_renderable(key, value))
        seeds = st.probe_seeds(task_id)
        table.add_row("stored probes", Text(f"seeds {', '.join(map(str, seeds))}" if seeds else DASH))
        fisher = st.fisher_length(task_id)
        table.add_row("stored Fisher", Text(f"{fisher:,} values" if fisher is not None else DASH))
        parts: list[Any] = [table]
        names = {t["id"]: str(t.get("name", t["id"])) for t in st.list_tasks()}
        distances = _distance_table(st, task_id, names)
        if distances is not None:
            parts.append(distances)
        console.print(Group(*parts))
