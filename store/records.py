"""Plain records of what the store holds, shared by the engine's writers and the front end's readers.

Torch-free and zarr-free: any layer may import it.
"""
from __future__ import annotations

from typing import Any


def table_row(architecture: str, result: Any, searched: bool = True) -> dict[str, Any]:
    """One row of the comparison table from a search result (a `SearchResult` or its dict)."""
    data = result.to_dict() if hasattr(result, "to_dict") else dict(result)
    return {"architecture": architecture, "test_error": float(data["test_error"]), "params_m": float(data["params_m"]),
            "cost_device_hours": float(data["cost_device_hours"]) if searched else None,
            "device": data.get("device"), "run_id": data.get("run_id")}


__all__ = ["table_row"]
