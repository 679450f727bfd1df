"""How the model keys and keeps a search space (from a `space_built` event or a stored run): by target and kind, a
cell-level space apart from the operation-frequency one of the same kind, with its size when it is known."""
from __future__ import annotations

from typing import Any, Mapping


def space_entry(target: str, kind: str, space: Mapping[str, Any],
                size_log10: float | None) -> tuple[tuple[str, str], dict[str, Any]]:
    """((target, kind label), the space's plain data with `size_log10` when given); the label of a cell-level space
    is "<kind>-cells"."""
    form = space.get("form", "operations")
    label = kind if form == "operations" else f"{kind}-{form}"
    data = dict(space)
    if size_log10 is not None:
        data["size_log10"] = float(size_log10)
    return (target, label), data
