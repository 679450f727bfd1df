"""`tanas-tui premise TARGET` and `tanas-tui genotypes check`.

Premise: does the distance predict which dictionary tasks' genotypes do well on TARGET?

Runs the premise check (engine.search.premise) as a job, here or in the running engine, and prints each checked
task's distance and target val error, the rank correlations with their permutation p-value and the near-minus-far
difference. Exit 7 when the premise is not supported (τ ≤ 0 or p ≥ 0.05), as `distances --check` exits 7.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from tanas_tui.common import ConfigOption, StoreOption
from tanas_tui.errors import CliError, handle_errors
from tanas_tui.exitcodes import ExitCode
from tanas_tui.safe_text import markup_safe


genotypes_app = typer.Typer(help="The dictionary's base genotypes: are they worth transferring?", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("premise")(premise)
    app.add_typer(genotypes_app, name="genotypes")


def _quiet(event) -> None:
    """--json: the record alone on stdout."""


def _fmt(value: Any, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def premise_table(record: dict[str, Any]) -> Table:
    table = Table(title=f"Premise check: {markup_safe(record['target'])}", title_justify="left")
    longest = max((len(r["name"]) for r in record["rows"]), default=4)
    table.add_column("task", min_width=min(longest, 40), overflow="fold")   # names are never cut
    for name, justify in (("group", "left"), ("d(b, t)", "right"), ("genotype", "left"), ("val error %", "right"),
                          ("per seed", "right")):
        table.add_column(name, justify=justify)
    for row in record["rows"]:
        table.add_row(markup_safe(row["name"]), row["group"], f"{row['distance']:.4g}",
                      f"{row.get('genotype_hash') or '–'} ({row.get('genotype_source', 'search')})",
                      f"{row['val_error']:.2f}", " ".join(f"{e:.1f}" for e in row["val_errors"]))
    return table


def summary_lines(record: dict[str, Any]) -> list[str]:
    from engine.results.premise import verdict

    s, nf, st = record["stats"], record["stats"]["near_minus_far"], record["settings"]
    interval = ("" if nf["low"] is None else f" [{nf['low']:+.2f}, {nf['high']:+.2f}] (paired t, 95 %)")
    return [
        f"Kendall τ {_fmt(s['kendall_tau'], '+.3f')} (one-sided permutation p = {s['p']:.3g}, {s['p_kind']}), "
        f"Spearman ρ {_fmt(s['spearman'], '+.3f')}, weighted τ {_fmt(s['weighted_tau'], '+.3f')}, "
        f"over {s['tasks']} tasks",
        f"near − far val error: {nf['mean']:+.2f} points{interval} over {nf['seeds']} seeds "
        f"(k = {st['k']} nearest vs k farthest; negative: the nearest tasks' genotypes are better)",
        f"budget: {st['epochs']} epochs per genotype on the target's train split, {st['seeds']} seeds, scored on "
        f"{record['val_samples']} val samples (the test split is not read); {record['seconds']:.0f} s",
        verdict(s),
    ]


@handle_errors
def premise(
    target: str = typer.Argument(..., help="The target task: the config's \\[target] or one of its \\[\\[tasks]]."),
    tasks: int = typer.Option(8, "--tasks", help="Dictionary tasks to check: the k nearest, the k farthest and some in between (at least 4)."),
    seeds: int = typer.Option(3, "--seeds", help="Training seeds per genotype (at least 2)."),
    epochs: int = typer.Option(3, "--epochs", help="Training epochs per genotype and seed on the target."),
    as_json: bool = typer.Option(False, "--json", help="Print the stored record as JSON."),
    config: Path = ConfigOption,
    store: Path = StoreOption,
    device: str = typer.Option(None, "--device", help="auto | cpu | cuda (overrides \\[project] device)."),
) -> None:
    """Check the method's premise on TARGET: do nearer tasks' genotypes do better on it? (exit 7 when not)."""
    from tanas_tui.common import console, load_cli_config
    from tanas_tui.runner import job_result, run_job

    for name, value, lo in (("--tasks", tasks, 4), ("--seeds", seeds, 2), ("--epochs", epochs, 1)):
        if value < lo:
            raise CliError(f"{name} must be at least {lo}, got {value}", ExitCode.USAGE)
    cfg = load_cli_config(config, store, {"project.device": device} if device else None)
    names = [t.name for t in cfg.all_tasks()]
    if target not in names:
        raise CliError(f"no task named {target!r} in {cfg.file or 'the config'} (tasks: {', '.join(names)})",
                       ExitCode.NOT_FOUND)
    record = job_result(run_job("check_premise", cfg, device=device, on_event=_quiet if as_json else None,
                                announce="running the premise check there", target=target, tasks=tasks, seeds=seeds,
                                epochs=epochs))
    if as_json:
        sys.stdout.write(json.dumps(record, indent=2) + "\n")
    else:
        console.print(premise_table(record))
        for line in summary_lines(record):
            console.print(markup_safe(line), soft_wrap=True)
    if not record["stats"]["supported"]:
        raise typer.Exit(int(ExitCode.NO_STRUCTURE))


@genotypes_app.command("check")
@handle_errors
def genotypes_check(
    random: int = typer.Option(8, "--random", help="Random genotypes of the standard space per task (at least 1)."),
    epochs: int = typer.Option(3, "--epochs", help="Training epochs of every genotype on the task."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    config: Path = ConfigOption,
    store: Path = StoreOption,
    device: str = typer.Option(None, "--device", help="auto | cpu | cuda (overrides \\[project] device)."),
) -> None:
    """Each base task's genotype against random genotypes on its own task, at one budget: its percentile."""
    from tanas_tui.common import console, load_cli_config
    from tanas_tui.runner import job_result, run_job

    for name, value in (("--random", random), ("--epochs", epochs)):
        if value < 1:
            raise CliError(f"{name} must be at least 1, got {value}", ExitCode.USAGE)
    cfg = load_cli_config(config, store, {"project.device": device} if device else None)
    result = job_result(run_job("check_genotypes", cfg, device=device, on_event=_quiet if as_json else None,
                                announce="checking the genotypes there", random=random, epochs=epochs))
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return
    table = Table(title="Base genotypes against random genotypes on their own task", title_justify="left")
    longest = max((len(r["name"]) for r in result["rows"]), default=4)
    table.add_column("task", min_width=min(longest, 40), overflow="fold")   # names are never cut
    for name in ("genotype", "val error %", "random: median %", "best %", "percentile"):
        table.add_column(name, justify="left" if name == "genotype" else "right")
    for row in result["rows"]:
        others = sorted(row["random_val_errors"])
        table.add_row(markup_safe(row["name"]), f"{row['genotype_hash']} ({row['source']})", f"{row['val_error']:.2f}",
                      f"{others[len(others) // 2]:.2f}", f"{others[0]:.2f}", f"{row['percentile']:.1f}")
    console.print(table)
    sd = result["sd_percentile"]
    console.print(f"mean percentile {result['mean_percentile']:.1f}" + (f" (sd {sd:.1f})" if sd is not None else "")
                  + f" over {len(result['rows'])} tasks; 100 = better than every random genotype, 50 = typical; "
                  f"genotype_rounds = {result['genotype_rounds']}, {epochs} epochs each, val split", soft_wrap=True)
