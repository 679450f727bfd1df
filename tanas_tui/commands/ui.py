"""`tanas-tui ui`: the interactive app (also what `tanas-tui` with no sub-command opens)."""
from __future__ import annotations

import os
from pathlib import Path

import typer

from tanas_tui.common import ConfigOption, StoreOption, load_cli_config
from tanas_tui.errors import CliError, handle_errors
from tanas_tui.exitcodes import ExitCode


@handle_errors
def open_ui(config: Path | None, store: Path | None) -> None:
    """Opens the app on the config's store (or `store`). A missing store is an error before the screen opens."""
    from tanas_tui.common import DEFAULT_CONFIG, config_path

    if os.environ.get("TERM") == "dumb":
        raise CliError("TERM=dumb: this terminal cannot show the full-screen UI; follow the running job with "
                       "`tanas-tui attach`, or use the commands (`tanas-tui run`, `searches list`, `tasks list`, "
                       "`engine status`: `tanas-tui --help` lists them all)", ExitCode.USAGE)
    cfg = load_cli_config(config, store, check_classes=False)
    path = cfg.store_path
    if not path.exists():
        if config_path(config) is None and store is None:     # `run` would refuse too: there is nothing to run
            raise CliError(f"no store at {path} and no {DEFAULT_CONFIG} in {Path.cwd()}: `tanas-tui init` writes a "
                           f"commented config, then `tanas-tui run` builds the store (or pass --store PATH)",
                           ExitCode.STORE)
        raise CliError(f"no store at {path}: create one with `tanas-tui run` (or pass --store PATH)", ExitCode.STORE)
    from tanas_tui.app import run_app

    cfg_file = config_path(config)
    run_app(path, cfg, cfg_file.resolve() if cfg_file is not None else None)


def register(app: typer.Typer) -> None:
    @app.command("ui")
    def ui(store: Path = StoreOption, config: Path = ConfigOption) -> None:
        """Browse the store and follow the engine live (read-only when no engine runs)."""
        open_ui(config, store)
