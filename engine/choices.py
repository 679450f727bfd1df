"""Every fixed list of choices, once: the config, the CLI, the protocol and the UI all read them from here.

Plain data (the standard library's `re` only), so any layer may use it.
"""
from __future__ import annotations

import re

DISTANCE_METHODS = ("fisher", "transfer")
# "farthest" is the control: built like the task-aware space, from the k FARTHEST dictionary tasks.
SPACE_KINDS = ("task-aware", "standard", "farthest")
# How a space from dictionary tasks uses their genotypes: "operations" keeps their operation frequencies (any cell is
# drawn), "cells" composes candidates from their own normal and reduction cells (engine/space/spaces.py).
SPACE_FORMS = ("operations", "cells")
# Which skeleton values (channels, layers, nodes) a space from dictionary tasks allows (engine/space/skeleton.py).
SKELETON_RULES = ("span", "floor", "smoothed")
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
                     "task-aware": "FUSE, task-aware space", "farthest": "FUSE, farthest-tasks space (control)",
                     "task-aware-cells": "FUSE, task-aware cells",
                     "farthest-cells": "FUSE, farthest-tasks cells (control)"}
# The arms of the result table (`search.arms`), in table order; "fixed" is every network in `search.fixed_networks`.
ARMS = ("random", "fuse-standard", "fuse-task-aware", "fuse-farthest", "fuse-task-aware-cells", "fuse-farthest-cells",
        "fixed")
DEFAULT_ARMS = ("random", "fuse-standard", "fuse-task-aware", "fuse-farthest", "fixed")
ARM_SPACE = {"fuse-standard": "standard", "fuse-task-aware": "task-aware", "fuse-farthest": "farthest",
             "fuse-task-aware-cells": "task-aware", "fuse-farthest-cells": "farthest"}
# The space form of an arm's space (SPACE_FORMS); an arm not named uses "operations".
ARM_FORM = {"fuse-task-aware-cells": "cells", "fuse-farthest-cells": "cells"}


def fuse_arm(space_kind: str, form: str = "operations") -> str:
    """The comparison arm of a FUSE search in a space of this kind and form."""
    return f"fuse-{space_kind}" + ("-cells" if form == "cells" and space_kind != "standard" else "")
REFERENCE_ARM = "fuse-task-aware"    # every other arm's difference is taken against this one
