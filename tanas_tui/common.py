"""What every CLI command shares: finding and loading the config, opening the store, the console."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Mapping

import typer

from engine.config import Config, load_config
from tanas_tui.safe_text import SafeConsole

# markup off: task names, paths and messages print as they are ("[/x]" is a name, not a closing tag)
console = SafeConsole(highlight=False, soft_wrap=False, markup=False)
DEFAULT_CONFIG = "tanas.toml"

ConfigOption = typer.Option(None, "--config", "-c", help="Config file (default: ./tanas.toml, or $TANAS_CONFIG).")
StoreOption = typer.Option(None, "--store", help="Store directory (overrides \\[project] store).")


def config_path(config: Path | None) -> Path | None:
    if config is not None:
        return config
    if os.environ.get("TANAS_CONFIG"):
        return Path(os.environ["TANAS_CONFIG"])
    default = Path(DEFAULT_CONFIG)
    return default if default.is_file() else None


def load_cli_config(
    config: Path | None,
    store: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    check_classes: bool = True,
) -> Config:
    """Loads the config with CLI precedence: flag > TANAS_* environment > file > default."""
    merged = dict(overrides or {})
    if store is not None:
        merged["project.store"] = str(Path(store).resolve())
    return load_config(config_path(config), os.environ, merged, check_classes=check_classes)


def open_store(target: Config | Path | str, mode: str = "r", create: bool = False):
    """Opens the store of a config (or at a path); store errors carry their own clear messages."""
    from store import Store

    path = target.store_path if isinstance(target, Config) else Path(target)
    return Store.open(path, mode=mode, create=create)


def is_terminal() -> bool:
    return sys.stdout.isatty()
