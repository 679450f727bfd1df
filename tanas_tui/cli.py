"""`tanas-tui`: the Typer root. Sub-commands live in `tanas_tui/commands/`, one module per group."""
from __future__ import annotations

import sys

import typer

from tanas_tui.errors import CliError, Terminated, handle_errors, state
from tanas_tui.exitcodes import EXIT_CODE_HELP, ExitCode

app = typer.Typer(
    name="tanas-tui",
    help="Task-Aware Neural Architecture Search in the terminal.\n\n" + EXIT_CODE_HELP,
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
)

@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    state["debug"] = debug
    if ctx.invoked_subcommand is None:
        from tanas_tui.commands.ui import open_ui

        open_ui(config=None, store=None)


def _register() -> None:
    import importlib
    import pkgutil

    import tanas_tui.commands as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"tanas_tui.commands.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_register()


def main() -> None:
    try:
        app(standalone_mode=True)
    except Terminated:
        sys.exit(ExitCode.TERMINATED)
    except KeyboardInterrupt:
        sys.exit(ExitCode.INTERRUPTED)


__all__ = ["app", "main", "CliError", "handle_errors"]
