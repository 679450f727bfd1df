"""Shared test settings: CPU only, quiet, never a real network host."""
from __future__ import annotations

import os

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
for name in list(os.environ):
    if name.startswith("TANAS_"):
        del os.environ[name]

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_cwd_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("TANAS_"):
            monkeypatch.delenv(name, raising=False)
    yield
