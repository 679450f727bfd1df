"""`tasks add`, `tasks remove`, `distances` and `nearest`: the task dictionary from the command line.

`tasks add` / `tasks remove` run in this process while holding the store's writer lock (the engine-process route
is separate). Every finished distance is stored at once, so Ctrl-C loses at most the pair in progress and running
the same `tasks add` again continues. `distances` and `nearest` only read the store.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import typer
from rich.table import Table
from rich.text import Text

from tanas_tui.runner import job_result, run_job
from engine.choices import DISTANCE_METHODS
from tanas_tui.common import ConfigOption, StoreOption
from tanas_tui.errors import CliError, handle_errors
from tanas_tui.exitcodes import ExitCode
from tanas_tui.units import pct

NAN = "·"
# Sequential colour ramp (dark purple -> teal -> yellow, after viridis): near tasks dark, far tasks bright.
RAMP = ((68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37))


def register(app: typer.Typer) -> None:
    from tanas_tui.commands.tasks import tasks_app

    tasks_app.command("add")(add_command)
    tasks_app.command("remove")(remove_command)
    app.command("distances")(distances_command)
    app.command("nearest")(nearest_command)


# ---------------------------------------------------------------------------------------------- tasks add / remove

def _split(values: list[str] | None) -> tuple[str, ...] | None:
    if not values:
        return None
    out = tuple(v.strip() for item in values for v in item.split(",") if v.strip())
    return out or None


@handle_errors
def add_command(
    name: str = typer.Argument(..., help="A task of the config's \\[\\[tasks]] / \\[target], or the new task's name."),
    source: str = typer.Option(None, "--source", help="Ad-hoc task: its data source."),
    positive: list[str] = typer.Option(None, "--positive", help="Ad-hoc binary task: positive class(es)."),
    classes: list[str] = typer.Option(None, "--classes", help="Ad-hoc multi-class task: classes (comma-separated)."),
    other: bool = typer.Option(False, "--other", help="Ad-hoc multi-class task: add an 'other' class."),
    limit: int = typer.Option(None, "--limit", help="Ad-hoc task: at most this many samples."),
    seed: int = typer.Option(None, "--seed", help="Ad-hoc task: split seed (default \\[project] seed)."),
    role: str = typer.Option(None, "--role", help="base | target (default: target for the config's \\[target])."),
    device: str = typer.Option(None, "--device", help="auto | cpu | cuda (overrides \\[project] device)."),
    config: Path = ConfigOption,
    store: Path = StoreOption,
) -> None:
    """Add a task to the dictionary: train its probe(s), store its Fisher, compute its row and column."""
    from engine.data.tasks import TaskDef
    from tanas_tui.common import console, load_cli_config, open_store

    cfg = load_cli_config(config, store, {"project.device": device} if device else None)
    adhoc = source is not None
    if not adhoc and (positive or classes or other or limit is not None or seed is not None):
        raise CliError("--positive/--classes/--other/--limit/--seed define an ad-hoc task and need --source")
    if adhoc:
        pos, cls = _split(positive), _split(classes)
        if (pos is None) == (cls is None):
            raise CliError(f"task {name!r}: give exactly one of --positive (binary) or --classes (multi-class)")
        taskdef = TaskDef(name=name, source=source, positive=pos, classes=cls, other=other, limit=limit,
                          seed=cfg.project.seed if seed is None else seed)
    elif name not in {t.name for t in cfg.all_tasks()}:
        raise CliError(f"no task named {name!r} in {cfg.file or 'the config'} (tasks: "
                       f"{', '.join(t.name for t in cfg.all_tasks()) or 'none'}); an ad-hoc task needs --source",
                       ExitCode.NOT_FOUND)
    else:
        taskdef = cfg.task(name)
    if role is None:
        role = "target" if (not adhoc and cfg.target is not None and cfg.target.name == name) else "base"
    if role not in ("base", "target"):
        raise CliError(f"--role must be base or target, got {role!r}")

    import dataclasses

    out = job_result(run_job("add_task", cfg, device=device, announce="adding the task there",
                             task=dataclasses.asdict(taskdef), role=role))
    with open_store(cfg, "r") as st:
        task_id = out["task_id"]
        attrs = st.task(task_id)
    computed = str(out["computed"])
    flag = "yes" if attrs.get("representative") else "no"
    console.print(f"task {attrs['name']} ({task_id}): val acc {pct(attrs.get('val_acc'))}, "
                  f"ε-representative {flag}; {computed} distances computed "
                  f"({cfg.dictionary.method}); store {cfg.store_path}")


@handle_errors
def remove_command(
    name: str = typer.Argument(..., help="Task name or id."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    config: Path = ConfigOption,
    store: Path = StoreOption,
) -> None:
    """Remove a task: its probe, its Fisher, and its row and column of every distance matrix."""
    from tanas_tui.common import console, load_cli_config, open_store

    cfg = load_cli_config(config, store, check_classes=False)
    with open_store(cfg, "r") as st:
        interrupted = st.removal_under_way(name)
        if interrupted is None:
            task_id = st.find_task(name)
            label = st.task(task_id).get("name", task_id)
    if interrupted is not None:   # a killed `tasks remove` of this task: the next writer's open finishes it
        with open_store(cfg, "w") as st:
            done = [line for line in st.repaired if interrupted in line]
        console.print(done[0] if done else f"removed task {name} ({interrupted})")
        return
    if not yes:
        import sys

        if not sys.stdin.isatty():
            raise CliError(f"not removed: confirm removing task {label!r} on a terminal, or pass --yes",
                           ExitCode.USAGE)
        if not typer.confirm(f"remove task {label} ({task_id}) and its distances?", default=False):
            raise CliError("not removed", ExitCode.USAGE)
    job_result(run_job("remove_task", cfg, on_event=_quiet, announce="removing the task there", task=task_id))
    console.print(f"removed task {label} ({task_id})")


def _quiet(event) -> None:
    """Removing a task is quick: no progress lines."""


# ---------------------------------------------------------------------------------------------- distances

def _ramp(x: float) -> tuple[int, int, int]:
    x = min(max(x, 0.0), 1.0) * (len(RAMP) - 1)
    i = min(int(x), len(RAMP) - 2)
    f = x - i
    return tuple(round(a + (b - a) * f) for a, b in zip(RAMP[i], RAMP[i + 1]))  # type: ignore[return-value]


def _cell(value: float, std: float, lo: float, hi: float, show_std: bool, fmt: str) -> Text:
    if math.isnan(value):
        return Text(NAN, justify="center")
    text = format(value, fmt) + (f"±{format(std, fmt)}" if show_std and not math.isnan(std) else "")
    r, g, b = _ramp((value - lo) / (hi - lo) if hi > lo else 0.0)
    ink = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "white"
    return Text(text, style=f"{ink} on rgb({r},{g},{b})", justify="right")


def distance_table(matrix, names: dict[str, str], show_std: bool) -> Table:
    """Rows = source b, columns = target t, cell d(b, t), shaded from the smallest to the largest off-diagonal value."""
    n = len(matrix.ids)
    off = matrix.value[~np.eye(n, dtype=bool)] if n else np.array([])
    off = off[~np.isnan(off)]
    lo, hi = (float(off.min()), float(off.max())) if off.size else (0.0, 1.0)
    fmt = ".1f" if matrix.method == "transfer" else ".3f"
    unit = " (% of transform weights kept)" if matrix.method == "transfer" else ""
    table = Table(title=f"{matrix.method} task distance d(source, target){unit}", show_lines=False)
    table.add_column("source \\ target", style="bold", no_wrap=True)
    for tid in matrix.ids:
        table.add_column(names.get(tid, tid), justify="right", no_wrap=True)
    for i, sid in enumerate(matrix.ids):
        table.add_row(names.get(sid, sid), *[_cell(float(matrix.value[i, j]), float(matrix.std[i, j]), lo, hi,
                                                   show_std, fmt) for j in range(n)])
    return table


def write_csv(path: Path, matrix, names: dict[str, str], show_std: bool) -> None:
    labels = [names.get(t, t) for t in matrix.ids]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["source"] + labels + ([f"{label} std" for label in labels] if show_std else []))
        for i, sid in enumerate(matrix.ids):
            values = ["" if math.isnan(v) else f"{v:.6g}" for v in matrix.value[i].tolist()]
            stds = ["" if math.isnan(v) else f"{v:.6g}" for v in matrix.std[i].tolist()] if show_std else []
            writer.writerow([labels[i]] + values + stds)


def _check_method(method: str | None) -> None:
    if method is not None and method not in DISTANCE_METHODS:
        raise CliError(f"--method must be {' or '.join(DISTANCE_METHODS)}, got {method!r}", ExitCode.USAGE)


def _read(config: Path | None, store: Path | None):
    """The command's config, resolved once, and its store opened for reading."""
    from tanas_tui.common import load_cli_config, open_store

    cfg = load_cli_config(config, store, check_classes=False)
    return cfg, open_store(cfg, "r")


