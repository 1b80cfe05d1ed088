"""The shape of agent/: layers that import only downwards, no import cycle, boto3 in one
package and subprocess in the host seam only. Read from the source, so a lazy import
inside a function counts like one at the top."""

from __future__ import annotations

import ast
from pathlib import Path

AGENT = Path(__file__).resolve().parent.parent / "agent"

# Highest first: a package may import only packages below it (and the base modules).
LAYERS = ["cli", "commands", "engine", "sources", "compile", "resources", "host", "aws"]
BASE = {"errors", "model", "redact", "jsontext", "logs", "config", "__init__", "__main__"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in AGENT.rglob("*.py"):
        rel = path.relative_to(AGENT).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"] or ["__init__"]
        out[".".join(["agent", *parts])] = path
    return out


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Every module this file imports, outside ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            submodules = {f"{base}.{a.name}" for a in node.names} & known
            found.update(submodules)  # from agent.x import module: that module
            if len(submodules) < len(node.names):  # and names defined in agent.x itself
                found.add(base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(path, name, known) for name, path in modules.items()}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_no_import_cycle_between_modules():
    graph = {m: {i for i in deps if i.startswith("agent")} for m, deps in _graph().items()}
    graph = {m: {i for i in deps if i in graph and i != m}
             for m, deps in graph.items()}
    # package __init__ files are imported by their own modules: only a real cycle counts
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def strong(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    assert cycles == [], f"import cycles in agent/: {cycles}"


def test_layers_import_only_downwards():
    bad = []
    for module, deps in _graph().items():
        here = _layer(module)
        if here in BASE:
            allowed: set[str] = BASE - {"__main__"}
            if here == "__main__":
                allowed |= {"cli"}
        else:
            allowed = set(LAYERS[LAYERS.index(here):]) | BASE
        for dep in deps:
            if dep.startswith("agent.") and _layer(dep) not in allowed:
                bad.append(f"{module} imports {dep}")
    assert bad == [], "a layer imports one above it:\n" + "\n".join(sorted(bad))


def test_boto3_only_in_the_aws_package_and_subprocess_only_in_the_host_seam():
    bad = []
    for module, deps in _graph().items():
        for dep in deps:
            top = dep.split(".")[0]
            if top in ("boto3", "botocore") and not module.startswith("agent.aws"):
                bad.append(f"{module} imports {dep}")
            if top == "subprocess" and module != "agent.host.system":
                bad.append(f"{module} imports {dep}")
    assert bad == [], "\n".join(sorted(bad))


def test_the_graph_reader_sees_lazy_imports():
    graph = _graph()
    # commands.run imports the runner inside converge(), not at the top
    assert "agent.engine.runner" in graph["agent.commands.run"]
    assert "botocore.exceptions" in graph["agent.aws.clients"]


def test_every_agent_import_names_a_module_of_this_tree():
    """``from agent import gone`` can still import from an older install on sys.path."""
    modules = _modules()
    known = {**modules, "agent": modules["agent.__init__"]}
    bad = []
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                    and node.module.split(".")[0] == "agent":
                package = known.get(node.module)
                if package is None:
                    bad.append(f"{name} imports {node.module}")
                    continue
                if package.name != "__init__.py":
                    continue
                defined = package.read_text()
                for alias in node.names:
                    if f"{node.module}.{alias.name}" not in known \
                            and alias.name not in defined:
                        bad.append(f"{name} imports {node.module}.{alias.name}")
            elif isinstance(node, ast.Import):
                bad += [f"{name} imports {a.name}" for a in node.names
                        if a.name.split(".")[0] == "agent" and a.name not in known]
    assert bad == [], "\n".join(sorted(bad))
