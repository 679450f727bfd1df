"""`tanas-tui data list` and `tanas-tui data preview`: what data is there, and what it looks like."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import typer
from rich.table import Table
from rich.text import Text

from tanas_tui.common import ConfigOption
from tanas_tui.errors import CliError, handle_errors
from tanas_tui.exitcodes import ExitCode

data_app = typer.Typer(help="Data sources: list them, preview their images.", no_args_is_help=True)



def _config(config: Path | None):
    from tanas_tui.common import load_cli_config

    # Listing and previewing must work even when a task names a class its source lacks.
    return load_cli_config(config, check_classes=False)


def _source(name: str, cfg):
    from engine.data import SourceError, UnknownSource, get_source

    try:
        return get_source(name, cfg.sources, cfg.data_dir, base_dir=cfg.root)
    except UnknownSource as exc:
        raise CliError(str(exc), ExitCode.NOT_FOUND) from None
    except SourceError as exc:
        raise CliError(str(exc), ExitCode.USAGE) from None


def _shorten(names: tuple[str, ...], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", … (+{len(names) - limit})" if len(names) > limit else "")


@data_app.command("list")
@handle_errors
def list_command(config: Path | None = ConfigOption) -> None:
    """Every data source: built-in ones and the config's \\[sources.NAME] sections."""
    from engine.data import BUILTIN_KINDS, SOURCE_OPTIONS, list_sources
    from tanas_tui.common import console

    cfg = _config(config)
    table = Table(title="data sources", title_justify="left")
    for column in ("source", "kind", "offline", "classes", "class names"):
        table.add_column(column, justify="right" if column == "classes" else "left",
                         overflow="fold" if column == "class names" else "ellipsis")
    for source in list_sources(cfg.sources, cfg.data_dir, base_dir=cfg.root):
        try:
            names = source.classes()
            count, shown = str(len(names)), _shorten(names)
        except Exception as exc:  # noqa: BLE001 - one broken source must not hide the others
            count, shown = "?", Text(str(exc), style="red")
        offline = "[green]yes[/]" if source.available() else "[yellow]no[/]"
        table.add_row(source.name, source.kind, offline, count, shown)
    console.print(table)
    needs = [k for k in BUILTIN_KINDS if any(spec.required for spec in SOURCE_OPTIONS[k].values())]
    console.print(Text(f"More kinds, configured in a [sources.NAME] section: {', '.join(needs)}.", style="dim"))


def _pick(labels: np.ndarray, count: int, class_index: int | None) -> np.ndarray:
    """`count` indices: evenly spread through one class, or round-robin over the classes."""
    if class_index is not None:
        members = np.flatnonzero(labels == class_index)
        return members[np.linspace(0, len(members) - 1, min(count, len(members))).round().astype(int)] if len(members) else members
    groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    picked: list[int] = []
    depth = 0
    while len(picked) < count and any(depth < len(g) for g in groups):
        picked += [int(g[depth]) for g in groups if depth < len(g)][: count - len(picked)]
        depth += 1
    return np.asarray(picked, dtype=np.int64)


@data_app.command("preview")
@handle_errors
def preview_command(
    source: str = typer.Argument(..., help="A source name (see `tanas-tui data list`)."),
    count: int = typer.Option(8, "--count", "-n", min=1, max=200, help="How many images."),
    class_name: str | None = typer.Option(None, "--class", help="Only images of this class."),
    width: int = typer.Option(14, "--width", min=2, max=56, help="Width of each image in terminal cells."),
    config: Path | None = ConfigOption,
) -> None:
    """Draw a few images of a source in the terminal."""
    from tanas_tui.common import console
    from tanas_tui.preview import render_images

    cfg = _config(config)
    src = _source(source, cfg)
    class_index = None
    if class_name is not None:
        classes = src.classes()
        if class_name not in classes:
            raise CliError(f"source {source!r} has no class {class_name!r} (its classes: {', '.join(classes)})",
                           ExitCode.NOT_FOUND)
        class_index = classes.index(class_name)
    data = src.load()
    idx = _pick(data.labels.numpy(), count, class_index)
    if len(idx) == 0:
        raise CliError(f"source {source!r} has no images" + (f" of class {class_name!r}" if class_name else ""),
                       ExitCode.NOT_FOUND)
    captions = [data.classes[int(data.labels[i])] for i in idx]
    console.print(render_images(data.images[idx], captions, width_cells=width))
    console.print(Text(f"{source}: {len(data)} images, {len(data.classes)} classes", style="dim"))


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
