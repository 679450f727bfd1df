"""`tanas-tui store check [--repair]`: verifies the store's invariants and repairs what it can, saying what changed."""
from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from tanas_tui.common import ConfigOption, StoreOption
from tanas_tui.errors import CliError, handle_errors
from tanas_tui.exitcodes import ExitCode

store_app = typer.Typer(help="The artifact store itself: check its invariants, repair what a crash left behind.",
                        no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(store_app, name="store")


@store_app.command("check")
@handle_errors
def check_command(
    repair: bool = typer.Option(False, "--repair", help="Repair what can be repaired (takes the writer lock)."),
    store: Path = typer.Option(None, "--store", help="Store directory (overrides \\[project] store)."),
    config: Path = typer.Option(None, "--config", "-c", help="Config file (default: ./tanas.toml, or $TANAS_CONFIG)."),
) -> None:
    """Verify the task order, distance matrices, probes, searches and checkpoints; exit 4 while a problem remains."""
    from store import Store
    from tanas_tui.client import engine_running
    from tanas_tui.common import console, load_cli_config

    if store is not None:
        path = Path(store)
    else:
        path = load_cli_config(config, None, check_classes=False).store_path
    if repair:
        pid = engine_running(path)
        if pid is not None:
            raise CliError(f"an engine (pid {pid}) serves {path}; stop it (`tanas-tui engine stop`) before "
                           f"repairing the store (opening it, the engine already repaired what a crash left)",
                           ExitCode.STORE)
        with Store.open(path, "w") as st:
            opened = st.repaired
            report = st.check(repair=True)
        for line in opened:
            console.print(f"repaired: {escape(line)}")
    else:
        with Store.open(path, "r") as st:
            report = st.check()
        opened = []
    remaining = report.remaining
    if report.writer is not None:
        busy = f"; {len(report.in_progress)} item(s) are its work in progress, not problems" if report.in_progress else ""
        console.print(f"note: pid {report.writer} is writing the store{busy} (check again when it is done)")
        for line in report.in_progress:
            console.print(f"[dim]in progress: {escape(line)}[/]", markup=True)
    if report.recoveries:
        latest = report.recovery_log[-1] if report.recovery_log else ""
        console.print(f"{report.recoveries} interrupted operation(s) recovered automatically by a writer's open"
                      + (f" (latest: {escape(latest)})" if latest else ""))
    for line in report.repaired:
        console.print(f"repaired: {escape(line)}")
    for line in remaining:
        console.print(f"[red]problem:[/] {escape(line)}", markup=True)
    if remaining:
        hint = "" if repair else "; run `tanas-tui store check --repair` to repair it"
        raise CliError(f"store {path}: {len(remaining)} problem(s){hint}", ExitCode.STORE)
    changed = len(opened) + len(report.repaired)
    console.print(f"store {escape(str(path))}: ok" + (f" ({changed} repair(s) made)" if changed else ""))
