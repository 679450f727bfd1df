"""`tanas-tui search TARGET`, `tanas-tui searches list|show`, `tanas-tui export RUN`.

`search` runs FUSE in this process while holding the store's writer lock (so it fails with a clear message when an
engine or another command is writing the store). Running it again with the same target, space and seed resumes a
stopped run from its last checkpoint, or prints the stored result of a finished one.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.table import Table

from engine.choices import ARMS, EXPORT_FORMATS, SPACE_KINDS
from tanas_tui.common import ConfigOption, StoreOption
from tanas_tui.errors import CliError, handle_errors
from tanas_tui.safe_text import markup_safe
from tanas_tui.exitcodes import ExitCode
from tanas_tui.machine_output import CsvOption, JsonOption, emit, wanted
from tanas_tui.units import cost, device_hours, duration, pct, round_number

searches_app = typer.Typer(help="Stored searches: list them, show one.", no_args_is_help=True)



def register(app: typer.Typer) -> None:
    app.command("search")(search)
    app.command("export")(export)
    app.add_typer(searches_app, name="searches")


# -- search --------------------------------------------------------------------------------------------------------
@handle_errors
def search(
    target: str = typer.Argument(..., help="Task to search for: the config's \\[target] or one of its \\[\\[tasks]]."),
    space: str = typer.Option(None, "--space", help=" | ".join(SPACE_KINDS) + " (default: \\[space] kind)."),
    config: Path = ConfigOption,
    store: Path = StoreOption,
    seed: int = typer.Option(None, "--seed", help="Search seed (default: \\[project] seed); part of the run id."),
    run_id: str = typer.Option(None, "--run-id", help="Run id (default: TARGET-SPACE-SEED)."),
    device: str = typer.Option(None, "--device", help="auto | cpu | cuda (overrides \\[project] device)."),
    detach: bool = typer.Option(False, "--detach", "-d", help="Run it in the engine (started if needed) and return; "
                                "follow it with `tanas-tui attach`."),
) -> None:
    """Run FUSE on TARGET (resuming a stopped run with the same id) and print the result."""
    from engine.choices import COMPARISON_LABELS
    from store.records import table_row
    from tanas_tui.common import console, load_cli_config
    from tanas_tui.runner import job_result, run_job
    from tanas_tui.tables import comparison_table

    overrides = {"project.device": device} if device else None
    cfg = load_cli_config(config, store, overrides)
    kind = space or cfg.space.kind
    if kind not in SPACE_KINDS:
        raise CliError(f"--space must be one of {', '.join(SPACE_KINDS)}, got {kind!r}", ExitCode.USAGE)
    names = [t.name for t in cfg.all_tasks()]
    if target not in names:
        where = f"the config's target is {cfg.target.name}; " if cfg.target else ""
        raise CliError(f"no task named {target!r} in {cfg.file or 'the config'} ({where}its tasks: "
                       f"{', '.join(names)}){_stored_runs(cfg)}", ExitCode.NOT_FOUND)
    params = {k: v for k, v in (("target", target), ("space", kind), ("run_id", run_id), ("seed", seed))
              if v is not None}
    if detach:
        from engine.service.jobs import submission
        from tanas_tui.commands.run import detach_job

        submission("start_search", params, cfg)     # a job that cannot run: exit 2 before the engine is started
        detach_job(cfg, "start_search", params, device, what="search")
        return
    result = job_result(run_job("start_search", cfg, device=device, announce="running the search there", **params))
    console.print(comparison_table([table_row(COMPARISON_LABELS[kind], result)], title=f"Result: {target}"))
    console.print(f"run {result['run_id']}: genotype {result['hash']}, test error {result['test_error']:.2f} %, "
                  f"{result['params_m']:.3f} M params, cost {cost(result)} on {result['device']}",
                  soft_wrap=True)
    if result.get("space_size_log10") is not None:
        console.print(f"space {kind} ({result.get('space_form', 'operations')} form): "
                      f"10^{result['space_size_log10']:.1f} genotypes", soft_wrap=True)


def _stored_runs(cfg) -> str:
    """'; stored runs: a (target moon), ...' to choose from (resume one with --run-id), or '' without a store."""
    from store import StoreError
    from store.records import SearchRunRecord

    if not cfg.store_path.exists():
        return ""
    try:
        with _open_read(cfg) as st:
            runs = [(r.id, r.target_name) for r in map(SearchRunRecord.from_attrs, st.list_searches())]
    except (StoreError, CliError):
        return ""
    if not runs:
        return f"; the store {cfg.store_path} holds no runs yet"
    shown = ", ".join(f"{rid} (target {name or '?'})" for rid, name in runs[:12])
    more = f", … (+{len(runs) - 12}; `tanas-tui searches list`)" if len(runs) > 12 else ""
    return f"; stored runs: {shown}{more} (resume one with `tanas-tui search TARGET --run-id RUN`)"


# -- searches list / show ------------------------------------------------------------------------------------------
def _config(config: Path | None, store: Path | None):
    """The command's config, resolved once (reading the store needs no data source)."""
    from tanas_tui.common import load_cli_config

    return load_cli_config(config, store, check_classes=False)


