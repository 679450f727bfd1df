"""Every entry of tests/slow_tests.py names a test function that exists, so a renamed slow test does not silently
come back into `make test-fast`."""
from __future__ import annotations

import ast
from pathlib import Path

from tests.slow_tests import SLOW

HERE = Path(__file__).parent


def test_every_slow_entry_names_an_existing_test():
    missing = []
    for entry in sorted(SLOW):
        file, _, name = entry.partition("::")
        path = HERE / file
        names = {n.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))} \
            if path.exists() else set()
        if name not in names:
            missing.append(entry)
    assert not missing, f"tests/slow_tests.py names tests that do not exist: {missing}"
