"""`tanas-tui data list`, `data preview` and `data fetch`: what data is there, what it looks like, getting it."""
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
        # a Text, not markup: the console prints strings as written, so "[green]yes[/]" would show literally
        offline = Text("yes", style="green") if source.available() else Text("no", style="yellow")
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
    skipped = f", {len(data.skipped)} unreadable files skipped" if data.skipped else ""
    console.print(Text(f"{source}: {len(data)} images, {len(data.classes)} classes{skipped}", style="dim"))


@data_app.command("fetch")
@handle_errors
def fetch_command(
    dataset: str = typer.Argument(..., help="What to fetch: 'paper' (MNIST, Fashion-MNIST, ten Quick, Draw! classes)."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Where to put the files (default: the config's "
                                         "project.data_dir)."),
    check_only: bool = typer.Option(False, "--check-only", help="Only check the files in place; download nothing."),
    mirror: list[str] = typer.Option([], "--mirror", help="SOURCE=URL: download SOURCE's files (mnist, "
                                     "fashion-mnist, quickdraw) from URL/<file name> instead. Repeatable."),
    timeout: float = typer.Option(60.0, "--timeout", min=0.1, help="Seconds per download before giving up."),
    config: Path | None = ConfigOption,
) -> None:
    """Download (or check files placed by hand for) the data of the paper's experiment, with sizes and checksums.
    Exit code 3 when a file is still missing or fails its check; then it prints where to put each one."""
    from engine.data import paper_files
    from tanas_tui.common import console

    if dataset != "paper":
        raise CliError(f"unknown data set {dataset!r}; known: paper", ExitCode.NOT_FOUND)
    mirrors = {}
    for item in mirror:
        source, sep, url = item.partition("=")
        if not sep or not url:
            raise CliError(f"--mirror must be SOURCE=URL, got {item!r}", ExitCode.USAGE)
        mirrors[source.strip()] = url.strip()
    try:
        files = paper_files.with_mirrors(paper_files.PAPER_FILES, mirrors)
    except ValueError as exc:
        raise CliError(f"--mirror: {exc}", ExitCode.USAGE) from None
    root = (data_dir if data_dir is not None else _config(config).data_dir).expanduser().resolve()

    def progress(st) -> None:
        how = " (downloaded)" if st.downloaded else ""
        colour = {"ok": "green", "missing": "yellow", "bad": "red"}[st.status]
        console.print(Text.assemble((f"{st.status:8s}", colour), f"{st.file.source:14s} {st.file.name}{how}"),
                      soft_wrap=True)

    results = paper_files.fetch_paper(root, files=files, download=not check_only, timeout=timeout, progress=progress)
    todo = [r for r in results if r.status != "ok"]
    if not todo:
        console.print(f"all {len(results)} files of the paper's data are in {root} and pass their checks",
                      soft_wrap=True)
        return
    lines = [f"{len(todo)} of {len(results)} files are missing or fail their checks"
             + ("" if check_only else " and could not be downloaded") + ". Put each file at the path shown:"]
    for r in todo:
        f = r.file
        expected = ", ".join(x for x in (f"{f.size} bytes" if f.size else "", f"md5 {f.md5}" if f.md5 else "",
                                         f"sha256 {f.sha256}" if f.sha256 else "") if x) or f.note
        lines += [f"  {r.path}", f"      from {' or '.join(f.urls)}", f"      expected: {expected}"]
        if r.detail:
            lines.append(f"      now: {r.detail}")
    lines.append(f"Then run `tanas-tui data fetch paper --check-only --data-dir {root}`.")
    raise CliError("\n".join(lines), ExitCode.DATA_UNAVAILABLE)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