@handle_errors
def distances_command(
    method: str = typer.Option(None, "--method", "-m", help=" | ".join(DISTANCE_METHODS) + " (default \\[dictionary] method; with --check: every stored method)."),
    csv_file: Path = typer.Option(None, "--csv", help="Also write the matrix to this CSV file."),
    check: bool = typer.Option(False, "--check", help="Check that the distances put same-group tasks together (exit 7 when not)."),
    as_json: bool = typer.Option(False, "--json", help="With --check: print the report as JSON."),
    noise_floor: bool = typer.Option(False, "--noise-floor", help="With --check: measure the noise floor when it is missing (trains)."),
    permutations: int = typer.Option(1000, "--permutations", help="With --check: label permutations for the p-value."),
    config: Path = ConfigOption,
    store: Path = StoreOption,
) -> None:
    """The distance matrix: rows = source task b, columns = target task t, cells d(b, t); · = not computed.
    Symmetric (d(b, t) = d(t, b)) with the default shared-body Fisher (fisher_form "domain", also "embedding");
    directed only with fisher_form "pair" and the transfer method."""
    from tanas_tui.common import console

    if check:
        return check_command(method, as_json, noise_floor, permutations, config, store)
    if as_json or noise_floor:
        raise CliError("--json and --noise-floor go with --check")
    _check_method(method)          # a usage error, before any store is opened
    cfg, st = _read(config, store)
    method = method or cfg.dictionary.method
    with st:
        matrix = st.distances(method)
        names = {t["id"]: t.get("name", t["id"]) for t in st.list_tasks()}
    if not matrix.ids:
        raise CliError(f"no {method!r} distances in store {cfg.store_path}: add tasks with `tanas-tui tasks add`"
                       + (" (or compute them with `tanas-tui run`)" if method == "transfer" else ""),
                       ExitCode.NOT_FOUND)
    seeds = int(matrix.params.get("seeds", 1) or 1)
    show_std = seeds > 1
    console.print(distance_table(matrix, names, show_std))
    missing = int(np.isnan(matrix.value).sum())
    notes = [f"{len(matrix.ids)} tasks"]
    if show_std:
        notes.append(f"mean ± std over {seeds} seeds")
    if missing:
        notes.append(f"{missing} entries not computed yet ({NAN})")
    console.print(", ".join(notes))
    if csv_file is not None:
        write_csv(csv_file, matrix, names, show_std)
        console.print(f"wrote {csv_file}")


