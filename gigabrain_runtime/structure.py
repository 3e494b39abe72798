"""The package's structure: its import graph, read from the source files with ``ast`` (nothing
is imported), and a drawing of it at the level of the top-level parts (``model/``, ``ros/``,
``cli.py``, ...).

``gigabrain-runtime structure`` prints the drawing, a Mermaid flowchart; ``--readme README.md``
rewrites it in the README between :data:`README_BEGIN` and :data:`README_END`. The tests read
the package through the same functions: tests/test_structure.py (no import circles, the README's
drawing is current) and tests/test_core_purity.py (the core never imports rclpy or the ROS
layer).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "gigabrain_runtime"
PACKAGE_DIR = Path(__file__).resolve().parent
# Folders of the ROS layer: what lives here may use rclpy and the ROS message packages. Add a
# folder here when it holds ROS nodes; everything else is the core.
ROS_LAYER = ("ros",)
# Command-line entry points import heavy parts inside the function of the command that needs
# them (drawn as dotted arrows). The ROS layer they never import: they reach it by name
# (entries.py).
ENTRY_POINTS = ("cli.py", "__main__.py")

README_BEGIN = "<!-- structure:begin -->"
README_END = "<!-- structure:end -->"


@dataclass(frozen=True)
class Import:
    """One import statement's target as the interpreter resolves it."""

    source: str  # the importing module, e.g. gigabrain_runtime.hilr.plot
    target: str  # the imported module (``from a import b`` -> ``a.b`` when that is a module)
    lazy: bool  # inside a function: runs when called, not when the module is imported
    line: int


@dataclass(frozen=True)
class Arrow:
    """One dependency between two top-level parts: ``source`` imports from ``target``."""

    source: str
    target: str
    # every import behind the arrow runs only inside a command of an entry point
    command_only: bool


def package_modules(package_dir: Path = PACKAGE_DIR) -> dict[str, Path]:
    """Dotted module name -> file, for every module under ``package_dir`` (a package's
    ``__init__.py`` is named after the package)."""
    out = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports_of(module: str, path: Path) -> list[Import]:
    """Every import in ``path`` (module level, function level, under TYPE_CHECKING: all of
    them), relative imports resolved against ``module``."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend(Import(module, a.name, inner, child.lineno) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    up = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*up, base] if base else up)
                # ``from a import b``: the module a.b when there is one, else a (the reader
                # resolves a target to its longest prefix that is a module)
                found.extend(
                    Import(module, f"{base}.{a.name}", inner, child.lineno) for a in child.names
                )
            visit(child, inner)

    visit(ast.parse(path.read_text(), filename=str(path)), False)
    return found


def part_of(module: str) -> str | None:
    """The top-level part a dotted name belongs to (``gigabrain_runtime.hilr.plot`` -> ``hilr``);
    None for the package itself and for names outside it."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == PACKAGE else None


def in_ros_layer(module: str) -> bool:
    """``module`` (a dotted name) lives in one of the :data:`ROS_LAYER` folders."""
    return part_of(module) in ROS_LAYER


def is_command_import(imp: Import, path: Path) -> bool:
    """``imp`` (found in ``path``) is a lazy import of an entry point (:data:`ENTRY_POINTS`): it
    runs when that command runs, never when the module is imported."""
    return imp.lazy and path.name in ENTRY_POINTS


def _resolved_imports(modules: dict[str, Path]):  # noqa: ANN202
    """(import, its file, the package module it imports) for every import of a package module
    by another; the target is resolved to its longest prefix that is a module."""
    for module, path in modules.items():
        for imp in imports_of(module, path):
            name = imp.target if imp.target.split(".")[0] == PACKAGE else ""
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                yield imp, path, name


def module_graph(modules: dict[str, Path] | None = None) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, every import counted (lazy ones too).
    Importing ``a.b`` also imports the package ``a``; those implicit edges are left out, as the
    package ``__init__`` files import nothing of their own."""
    modules = package_modules() if modules is None else modules
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for imp, _, target in _resolved_imports(modules):
        graph[imp.source].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of ``graph`` with more than one node (Tarjan), each
    sorted; ``graph`` maps a node to the nodes it points at."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def parts(modules: dict[str, Path] | None = None) -> dict[str, str]:
    """Top-level part -> its label: ``model/`` for a subpackage, ``cli.py`` for a module."""
    modules = package_modules() if modules is None else modules
    out = {}
    for module, path in modules.items():
        part = part_of(module)
        if part is not None:
            folder = path.name == "__init__.py" or module.count(".") > 1
            out.setdefault(part, f"{part}/" if folder else path.name)
    return dict(sorted(out.items()))


def arrows(modules: dict[str, Path] | None = None) -> list[Arrow]:
    """The dependencies between top-level parts, sorted. An arrow is ``command_only`` when every
    import behind it is a lazy one in an entry point (:func:`is_command_import`)."""
    modules = package_modules() if modules is None else modules
    command_only: dict[tuple[str, str], bool] = {}
    for imp, path, target in _resolved_imports(modules):
        source_part, target_part = part_of(imp.source), part_of(target)
        if source_part is None or target_part is None or source_part == target_part:
            continue
        key = (source_part, target_part)
        command_only[key] = command_only.get(key, True) and is_command_import(imp, path)
    return [Arrow(s, t, only) for (s, t), only in sorted(command_only.items())]


def mermaid(modules: dict[str, Path] | None = None) -> str:
    """The part graph as a fenced Mermaid flowchart: the ROS layer's parts in a subgraph above
    the core's, one arrow per dependency (``-.->`` when :attr:`Arrow.command_only`)."""
    modules = package_modules() if modules is None else modules
    labels = parts(modules)

    def node_id(part: str) -> str:
        return part.strip("_")  # Mermaid ids: ``__main__`` -> ``main``

    lines = ["```mermaid", "flowchart TB"]
    for group, title, members in (
        ("ros_layer", "ROS layer", [p for p in labels if p in ROS_LAYER]),
        ("core", "core", [p for p in labels if p not in ROS_LAYER]),
    ):
        lines.append(f'  subgraph {group}["{title}"]')
        lines.extend(f'    {node_id(p)}["{labels[p]}"]' for p in members)
        lines.append("  end")
    for a in arrows(modules):
        arrow = "-.->" if a.command_only else "-->"
        lines.append(f"  {node_id(a.source)} {arrow} {node_id(a.target)}")
    lines.append("```")
    return "\n".join(lines) + "\n"


def with_readme_drawing(text: str, drawing: str | None = None) -> str:
    """``text`` (the README) with ``drawing`` (default: :func:`mermaid` of the package now)
    between its two markers. ValueError when the markers are missing."""
    begin, end = text.find(README_BEGIN), text.find(README_END)
    if begin < 0 or end < begin:
        raise ValueError(f"README: no {README_BEGIN!r} ... {README_END!r} block")
    drawing = mermaid() if drawing is None else drawing
    return f"{text[: begin + len(README_BEGIN)]}\n{drawing}{text[end:]}"
