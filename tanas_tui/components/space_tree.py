"""Space panel: target → nearest tasks (with distances) → genotypes → cells → nodes → edges, and the spaces' operation
weights and skeleton ranges, the standard space beside the task-aware one."""
from __future__ import annotations

from typing import Any, Mapping

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Static, Tree
from textual.widgets.tree import TreeNode

from tanas_tui.components.genotype_view import GenotypeScreen
from tanas_tui.components.plots import bar
from tanas_tui.model import SPACES, UiModel, genotype_hash
from tanas_tui.units import distance, pct, share


SPACE_ORDER = {"task-aware": 0, "task-aware-cells": 0, "standard": 2}   # any other kind (a control) between


def _input_name(src: int) -> str:
    return {0: "c_{k-2}", 1: "c_{k-1}"}.get(src, f"node {src}")


def add_genotype(parent: TreeNode, genotype: Mapping[str, Any], label: str | None = None) -> TreeNode:
    """Genotype → normal/reduce cells → nodes → edges with their operations (plain JSON, no torch needed)."""
    g_hash = genotype.get("hash") or genotype_hash(genotype)
    node = parent.add(label or Text.assemble(("genotype ", "bold"), (str(g_hash), "magenta"),
                                             f"  C={genotype.get('channels', '?')} layers={genotype.get('layers', '?')}"))
    for which in ("normal", "reduce"):
        cell = genotype.get(which) or {}
        edges = cell.get("edges") or []
        concat = cell.get("concat") or list(range(2, len(edges) + 2))
        cell_node = node.add(Text.assemble((f"{which} cell", "bold"), (f"  out = concat{tuple(concat)}", "dim")))
        for i, inputs in enumerate(edges):
            parts = " + ".join(f"{op}({_input_name(src)})" for op, src in inputs)
            n = cell_node.add(Text.assemble((f"node {i + 2}", "cyan"), (f"  {parts}", "dim")))
            for op, src in inputs:
                n.add_leaf(Text.assemble((f"{op}", "green"), f" ← {_input_name(src)}"))
    return node


def space_summary(space: Mapping[str, Any] | None, title: str) -> Text:
    t = Text()
    t.append(title + "\n", style="bold underline")
    if not space:
        t.append("not built yet\n", style="dim")
        return t
    form = space.get("form", "operations")
    size = f", 10^{space['size_log10']:.1f} genotypes" if space.get("size_log10") is not None else ""
    t.append(f"{'form':>14} ", style="cyan")
    t.append(f"{form}{size}\n")
    weights = space.get("op_weights") or {}
    top = max(weights.values()) if weights else 1.0
    for op, w in weights.items():
        t.append(f"{op:>14} ", style="cyan")
        t.append(bar(w / top if top else 0.0, 10), style="green")
        t.append(f" {pct(w).rjust(6)}\n")
    for key in ("channels", "layers", "nodes"):
        if space.get(key):
            t.append(f"{key:>14} ", style="cyan")
            t.append("{" + ", ".join(map(str, space[key])) + "}\n")
    for note in space.get("notes") or []:
        t.append(f"note: {note}\n", style="yellow")
    return t