def _open_read(cfg):
    from tanas_tui.common import open_store

    if not cfg.store_path.exists():
        raise CliError(f"no store at {cfg.store_path}; run `tanas-tui run` or `tanas-tui search` first",
                       ExitCode.STORE)
    return open_store(cfg, "r")


def _fmt(value: Any, digits: int = 2, suffix: str = "") -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return f"{value:.{digits}f}{suffix}"
    return "–"


@searches_app.command("list")
@handle_errors
def list_searches(
    config: Path = ConfigOption,
    store: Path = StoreOption,
    as_json: bool = JsonOption,
    as_csv: bool = CsvOption,
) -> None:
    """Every stored run: status, committed α steps and result."""
    from store.records import SearchRunRecord
    from tanas_tui.common import console

    fmt = wanted(as_json, as_csv)
    with _open_read(_config(config, store)) as st:
        runs = st.list_searches()
    if fmt is not None:
        emit([_search_row(a) for a in runs], fmt, SEARCH_COLUMNS)
        return
    table = Table(title="searches", title_justify="left")
    # The run id (TARGET-SPACE-SEED) already names target, space and seed; it never wraps so it can be copied.
    table.add_column("run", no_wrap=True)
    numeric = ("steps", "err %", "M params", "cost", "dev-h")
    for column in ("status",) + numeric + ("genotype",):
        table.add_column(column, justify="right" if column in numeric else "left", overflow="fold")
    for a in map(SearchRunRecord.from_attrs, runs):
        r = a.result or {}
        table.add_row(a.id, str(a.status), str(a.committed_steps),
                      _fmt(r.get("test_error")), _fmt(r.get("params_m"), 3), duration(r.get("seconds")) if r else "–",
                      _fmt(device_hours(r), 4),
                      str(r.get("hash", "–")))
    if not runs:
        console.print("no searches in the store yet")
        return
    console.print(table)


SEARCH_COLUMNS = ("id", "kind", "target", "space", "seed", "status", "steps", "test_error", "params", "params_m",
                  "seconds", "cost_device_hours", "device", "hash", "created", "finished")


def _search_row(attrs: dict) -> dict:
    from store.records import SearchRunRecord

    a = SearchRunRecord.from_attrs(attrs)
    r = a.result if isinstance(a.result, dict) else {}
    return {"id": a.id, "kind": a.kind, "target": a.target_name, "space": a.space_kind, "seed": a.seed,
            "status": a.status, "steps": a.committed_steps, "test_error": r.get("test_error"), "params": r.get("params"),
            "params_m": r.get("params_m"), "seconds": r.get("seconds"), "cost_device_hours": device_hours(r),
            "device": r.get("device", a.device), "hash": r.get("hash"), "created": a.created, "finished": a.finished}