def check_command(method: str | None, as_json: bool, measure_floor: bool, permutations: int, config: Path | None,
                  store: Path | None) -> None:
    """`distances --check`: the similarity-quality report per method (tanas_tui/similarity_check.py)."""
    import json

    from tanas_tui.common import console, open_store
    from tanas_tui.similarity_check import THRESHOLDS, check_matrix, task_groups

    if permutations < 1:
        raise CliError(f"--permutations must be at least 1, got {permutations}")
    _check_method(method)
    cfg, st = _read(config, store)
    with st:
        stored = [m for m in st.distance_methods() if st.distance_ids(m)]
    methods = [method] if method else stored
    absent = [m for m in methods if m not in stored]
    if not methods or absent:
        raise CliError(f"no {(absent or [method or 'distance'])[0]!r} distances in store {cfg.store_path}: add tasks "
                       "with `tanas-tui tasks add` or build the dictionary with `tanas-tui run`", ExitCode.NOT_FOUND)
    notes = []
    if measure_floor:
        with open_store(cfg, "r") as again:
            todo = [m for m in methods if not again.distance_subset(m, []).noise_floor]
        for m in todo:
            if not as_json:
                console.print(f"measuring the {m} noise floor (one extra probe or head pair per task)…")
            job_result(run_job("noise_floor", cfg, on_event=_quiet if as_json else None,
                               announce="measuring the noise floor there", method=m))
            notes.append(f"measured the {m} noise floor now")
    with open_store(cfg, "r") as st:
        matrices, sampled = {}, {}
        for m in methods:
            matrices[m], sampled[m] = _check_sample(st, m)
        if all(k == n for k, n in sampled.values()):
            tasks = st.list_tasks()
        else:     # only the checked tasks' attributes
            tasks = [a for a in st.tasks_attrs(list(dict.fromkeys(t for mx in matrices.values() for t in mx.ids)))
                     if a is not None]
        names = {t["id"]: t.get("name", t["id"]) for t in tasks}
        groups = task_groups(tasks, cfg)
        reports = [check_matrix(matrices[m], groups, names, permutations=permutations) for m in methods]
    samples = []
    for m, (kept, total) in sampled.items():
        if kept < total:
            samples.append(f"{m}: checked on a random sample of {kept:,} of its {total:,} tasks (seed {SAMPLE_SEED}; "
                           f"more than {CHECK_MAX:,} tasks)")
    notes += samples
    detected = all(r.detected for r in reports)
    unseen = {t.get("name", t["id"]): t.get("source") for t in tasks if t.get("unseen_source")}
    if as_json:
        typer.echo(json.dumps({"detected": detected, "thresholds": THRESHOLDS, "notes": notes,
                               "unseen_source": unseen,
                               "sampled": {m: {"tasks": k, "of": n} for m, (k, n) in sampled.items() if k < n},
                               "methods": {r.method: r.to_dict() for r in reports}}, indent=2))
    else:
        for line in samples:
            console.print(line, highlight=False)
        for r in reports:
            _print_check(console, r)
        if unseen:
            body = next((t.get("body_sources") for t in tasks if t.get("body_sources")), [])
            console.print(f"notice: {len(unseen)} task(s) come from a source the shared body never trained on "
                          f"(it learned {', '.join(body)}): " + ", ".join(f"{n} ({s})" for n, s in unseen.items())
                          + "; their distances come from features of other images (refit: build into a new store)",
                          markup=False, highlight=False, soft_wrap=True)
        console.print(THRESHOLDS, highlight=False)
    if not detected:
        raise typer.Exit(int(ExitCode.NO_STRUCTURE))


