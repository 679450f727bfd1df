"""Genotypes: a complete architecture as plain data (two cells + skeleton values), with a stable hash.

No torch here: the front end reads genotypes too. `engine.space.network.build_network` turns one into a network.

Indexing follows DARTS: in a cell, inputs 0 and 1 are the outputs of the two previous cells and intermediate node i
(counting from 0) has index i + 2. Each intermediate node takes exactly two `(operation, input_index)` edges, with
input_index < its own index. The cell output concatenates the nodes listed in `concat` (default: all intermediate
nodes). Messages name nodes by index, so "node 2" is the first intermediate node.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping

__all__ = ["Cell", "Genotype", "GenotypeError", "PRIMITIVES", "PARAMETER_FREE"]

# The operations a cell may use, in their canonical order (used wherever iteration order matters, e.g. deterministic
# sampling); `engine.space.ops.OPS` implements exactly these.
PRIMITIVES: tuple[str, ...] = ("none", "skip_connect", "avg_pool_3x3", "max_pool_3x3", "sep_conv_3x3", "sep_conv_5x5",
                               "sep_conv_7x7", "dil_conv_3x3", "dil_conv_5x5", "conv_7x1_1x7")
PARAMETER_FREE: frozenset[str] = frozenset({"none", "skip_connect", "avg_pool_3x3", "max_pool_3x3"})

Edge = tuple[str, int]


class GenotypeError(ValueError):
    """An invalid genotype or genotype document; the message says what and where."""


def _edges_tuple(edges: Any) -> tuple[tuple[Edge, ...], ...]:
    # Accept the lists JSON produces; keep anything odd as is so validate() can name it.
    try:
        return tuple(tuple((e[0], e[1]) if isinstance(e, (list, tuple)) and len(e) == 2 else e for e in node)
                     for node in edges)
    except TypeError:
        return edges


@dataclass(frozen=True)
class Cell:
    edges: tuple[tuple[Edge, ...], ...]
    concat: tuple[int, ...] = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        object.__setattr__(self, "edges", _edges_tuple(self.edges))
        if self.concat is None:
            concat = tuple(range(2, len(self.edges) + 2)) if isinstance(self.edges, tuple) else ()
        else:
            concat = tuple(self.concat) if isinstance(self.concat, (list, tuple)) else self.concat
        object.__setattr__(self, "concat", concat)

    @property
    def nodes(self) -> int:
        return len(self.edges)

    def validate(self, which: str = "cell") -> None:
        if not isinstance(self.edges, tuple) or not self.edges:
            raise GenotypeError(f"{which} cell: needs at least one intermediate node, got {self.edges!r}")
        valid = ", ".join(PRIMITIVES)
        for i, node in enumerate(self.edges):
            idx = i + 2
            if not isinstance(node, tuple):
                raise GenotypeError(f"{which} cell: node {idx} must be a list of two [operation, input] pairs, "
                                    f"got {node!r}")
            if len(node) != 2:
                raise GenotypeError(f"{which} cell: node {idx} has {len(node)} input{'s' if len(node) != 1 else ''}; "
                                    f"every intermediate node takes exactly 2")
            for edge in node:
                if not (isinstance(edge, tuple) and len(edge) == 2):
                    raise GenotypeError(f"{which} cell: node {idx}: an edge must be [operation, input], got {edge!r}")
                op, src = edge
                if op not in PRIMITIVES:
                    raise GenotypeError(f"{which} cell: node {idx}: unknown operation {json.dumps(op)}; "
                                        f"valid operations: {valid}")
                if isinstance(src, bool) or not isinstance(src, int):
                    raise GenotypeError(f"{which} cell: node {idx}: input index must be an integer, got {src!r}")
                if src < 0:
                    raise GenotypeError(f"{which} cell: node {idx} reads from node {src}, a negative index")
                if src == idx:
                    raise GenotypeError(f"{which} cell: node {idx} reads from itself; it may read only from 0..{idx - 1}")
                if src > idx:
                    raise GenotypeError(f"{which} cell: node {idx} reads from node {src} (a later node); "
                                        f"it may read only from 0..{idx - 1}")
        if not isinstance(self.concat, tuple) or not self.concat:
            raise GenotypeError(f"{which} cell: concat must be a non-empty list of node indices, got {self.concat!r}")
        last = self.nodes + 1
        for c in self.concat:
            if isinstance(c, bool) or not isinstance(c, int) or not 2 <= c <= last:
                raise GenotypeError(f"{which} cell: concat entry {c!r} is not an intermediate node (2..{last})")
        if len(set(self.concat)) != len(self.concat):
            raise GenotypeError(f"{which} cell: concat lists a node twice: {list(self.concat)}")

    def to_dict(self) -> dict[str, Any]:
        return {"edges": [[[op, src] for op, src in node] for node in self.edges], "concat": list(self.concat)}

    @classmethod
    def from_dict(cls, data: Any, which: str = "cell") -> "Cell":
        if not isinstance(data, Mapping):
            raise GenotypeError(f"{which} cell: expected an object with 'edges' (and optional 'concat'), got {data!r}")
        unknown = set(data) - {"edges", "concat"}
        if unknown:
            raise GenotypeError(f"{which} cell: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
        if "edges" not in data:
            raise GenotypeError(f"{which} cell: missing key 'edges'")
        if not isinstance(data["edges"], (list, tuple)):
            raise GenotypeError(f"{which} cell: 'edges' must be a list of nodes, got {data['edges']!r}")
        return cls(edges=data["edges"], concat=data.get("concat"))

    def ops(self) -> list[str]:
        return [op for node in self.edges for op, _ in node]


@dataclass(frozen=True)
class Genotype:
    normal: Cell
    reduce: Cell
    channels: int
    layers: int

    @property
    def nodes(self) -> int:
        return self.normal.nodes

    # -- validation ----------------------------------------------------------------------------------------------
    def validate(self) -> "Genotype":
        """Raise `GenotypeError` naming the first problem; returns self so calls can chain."""
        for name, value in (("channels", self.channels), ("layers", self.layers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise GenotypeError(f"{name} must be a positive integer, got {value!r}")
        for which in ("normal", "reduce"):
            cell = getattr(self, which)
            if not isinstance(cell, Cell):
                raise GenotypeError(f"{which} must be a Cell, got {type(cell).__name__}")
            cell.validate(which)
        if self.normal.nodes != self.reduce.nodes:
            raise GenotypeError(f"normal cell has {self.normal.nodes} intermediate nodes but reduce cell has "
                                f"{self.reduce.nodes}; both cells must have the same number")
        return self

    # -- plain data ----------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"normal": self.normal.to_dict(), "reduce": self.reduce.to_dict(),
                "channels": self.channels, "layers": self.layers}

    @classmethod
    def from_dict(cls, data: Any) -> "Genotype":
        """Parse and validate. A `hash` key (as written by exports and the store) is accepted and ignored."""
        if not isinstance(data, Mapping):
            raise GenotypeError(f"a genotype must be an object, got {type(data).__name__}")
        required = ("normal", "reduce", "channels", "layers")
        missing = [k for k in required if k not in data]
        if missing:
            raise GenotypeError(f"genotype is missing key(s): {', '.join(missing)}")
        unknown = set(data) - set(required) - {"hash"}
        if unknown:
            raise GenotypeError(f"genotype has unknown key(s): {', '.join(sorted(map(str, unknown)))}")
        g = cls(normal=Cell.from_dict(data["normal"], "normal"), reduce=Cell.from_dict(data["reduce"], "reduce"),
                channels=data["channels"], layers=data["layers"])
        return g.validate()

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def file_text(self) -> str:
        """A genotype file's text (`export --format genotype`, the UI's export): the JSON with its hash, indented;
        `from_json` reads it back."""
        return json.dumps({**self.to_dict(), "hash": self.hash}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "Genotype":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GenotypeError(f"genotype is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    @property
    def hash(self) -> str:
        """First 10 hex digits of SHA-256 over the canonical JSON (sorted keys, no spaces)."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:10]

    # -- inspection ----------------------------------------------------------------------------------------------
    def ops_used(self) -> Counter:
        """How many edges (over both cells) carry each operation."""
        return Counter(self.normal.ops() + self.reduce.ops())

    def parameter_free_share(self) -> float:
        """Share of edges (both cells) whose operation is parameter-free (none, skip, pooling)."""
        ops = self.normal.ops() + self.reduce.ops()
        return sum(op in PARAMETER_FREE for op in ops) / len(ops) if ops else 0.0

    def render(self) -> str:
        lines = [f"genotype {self.hash}: C={self.channels}, layers={self.layers}, nodes={self.nodes}"]
        for which in ("normal", "reduce"):
            cell: Cell = getattr(self, which)
            lines.append(f"  {which} cell (output = concat of nodes {', '.join(map(str, cell.concat))}):")
            for i, node in enumerate(cell.edges):
                parts = " + ".join(f"{op}({_input_name(src)})" for op, src in node)
                lines.append(f"    node {i + 2} = {parts}")
        return "\n".join(lines)


def _input_name(src: int) -> str:
    return {0: "c_{k-2}", 1: "c_{k-1}"}.get(src, f"node {src}")
