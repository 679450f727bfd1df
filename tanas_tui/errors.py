"""One clear line and a meaningful exit code for every expected failure; tracebacks only with --debug."""
from __future__ import annotations

import functools
import sys
import traceback
from typing import Any, Callable, TypeVar

import typer
from tanas_tui.safe_text import SafeConsole

from tanas_tui.exitcodes import ExitCode

F = TypeVar("F", bound=Callable[..., Any])
# Root options the Typer callback sets (`--debug`); read here, so this module needs nothing from the CLI.
state: dict[str, Any] = {"debug": False}
err_console = SafeConsole(stderr=True, highlight=False, soft_wrap=True)


class Terminated(KeyboardInterrupt):
    """SIGTERM while a job runs (tanas_tui.runner): handled like Ctrl-C, reported with exit 143."""


class CliError(Exception):
    def __init__(self, message: str, code: ExitCode = ExitCode.USAGE):
        super().__init__(message)
        self.code = code


def exit_code_for(exc: BaseException) -> ExitCode:
    """Maps the project's exception types to exit codes (by class name, so this module imports no engine code)."""
    if isinstance(exc, CliError):
        return exc.code
    if isinstance(exc, Terminated):
        return ExitCode.TERMINATED
    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "JobStopped" in names:
        return ExitCode.INTERRUPTED
    if "UnknownSource" in names or "NotFound" in names:
        return ExitCode.NOT_FOUND
    if names & {"ConfigError", "GenotypeError", "SpaceError", "SourceError", "TaskError", "ProtocolError", "JobError"}:
        return ExitCode.USAGE
    if "DataUnavailable" in names:
        return ExitCode.DATA_UNAVAILABLE
    if "StoreError" in names:
        return ExitCode.STORE
    return ExitCode.JOB_FAILED


def handle_errors(fn: F) -> F:
    """Decorator for Typer commands: expected errors become one red line and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - this is the CLI's last line of defence
            code = exit_code_for(exc)
            if state.get("debug"):
                traceback.print_exc(file=sys.stderr)
            message = str(exc) or type(exc).__name__
            if code == ExitCode.JOB_FAILED and not isinstance(exc, CliError):
                message = f"{type(exc).__name__}: {message}"
            if code == ExitCode.INTERRUPTED:
                message = message if message != "JobStopped" else "interrupted"
            if isinstance(exc, Terminated):
                message = "terminated (SIGTERM)"
            from tanas_tui.safe_text import markup_safe

            err_console.print(f"[bold red]error:[/] {markup_safe(message)}", markup=True, highlight=False)
            raise typer.Exit(int(code)) from None

    return wrapper  # type: ignore[return-value]
