"""A genotype's cells drawn as a DAG in the terminal: one row per node, one vertical lane per edge, the edge's
operation written where it enters its node. Plain Rich text (no Textual, no torch): the CLI and the app share it.

    c_{k-2} ●─┬───┐
    c_{k-1} ●─┼─┬─┼─┐
    node 2  ◀─┘ │ │ │   sep_conv_3x3 ← c_{k-2}
            ◀───┘ │ │   skip_connect ← c_{k-1}
            ●─┐   │ │
    node 3  ◀─┼───┘ │   ...

Nodes follow DARTS indexing (0, 1: the two previous cells' outputs; 2.. intermediate nodes)."""
from __future__ import annotations

from typing import Any, Mapping

from rich.console import Group
from rich.table import Table
from rich.text import Text

OP_STYLE = {"none": "dim", "skip_connect": "yellow", "avg_pool_3x3": "cyan", "max_pool_3x3": "cyan"}
NODE_STYLE = "bold"


def node_name(index: int) -> str:
    return {0: "c_{k-2}", 1: "c_{k-1}"}.get(index, f"node {index}")


def _edges(cell: Mapping[str, Any]) -> list[tuple[int, str, int]]:
    """(target node, operation, source node) for every edge, in node order."""
    out = []
    for i, inputs in enumerate(cell.get("edges") or []):
        for edge in inputs:
            op, src = edge[0], int(edge[1])
            out.append((i + 2, str(op), src))
    return out


def cell_picture(cell: Mapping[str, Any], title: str = "") -> Text:
    """The cell as lines of text: nodes on the left, edge lanes in the middle, operations on the right."""
    edges = _edges(cell)
    nodes = len(cell.get("edges") or [])
    concat = [int(c) for c in (cell.get("concat") or range(2, nodes + 2))]
    label_w = max(len(node_name(i)) for i in range(nodes + 2)) + 1
    lanes = len(edges)
    active: set[int] = set()            # lanes carrying an edge down past the current row
    lines: list[Text] = []
    if title:
        lines.append(Text(title, style="bold underline"))

    def row(label: str, marker: str, reach: int, ends: set[int], starts: set[int], tail: Text | None) -> Text:
        """One line: `marker` at the node, a horizontal run out to lane `reach` (-1: none), lane glyphs."""
        t = Text(label.ljust(label_w), style=NODE_STYLE)
        t.append(marker, style="bold magenta" if marker == "◀" else "bold green")
        for lane in range(lanes):
            inside = lane <= reach
            if lane in ends:
                glyph = "┘"
            elif lane in starts:
                glyph = "┐" if lane == reach else "┬"
            elif lane in active:
                glyph = "┼" if inside else "│"
            else:
                glyph = "─" if inside else " "
            t.append("─" if inside else " ")
            t.append(glyph, style="dim" if glyph in "│─┼" else "")
        if tail is not None:
            t.append("  ")
            t.append_text(tail)
        if tail is None:
            t.rstrip()
        return t

    def sources(node: int) -> None:
        starts = {k for k, (_, _, src) in enumerate(edges) if src == node}
        if not starts and node >= 2:
            return
        label = node_name(node) if node < 2 else ""
        lines.append(row(label, "●", max(starts) if starts else -1, set(), starts, None))
        active.update(starts)

    sources(0)
    sources(1)
    for node in range(2, nodes + 2):
        incoming = [k for k, (tgt, _, _) in enumerate(edges) if tgt == node]
        for n, k in enumerate(incoming):
            _, op, src = edges[k]
            active.discard(k)
            tail = Text.assemble((op, OP_STYLE.get(op, "green")), (f" ← {node_name(src)}", "dim"))
            lines.append(row(node_name(node) if n == 0 else "", "◀", k, {k}, set(), tail))
        sources(node)
    out = Text("output".ljust(label_w), style=NODE_STYLE)
    out.append("◀ concat(" + ", ".join(str(c) for c in concat) + ")", style="bold")
    lines.append(out)
    return Text("\n").join(lines)


def genotype_picture(genotype: Mapping[str, Any], *, side_by_side: bool = True, title: str = "") -> Any:
    """Both cells (normal, reduction) with a heading line; side by side in a grid, or stacked."""
    head = Text()
    if title:
        head.append(title + "  ", style="bold")
    head.append(f"C={genotype.get('channels', '?')}  layers={genotype.get('layers', '?')}", style="dim")
    normal = cell_picture(genotype.get("normal") or {}, "normal cell")
    reduce = cell_picture(genotype.get("reduce") or {}, "reduction cell")
    if side_by_side:
        grid = Table.grid(padding=(0, 3))
        grid.add_column()
        grid.add_column()
        grid.add_row(normal, reduce)
        return Group(head, grid)
    return Group(head, normal, Text(""), reduce)


def cell_widths(genotype: Mapping[str, Any]) -> tuple[int, int]:
    """Columns each cell's picture needs (normal, reduction)."""
    normal, reduce = (max((len(line) for line in cell_picture(genotype.get(w) or {}, "reduction cell").plain
                           .split("\n")), default=0) for w in ("normal", "reduce"))
    return normal, reduce


def picture_width(genotype: Mapping[str, Any]) -> int:
    """Columns the side-by-side picture needs."""
    return sum(cell_widths(genotype)) + 3
