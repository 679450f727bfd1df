"""The layering, read from the source with ast: no import cycles, and the front end imports only the engine's door.

Every import counts, also those inside functions; only `if TYPE_CHECKING:` blocks are left out (they never run).
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "tanas_tui", "store")

# What tanas_tui may import from engine: the protocol, the job table (and its quick plain-data answers), plain-data
# modules (config, choices, genotype, task definitions), the data sources it previews and fetches, and the result
# table's arithmetic (engine.results: numpy and store records only, checked below).
FRONT_END_ALLOWED = {
    "engine.service.protocol", "engine.service.jobs", "engine.config", "engine.choices", "engine.space.genotype",
    "engine.data", "engine.data.tasks", "engine.data.paper_files",
    "engine.results", "engine.results.stats", "engine.results.table", "engine.results.collect",
    "engine.results.premise",
    # similarity quality measures (hit rate, contrast, ties) on stored matrices: numpy only, checked below
    "engine.similarity.quality",
}
# The in-process half of the one door: only the runner builds a job context and a reporter.
RUNNER_ONLY = {"engine.service.context", "engine.runtime.reporting"}
RUNNER = "tanas_tui.runner"


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _imported(tree: ast.AST, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The project modules `module` imports (a `from pkg import name` counts as pkg.name when that is a module)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _is_type_checking(node):
            for child in getattr(node, "orelse", []):
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")
                anchor = parts if is_package else parts[:-1]
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {m for m in found if m in known}


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        graph[name] = _imported(tree, name, path.name == "__init__.py", known) - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def test_cycle_finder_finds_a_loop_and_accepts_a_chain():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_the_graph_sees_imports_inside_functions():
    graph = import_graph()
    # engine.service.jobs imports the search orchestration only inside its job functions
    assert "engine.search.searching" in graph["engine.service.jobs"]


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_store_imports_neither_engine_nor_front_end():
    bad = {m: sorted(d for d in deps if not d.startswith("store"))
           for m, deps in import_graph().items() if m.startswith("store")}
    assert {m: d for m, d in bad.items() if d} == {}


def test_engine_never_imports_the_front_end():
    bad = {m: sorted(d for d in deps if d.startswith("tanas_tui"))
           for m, deps in import_graph().items() if m.startswith("engine")}
    assert {m: d for m, d in bad.items() if d} == {}


def test_front_end_imports_only_the_door_and_plain_data():
    bad = {}
    for module, deps in import_graph().items():
        if not module.startswith("tanas_tui"):
            continue
        allowed = FRONT_END_ALLOWED | (RUNNER_ONLY if module == RUNNER else set())
        wrong = sorted(d for d in deps if d.startswith("engine") and d not in allowed)
        if wrong:
            bad[module] = wrong
    assert bad == {}


def test_genotype_is_plain_data():
    tree = ast.parse((ROOT / "engine" / "space" / "genotype.py").read_text(encoding="utf-8"))
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not names & {"torch", "numpy", "engine"}


def test_similarity_quality_is_plain_numpy():
    tree = ast.parse((ROOT / "engine" / "similarity" / "quality.py").read_text(encoding="utf-8"))
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert names <= {"__future__", "dataclasses", "itertools", "typing", "numpy", "math"}
def test_results_is_plain_numpy():
    """engine.results is what the front end computes the result table with: no torch, no compute packages."""
    graph = import_graph()
    for module in (m for m in graph if m.startswith("engine.results")):
        assert {d for d in graph[module] if not d.startswith(("engine.results", "store"))} == set(), module
        tree = ast.parse(_modules()[module].read_text(encoding="utf-8"))
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert "torch" not in names, module
