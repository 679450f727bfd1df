"""Shared test settings: CPU only, quiet, never a real network host."""
from __future__ import annotations

import os

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
for name in list(os.environ):
    if name.startswith("TANAS_"):
        del os.environ[name]

import pytest  # noqa: E402

from tests.slow_tests import SLOW  # noqa: E402


def pytest_collection_modifyitems(items):
    """Marks the tests listed in tests/slow_tests.py `slow` (by file and function, every parametrisation)."""
    for item in items:
        name = f"{item.path.name}::{getattr(item, 'originalname', item.name)}"
        if name in SLOW:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny tensors gain nothing from intra-op threads, and on a shared 2-core machine they oversubscribe it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _isolated_cwd_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("TANAS_"):
            monkeypatch.delenv(name, raising=False)
    yield