class SpacePanel(Vertical):
    BINDINGS = [Binding("g", "genotype", "Genotype")]

    def __init__(self, state: UiModel, config: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._genotypes: dict[int, tuple[dict, str]] = {}   # tree node id -> (genotype, title) for the picture
        self.state, self.config = state, config
        self._shown: set[tuple[str, str]] = set()
        self._current: tuple[str, str] | None = None
        self.standard: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        tree: Tree[tuple[str, str]] = Tree("search spaces", id="space-tree")
        tree.show_root = False
        yield tree
        with Horizontal(id="space-compare"):
            yield Static("", id="space-standard")
            yield Static("", id="space-aware")

    def on_mount(self) -> None:
        self.load_standard()

    @work(thread=True, exclusive=True, group="standard-space")
    def load_standard(self) -> None:
        try:
            from engine.service.jobs import standard_space

            space = standard_space(self.config.space if self.config is not None else None)
        except Exception as exc:  # noqa: BLE001 - the panel still shows the task-aware side
            space = None
            self.app.call_from_thread(self.app.notify, f"standard space unavailable: {exc}", severity="warning")
        self.app.call_from_thread(self._set_standard, space)

    def _set_standard(self, space: dict[str, Any] | None) -> None:
        self.standard = space
        self._update_side()

    def refresh_state(self, topics: set[str]) -> None:
        if SPACES not in topics:
            return
        tree = self.query_one("#space-tree", Tree)
        # Task-aware spaces first: they are what a user opens this panel for; then the controls (the farthest tasks'
        # space), then the standard-space entries of the base tasks' genotype searches, collapsed.
        def order(k: tuple[str, str]) -> tuple:
            return SPACE_ORDER.get(k[1], 1), self.state.task_name(k[0]), k[1]

        for key in sorted(self.state.spaces, key=order):
            if key in self._shown:
                continue
            # a space built later than one it lists before (live) goes in its place, not at the end
            position = sum(1 for k in self._shown if order(k) < order(key))
            self._shown.add(key)
            self._add_space(tree.root, key, self.state.spaces[key], position)
            if self._current is None or SPACE_ORDER.get(key[1], 1) < SPACE_ORDER.get(self._current[1], 1):
                self._current = key
        if tree.cursor_line < 0 and tree.root.children:
            tree.cursor_line = 0
        self._update_side()

    def _add_space(self, root: TreeNode, key: tuple[str, str], space: Mapping[str, Any], position: int) -> None:
        target, kind = key
        label = Text.assemble(("target ", "dim"), (self.state.task_name(target), "bold"), (f"  ({kind} space)", "dim"))
        before = position if position < len(root.children) else None
        top = root.add(label, data=key, expand=kind != "standard", before=before)
        provenance = space.get("provenance") or []
        if not provenance:
            top.add_leaf(Text("no nearest tasks: uniform operations", style="dim"), data=key)
        for p in provenance:
            name = p.get("name") or self.state.task_name(str(p.get("task_id", "?")))
            d = p.get("distance")
            w = p.get("weight")
            label = Text.assemble((str(name), "bold"), f"  d={distance(d)}" if isinstance(d, (int, float)) else "",
                                  (f"  genotype weight 1 − d = {share(w)}" if isinstance(w, (int, float)) else "",
                                   "dim"))
            near = top.add(label, data=key)
            if isinstance(p.get("genotype"), Mapping):
                g_node = add_genotype(near, p["genotype"])
                self._genotypes[g_node.id] = (dict(p["genotype"]), f"{name}'s genotype (near {self.state.task_name(target)})")

    def genotype_under_cursor(self) -> tuple[dict, str] | None:
        node = self.query_one("#space-tree", Tree).cursor_node
        while node is not None:
            if node.id in self._genotypes:
                return self._genotypes[node.id]
            node = node.parent
        return None

    def action_genotype(self) -> None:
        found = self.genotype_under_cursor()
        if found is None:
            self.app.notify("move the cursor onto a genotype (or inside one) to draw it", severity="warning")
            return
        self.app.push_screen(GenotypeScreen(*found))

    @on(Tree.NodeSelected, "#space-tree")
    def _selected(self, event: Tree.NodeSelected) -> None:
        if event.node.id in self._genotypes:
            self.app.push_screen(GenotypeScreen(*self._genotypes[event.node.id]))

    @on(Tree.NodeHighlighted, "#space-tree")
    def _highlighted(self, event: Tree.NodeHighlighted) -> None:
        node = event.node
        while node is not None and node.data is None:
            node = node.parent
        if node is not None and node.data != self._current:
            self._current = node.data
            self._update_side()

    def _update_side(self) -> None:
        standard = self.standard or self.state.spaces.get(next((k for k in self.state.spaces if k[1] == "standard"),
                                                               ("", "")))
        self.query_one("#space-standard", Static).update(space_summary(standard, "standard space"))
        aware = self.state.spaces.get(self._current) if self._current else None
        title = f"{self._current[1]} space: {self.state.task_name(self._current[0])}" if self._current \
            else "task-aware space"
        self.query_one("#space-aware", Static).update(space_summary(aware, title))
