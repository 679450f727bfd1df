"""Every fixed list of choices, once: the config, the CLI, the protocol and the UI all read them from here.

Plain data (no imports), so any layer may use it.
"""
from __future__ import annotations

DISTANCE_METHODS = ("fisher", "transfer")
SPACE_KINDS = ("task-aware", "standard")
EXPORT_FORMATS = ("genotype", "torchscript", "onnx")
DEVICES = ("auto", "cpu", "cuda")
EXECUTOR_KINDS = ("local", "ray")
ROLES = ("base", "target")
# Row labels of the comparison table, by search kind.
COMPARISON_LABELS = {"random": "Random search", "standard": "FUSE, standard space",
                     "task-aware": "FUSE, task-aware space"}
