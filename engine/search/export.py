"""Export a found architecture: the genotype as JSON, or the trained network as TorchScript or ONNX.

TorchScript and ONNX files are self-contained: they load with `torch.jit.load` / onnxruntime without tanas installed.
"""
from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from engine.choices import EXPORT_FORMATS, INPUT_SPEC_SUFFIX
from engine.space.genotype import Genotype
from engine.space.network import build_network

__all__ = ["export_model", "ExportError", "FORMATS", "SUFFIXES", "input_spec", "write_input_spec"]

FORMATS = EXPORT_FORMATS
SUFFIXES = {"genotype": ".json", "torchscript": ".pt", "onnx": ".onnx"}


class ExportError(RuntimeError):
    """An export that cannot be done; the message says why and what to do."""


def export_model(genotype: Genotype, state_dict: Mapping[str, Any] | None, num_classes: int, fmt: str,
                 path: str | Path, in_channels: int = 1, input_size: tuple[int, int] = (28, 28)) -> Path:
    """Write `genotype` (plus trained weights for the model formats) to `path`; returns the path written.

    `state_dict` holds tensors or numpy arrays (as the store returns them); it is not needed for `fmt="genotype"`.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    path = Path(path)
    genotype.validate()
    if fmt == "onnx" and importlib.util.find_spec("onnx") is None:
        raise ExportError("ONNX export needs the 'onnx' package, which is not installed: "
                          "pip install 'tanas-tui[onnx]' (this also installs onnxruntime to run the file)")
    path.parent.mkdir(parents=True, exist_ok=True)

    if fmt == "genotype":
        path.write_text(genotype.file_text(), encoding="utf-8")
        return path

    if state_dict is None:
        raise ExportError(f"{fmt} export needs the trained weights (state_dict), got none")
    model = build_network(genotype, num_classes, in_channels, seed=0)
    tensors = {k: torch.as_tensor(np.asarray(v)) if isinstance(v, np.ndarray) else torch.as_tensor(v)
               for k, v in state_dict.items()}
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise ExportError(f"the weights do not fit genotype {genotype.hash} with {num_classes} classes: {exc}") from None
    model = model.float().cpu().eval()
    example = torch.zeros(1, in_channels, *input_size)

    if fmt == "torchscript":
        with torch.no_grad(), warnings.catch_warnings():
            # TorchScript is deprecated upstream but is still the one format plain `torch.jit.load` reads.
            warnings.filterwarnings("ignore", category=FutureWarning, message=r".*torch\.jit")
            traced = torch.jit.trace(model, example)
        tmp = path.with_name(path.name + ".tmp")
        traced.save(str(tmp))
        tmp.replace(path)
        return path

    tmp = path.with_name(path.name + ".tmp")
    try:
        # The TorchScript-based exporter needs only `onnx`; the dynamo one would also need onnxscript.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the legacy exporter warns at every step
            warnings.filterwarnings("ignore", category=UserWarning, message="Constant folding")
            torch.onnx.export(model, (example,), str(tmp), input_names=["input"], output_names=["logits"],
                              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)
    except Exception as exc:  # the exporter raises many types; the user needs the reason, not the class
        tmp.unlink(missing_ok=True)
        raise ExportError(f"ONNX export of genotype {genotype.hash} failed: {exc}") from exc
    tmp.replace(path)
    return path


# What every task's images are (engine.data: every source is converted to 28x28 grayscale; engine.data.tasks.to_input).
NORMALISATION = "x = pixel / 255: grayscale values in [0, 1], nothing subtracted, no per-channel mean or std"


def input_spec(fmt: str, num_classes: int, class_names: list[str] | tuple[str, ...] | None, *, in_channels: int = 1,
               input_size: tuple[int, int] = (28, 28), task: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What the exported network takes and gives: input shape (NCHW, any batch), dtype and normalisation, and the
    class of each output index, so the file can be used without the store."""
    names = list(class_names or [])
    if len(names) != num_classes:      # a store without class names: the indices are all that is known
        names = [str(i) for i in range(num_classes)]
    spec: dict[str, Any] = {
        "format": fmt,
        "input": {"name": "input" if fmt == "onnx" else None, "layout": "NCHW", "dtype": "float32",
                  "shape": ["batch", in_channels, *input_size], "normalisation": NORMALISATION},
        "output": {"name": "logits" if fmt == "onnx" else None, "shape": ["batch", num_classes],
                   "meaning": "logits (no softmax applied); index i is classes[i]"},
        "classes": names,
    }
    if task:
        spec["task"] = dict(task)
    return spec


def write_input_spec(model_path: str | Path, spec: Mapping[str, Any]) -> Path:
    """The spec as JSON beside the model (`<model path>.input.json`); returns its path."""
    path = Path(str(model_path) + INPUT_SPEC_SUFFIX)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(spec, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
