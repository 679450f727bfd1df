"""`--json` / `--csv` for list commands: plain rows on stdout for scripts (no Rich markup, no wrapping)."""
from __future__ import annotations

import csv
import io
import json
import math
import sys
from typing import Any, Iterable, Mapping

import typer

from tanas_tui.errors import CliError
from tanas_tui.exitcodes import ExitCode

JsonOption = typer.Option(False, "--json", help="Print the rows as a JSON array (for scripts).")
CsvOption = typer.Option(False, "--csv", help="Print the rows as CSV with a header line (for spreadsheets).")


def wanted(as_json: bool, as_csv: bool) -> str | None:
    if as_json and as_csv:
        raise CliError("--json and --csv are exclusive: choose one", ExitCode.USAGE)
    return "json" if as_json else "csv" if as_csv else None


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def emit(rows: Iterable[Mapping[str, Any]], fmt: str, columns: tuple[str, ...]) -> None:
    rows = [{c: _plain(row.get(c)) for c in columns} for row in rows]
    if fmt == "json":
        sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else json.dumps(v) if isinstance(v, (dict, list)) else v
                         for k, v in row.items()})
    sys.stdout.write(buffer.getvalue())