CHECK_MAX = 2_000      # `distances --check` reads every pair up to this many tasks; beyond, a random sample of them
SAMPLE_SEED = 0


def _check_sample(st, method: str):
    """(matrix to check, (tasks in it, tasks in the store's matrix)): all of it up to CHECK_MAX tasks, else a seeded
    random sample of CHECK_MAX tasks read as a sub-matrix (their rows' and columns' chunks only)."""
    ids = st.distance_ids(method)
    if len(ids) <= CHECK_MAX:
        return st.distances(method), (len(ids), len(ids))
    pick = np.sort(np.random.default_rng(SAMPLE_SEED).choice(len(ids), CHECK_MAX, replace=False))
    return st.distance_subset(method, [ids[i] for i in pick]), (CHECK_MAX, len(ids))


def _print_check(console, r) -> None:
    console.print(f"{r.method}: {r.tasks} tasks in {len(r.groups)} groups "
                  f"({', '.join(f'{g} {n}' for g, n in r.groups.items())})", highlight=False)
    if r.left_out:
        console.print(f"  left out (distances not computed yet): {', '.join(r.left_out)}", highlight=False)
    if r.hit_rate is None:
        console.print(f"  not checked: {r.reason}", highlight=False)
        return
    lines = [f"nearest task in the same group: {r.hits}/{r.counted} ({r.hit_rate:.2f})",
             f"contrast {r.contrast:.2f} pooled std (same-group mean {r.same_mean:.4g}, cross-group mean "
             f"{r.cross_mean:.4g}), permutation p {r.p_value:.3f}"]
    if r.seeds > 1:
        lines.append(f"{r.seeds} seeds: per-cell std {r.std_mean:.3g} on average; " + (
            f"nearest task the same under every seed for {r.nearest_unchanged:.0%} of the tasks, seed r "
            f"{r.seed_r:.2f}" if r.nearest_unchanged is not None else
            "per-seed values not stored (matrix built before they were kept): nearest-task stability unknown"))
    if r.noise_floor:
        nf = r.noise_floor
        lines.append(f"noise floor ({nf['kind']}, {nf['tasks']} tasks): mean {nf['mean']:.4g}, max {nf['max']:.4g} "
                     f"{'<' if nf['below'] else '≥'} smallest between-group distance {nf['min_between']:.4g}")
    else:
        lines.append("noise floor: not measured (run with --noise-floor to measure it)")
    lines.append("structure detected" if r.detected else f"structure NOT detected: {r.reason}")
    for line in lines:
        console.print("  " + line, highlight=False)


