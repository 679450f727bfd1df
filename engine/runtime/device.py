"""Device choice and the CUDA fast paths (bf16 autocast, channels-last), each with a CPU twin."""
from __future__ import annotations

import contextlib

import torch


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but CUDA is not available on this machine")
    if name != "cpu" and not name.startswith("cuda"):
        raise ValueError(f"unknown device {name!r}: use auto, cpu or cuda")
    return torch.device(name)


_FAST_PATHS = [True]


@contextlib.contextmanager
def cuda_fast_paths(enabled: bool):
    """Turns bf16 autocast and channels-last off (False) inside the block: the fp32 baseline of benchmarks/bench_cuda.py."""
    before = _FAST_PATHS[0]
    _FAST_PATHS[0] = enabled
    try:
        yield
    finally:
        _FAST_PATHS[0] = before


def prepare_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    model = model.to(device)
    if device.type == "cuda" and _FAST_PATHS[0]:
        model = model.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True
    return model


def autocast(device: torch.device):
    """bf16 autocast on CUDA; a no-op context on the CPU so results there are exact float32."""
    if device.type == "cuda" and _FAST_PATHS[0]:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return "cpu"