@searches_app.command("remove")
@handle_errors
def remove_search(
    run: str = typer.Argument(..., help="Run id (see `tanas-tui searches list`)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    config: Path = ConfigOption,
    store: Path = StoreOption,
) -> None:
    """Delete a stored run: its α history, candidates, checkpoint and result."""
    from store.records import SearchRunRecord
    from tanas_tui.common import console
    from tanas_tui.runner import job_result, run_job

    cfg = _config(config, store)
    with _open_read(cfg) as st:
        status = SearchRunRecord.from_attrs(st.search(run)).status
    if not yes and not typer.confirm(f"delete search {run} ({status})?", default=False):
        raise CliError("nothing deleted", ExitCode.INTERRUPTED)
    job_result(run_job("remove_search", cfg, on_event=_quiet, announce="deleting it there", run=run))
    console.print(f"deleted search {run}")


@searches_app.command("show")
@handle_errors
def show_search(
    run: str = typer.Argument(..., help="Run id (see `tanas-tui searches list`)."),
    config: Path = ConfigOption,
    store: Path = StoreOption,
) -> None:
    """One run: its settings, result, per-round incumbents and the α trajectory's summary."""
    from engine.space.genotype import Genotype
    from store.records import SearchRunRecord
    from tanas_tui.common import console

    with _open_read(_config(config, store)) as st:
        a = SearchRunRecord.from_attrs(st.search(run))
        rec = st.read_search(run)
    console.print(f"[bold]search {markup_safe(run)}[/] ({a.kind}): target {markup_safe(a.target_name or '?')}, "
                  f"space {a.space_kind or '–'}, seed {'–' if a.seed is None else a.seed}, status {a.status}, "
                  f"device {a.device or '?'}", markup=True)
    for key in ("created", "resumed", "stopped", "finished", "error"):
        if getattr(a, key):
            console.print(f"  {key}: {getattr(a, key)}")
    if a.config:
        console.print("  config: " + ", ".join(f"{k}={v}" for k, v in a.config.items()))
    if a.space is not None:
        size = f", 10^{a.space_size_log10:.1f} genotypes" if a.space_size_log10 is not None else ""
        console.print(f"  space: {a.space_kind} ({(a.space or {}).get('form', 'operations')} form{size})")
    prov = (a.space or {}).get("provenance") or []
    if prov:
        console.print("  space formed by: " + ", ".join(
            f"{p.get('name', p.get('task_id'))} (d={_fmt(p.get('distance'), 3)})" for p in prov))
    _print_rounds(console, a.rounds or [])
    if rec.steps:
        first, last = rec.alpha[0], rec.alpha[-1]
        p = np.exp(last - last.max())
        p /= p.sum()
        console.print(f"  α trajectory: {rec.steps} steps × {rec.num_candidates} candidates; last α "
                      f"[{', '.join(f'{v:+.3f}' for v in last)}] (softmax [{', '.join(f'{v:.3f}' for v in p)}]), "
                      f"first [{', '.join(f'{v:+.3f}' for v in first)}]; val loss {rec.loss_val[0]:.4f} → "
                      f"{rec.loss_val[-1]:.4f}")
    for w in a.warnings or []:
        console.print(f"  [yellow]warning:[/] {markup_safe(w)}", markup=True)
    result = a.result
    if result:
        console.print(f"  result: test error {_fmt(result.get('test_error'))} %, params "
                      f"{_fmt(result.get('params_m'), 3)} M, cost {cost(result)} on {result.get('device', '?')}")
        if result.get("genotype"):
            from tanas_tui.genotype_art import genotype_picture, picture_width

            console.print(Genotype.from_dict(result["genotype"]).render(), highlight=False, markup=False)
            console.print(genotype_picture(result["genotype"], title=f"genotype {result.get('hash', '?')}",
                                           side_by_side=console.width >= picture_width(result["genotype"])))
    else:
        console.print("  no result yet (resume with `tanas-tui search` and the same target, space and seed)")


def _print_rounds(console, rounds: list[dict[str, Any]]) -> None:
    if not rounds:
        return
    table = Table(title="rounds", title_justify="left")
    for column in ("round", "incumbent", "α (final)", "entropy", "val acc", "param-free share"):
        table.add_column(column)
    for r in rounds:
        table.add_row(round_number(r["round"]), str(r["incumbent"]), " ".join(f"{a:+.3f}" for a in r.get("alpha", [])),
                      _fmt(r.get("entropy"), 3), " ".join(pct(a) for a in r.get("val_acc", [])),
                      _fmt(r.get("parameter_free_share"), 2))
    console.print(table)


# -- searches compare ----------------------------------------------------------------------------------------------
@searches_app.command("compare")
@handle_errors
def compare_searches(
    target: str = typer.Option(None, "--target", "-t", help="Target task name or id (default: the store's only "
                               "target with results)."),
    as_json: bool = typer.Option(False, "--json", help="Write the table as JSON (every comparison detail; field "
                                 "names carry their unit: test_error_pct_mean, diff_vs_reference_pp...)."),
    as_csv: bool = typer.Option(False, "--csv", help="Write the table as CSV: the provenance first, as # lines, then "
                                "the rows (pandas.read_csv(f, comment=\"#\") reads exactly the rows)."),
    as_markdown: bool = typer.Option(False, "--markdown", help="Write the table as Markdown, ready for a paper."),
    output: Path = typer.Option(None, "--output", "-o", help="File to write (default: standard output)."),
    plot: bool = typer.Option(False, "--plot", help="Also draw each arm's test error against its search budget "
                              "(the budget sweep: runs at several \\[search] rounds)."),
    reference: str = typer.Option(None, "--reference", help="The arm every other is compared with (default "
                                  "fuse-task-aware): " + ", ".join(a for a in ARMS if a != "fixed") + "."),
    config: Path = ConfigOption,
    store: Path = StoreOption,
) -> None:
    """The arms' result table from the stored runs: test error mean ± std with 95 % intervals, params, cost, budget,
    and each arm's paired difference from FUSE in the task-aware space (p-value; 'not distinguishable' when the
    test does not separate them), with the settings that produced it (config hash, seeds, package versions).
    Runs made with different \\[search] settings are never pooled: each configuration gets its own rows (the config
    column), compared with the task-aware arm of the same configuration."""
    from engine.results.collect import TableError, result_table
    from engine.results.table import to_csv, to_json, to_markdown
    from tanas_tui.common import console
    from tanas_tui.sweep import budgets, sweep_plot, sweep_verdicts
    from tanas_tui.tables import result_table as rich_table, wide_console

    if reference is not None and (reference not in ARMS or reference == "fixed"):
        raise CliError(f"--reference must be one of {', '.join(a for a in ARMS if a != 'fixed')}, got {reference!r}",
                       ExitCode.USAGE)
    chosen = [name for name, on in (("json", as_json), ("csv", as_csv), ("markdown", as_markdown)) if on]
    if len(chosen) > 1:
        raise CliError(f"choose one output format, got {', '.join('--' + c for c in chosen)}", ExitCode.USAGE)
    with _open_read(_config(config, store)) as st:
        try:
            table = result_table(st, target, reference=reference)
        except TableError as exc:
            raise CliError(str(exc), ExitCode.NOT_FOUND) from None
    if not chosen:
        if output is not None:
            raise CliError("--output needs a format: --json, --csv or --markdown", ExitCode.USAGE)
        name = table.provenance.get("target", "?")
        wide_console(console).print(rich_table(table.to_dict(), title=f"Result: {name}"))
        prov = table.provenance
        console.print(f"config hash {prov.get('config_hash')}, seeds {prov.get('seeds')}, "
                      + ", ".join(f"{k} {v}" for k, v in (prov.get("packages") or {}).items() if v), soft_wrap=True)
        data = table.to_dict()
        if len(budgets(data)) > 1:
            for line in sweep_verdicts(data):
                console.print(line, markup=False, highlight=False, soft_wrap=True)
        if plot:
            console.print(sweep_plot(data), markup=False, highlight=False, soft_wrap=True)
        return
    if plot:
        raise CliError("--plot draws on the terminal: leave out --json, --csv and --markdown", ExitCode.USAGE)
    text = {"json": to_json, "csv": to_csv, "markdown": to_markdown}[chosen[0]](table)
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    try:
        Path(output).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror or exc}", ExitCode.USAGE) from None
    console.print(f"wrote the {chosen[0]} table of {table.provenance.get('target')} ({len(table.rows)} arms) to "
                  f"{output}")