@handle_errors
def nearest_command(
    target: str = typer.Argument(..., help="Target task name or id."),
    k: int = typer.Option(3, "-k", help="How many tasks."),
    method: str = typer.Option(None, "--method", "-m", help=" | ".join(DISTANCE_METHODS) + " (default \\[dictionary] method)."),
    config: Path = ConfigOption,
    store: Path = StoreOption,
) -> None:
    """The k dictionary tasks b with the smallest d(b, TARGET)."""
    from store.queries import nearest
    from tanas_tui.common import console

    if k < 1:
        raise CliError(f"-k must be at least 1, got {k}")
    _check_method(method)
    cfg, st = _read(config, store)
    method = method or cfg.dictionary.method
    from tanas_tui.similarity_check import noise_level

    with st:
        rows = nearest(st, target, k, method)
        matrix = st.distance_subset(method, [])      # params and noise floor only: no N x N read
        seeds = int(matrix.params.get("seeds", 1) or 1)
    if not rows:
        raise CliError(f"no dictionary task has a computed {method!r} distance to {target!r}", ExitCode.NOT_FOUND)
    table = Table(title=f"nearest tasks to {target} ({method})")
    table.add_column("#", justify="right")
    table.add_column("task", no_wrap=True)
    table.add_column("id", no_wrap=True)
    table.add_column("d(task, target)", justify="right")
    from engine.similarity.quality import nearest_with_ties

    dist = [n.distance for n in rows]
    if seeds > 1:
        spread_note, ties = f"std over {seeds} seeds", nearest_with_ties(dist, [n.std for n in rows])
    else:
        label, level = noise_level(matrix)
        spread_note = f"the noise floor (mean same-task distance {level:.4g})" if level is not None else ""
        ties = nearest_with_ties(dist, noise=level) if level is not None else None
    if ties is not None:
        table.add_column("")
    fmt = ".1f" if method == "transfer" else ".3f"
    tied_any = False
    for rank, n in enumerate(rows, 1):
        value = format(n.distance, fmt) + (f" ± {format(n.std, fmt)}" if seeds > 1 else "")
        cells = [str(rank), n.name, n.task_id, value]
        if ties is not None:
            tied = ties[rank - 1].tied
            tied_any |= tied
            cells.append("tied within noise" if tied else "")
        table.add_row(*cells)
    console.print(table)
    if ties is None:
        console.print("ties within noise: unknown (one seed and no noise floor; measure it with "
                      "`tanas-tui distances --check --noise-floor`)", highlight=False)
    else:
        console.print(f"a neighbour is tied within noise when it lies within one std of the one ranked before it; "
                      f"std from {spread_note}", highlight=False)
