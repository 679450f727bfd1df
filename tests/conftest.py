"""Shared test settings: CPU only, quiet, never a real network host."""
from __future__ import annotations

import os

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
for name in list(os.environ):
    if name.startswith("TANAS_"):
        del os.environ[name]

import pytest  # noqa: E402


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
