"""Where an export may be written: never over an existing file unless asked (`--force`), never into a directory
that does not exist (it is not created silently: a typo in the path would otherwise scatter files)."""
from __future__ import annotations

from pathlib import Path

from engine.choices import INPUT_SPEC_SUFFIX

EXTENSIONS = {"genotype": ".genotype.json", "torchscript": ".pt", "onnx": ".onnx"}


class ExportTargetError(ValueError):
    """The output path is not acceptable; the message says why and what to do."""


def default_output(run_id: str, fmt: str, directory: Path | None = None) -> Path:
    return (directory or Path.cwd()) / f"{run_id}{EXTENSIONS.get(fmt, '.' + fmt)}"


def check_output(path: Path | str, force: bool = False, fmt: str = "genotype") -> Path:
    """The output path, resolved; a trained network's input spec (beside it) must not be overwritten unasked either."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise ExportTargetError(f"{path} is a directory: give a file name")
    if not path.parent.is_dir():
        raise ExportTargetError(f"directory {path.parent} does not exist: create it first (it is not created "
                                f"automatically)")
    for target in (path,) + ((Path(str(path) + INPUT_SPEC_SUFFIX),) if fmt != "genotype" else ()):
        if target.exists() and not force:
            raise ExportTargetError(f"{target} already exists: choose another path or overwrite it with --force")
    return path.resolve()
