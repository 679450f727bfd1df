"""`tanas-tui init [PATH]`: writes a commented `tanas.toml` (the embedded offline preset) to start from."""
from __future__ import annotations

from pathlib import Path

import typer

from tanas_tui.errors import CliError, handle_errors
from tanas_tui.exitcodes import ExitCode

# The template is the repository's own tanas.toml (tanas_tui/templates/tanas.toml links to it), so the file a user
# starts from is the one `make run` runs.
TEMPLATE = Path(__file__).resolve().parents[1] / "templates" / "tanas.toml"


def register(app: typer.Typer) -> None:
    app.command("init")(init)


@handle_errors
def init(
    path: Path = typer.Argument(Path("tanas.toml"), help="Where to write the config (default: ./tanas.toml)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented tanas.toml: the offline preset (MNIST digits and sketches, a digits target) to edit."""
    from tanas_tui.common import console

    if path.is_dir():
        path = path / "tanas.toml"
    if path.exists() and not force:
        raise CliError(f"{path} already exists; pass --force to overwrite it", ExitCode.USAGE)
    if not path.parent.is_dir():
        raise CliError(f"directory {path.parent} does not exist; create it first", ExitCode.USAGE)
    try:
        path.write_text(TEMPLATE.read_text(encoding="utf-8"), encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}", ExitCode.USAGE) from None
    console.print(f"wrote {path}: edit its [[tasks]] and [target], then `tanas-tui run` "
                  f"(or `tanas-tui` for the UI)", markup=False)
