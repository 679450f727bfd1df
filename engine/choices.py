"""Every fixed list of choices, once: the config, the CLI, the protocol and the UI all read them from here.

Plain data (the standard library's `re` only), so any layer may use it.
"""
from __future__ import annotations

import re

DISTANCE_METHODS = ("fisher", "transfer")
# "farthest" is the control: built like the task-aware space, from the k FARTHEST dictionary tasks.
SPACE_KINDS = ("task-aware", "standard", "farthest")
EXPORT_FORMATS = ("genotype", "torchscript", "onnx")
# A trained network's export is written with its input spec beside it, at the model's path + this suffix.
INPUT_SPEC_SUFFIX = ".input.json"
DEVICES = ("auto", "cpu", "cuda")
CUDA_DEVICE = re.compile(r"cuda:\d{1,3}")   # one GPU by index, besides DEVICES
EXECUTOR_KINDS = ("local", "ray")
PROBES = ("cnn", "resnet18")
# The networks `search.fixed_networks` may name (engine.search.baselines.FIXED_NETWORKS builds them).
FIXED_NETWORK_NAMES = ("resnet18", "resnet34", "densenet161")
ROLES = ("base", "target")
# Row labels of the comparison table, by search kind.
COMPARISON_LABELS = {"random": "Random search", "standard": "FUSE, standard space",
                     "task-aware": "FUSE, task-aware space", "farthest": "FUSE, farthest-tasks space (control)"}
# The arms of the result table (`search.arms`), in table order; "fixed" is every network in `search.fixed_networks`.
ARMS = ("random", "fuse-standard", "fuse-task-aware", "fuse-farthest", "fixed")
ARM_SPACE = {"fuse-standard": "standard", "fuse-task-aware": "task-aware", "fuse-farthest": "farthest"}
REFERENCE_ARM = "fuse-task-aware"    # every other arm's difference is taken against this one