# -- export --------------------------------------------------------------------------------------------------------
@handle_errors
def export(
    run: str = typer.Argument(..., help="Run id (see `tanas-tui searches list`)."),
    fmt: str = typer.Option("genotype", "--format", "-f", help=" | ".join(EXPORT_FORMATS)),
    output: Path = typer.Option(..., "--output", "-o", help="File to write (its directory must exist)."),
    force: bool = typer.Option(False, "--force", help="Overwrite the output file if it exists."),
    config: Path = ConfigOption,
    store: Path = StoreOption,
) -> None:
    """Write a finished run's architecture (JSON) or trained network (TorchScript / ONNX)."""
    from store.records import SearchRunRecord
    from tanas_tui.common import console
    from tanas_tui.runner import job_result, run_job

    from tanas_tui.export_target import ExportTargetError, check_output

    if fmt not in EXPORT_FORMATS:
        raise CliError(f"--format must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}", ExitCode.USAGE)
    try:
        output = check_output(output, force, fmt)
    except ExportTargetError as exc:
        raise CliError(f"--output: {exc}", ExitCode.USAGE) from None
    cfg = _config(config, store)
    with _open_read(cfg) as st:
        a = SearchRunRecord.from_attrs(st.search(run))
        result = a.result or {}
        if a.status != "done" or not result:
            raise CliError(f"search {run!r} is not finished (status: {a.status}); resume it with "
                           f"`tanas-tui search` first", ExitCode.USAGE)
        if not result.get("genotype"):
            raise CliError(f"run {run!r} is a fixed network ({result.get('hash')}), not a "
                           f"searched genotype; export supports searched runs", ExitCode.USAGE)
    from tanas_tui.headless import working

    with working(console, f"exporting {fmt} of {run}") as step:
        out = job_result(run_job("export", cfg, on_event=_quiet, run=run, format=fmt,
                                 output=str(Path(output).resolve())))
    console.print(f"wrote {fmt} of {run} (genotype {out['hash']}) to {out['path']} in {step.seconds:.1f} s",
                  soft_wrap=True)
    spec = out.get("input_spec")
    if spec:
        shape, classes = spec["input"]["shape"], spec["classes"]
        console.print(f"input: {spec['input']['dtype']} {spec['input']['layout']} "
                      f"[{', '.join(map(str, shape))}], {spec['input']['normalisation']}", soft_wrap=True)
        console.print(f"output: {spec['output']['meaning'].split(';')[0]} over {len(classes)} classes in this order: "
                      + ", ".join(f"{i} {name}" for i, name in enumerate(classes)), soft_wrap=True)
        console.print(f"input spec written to {out['input_spec_path']}", soft_wrap=True)


def _quiet(event) -> None:
    """Export is quick: no progress lines."""
