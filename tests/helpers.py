"""Test helpers shared across test modules."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import numpy as np


def make_observation(embodiment: str = "piper", seed: int = 0, size: int = 224, **overrides):
    from gigabrain_runtime.inference.types import Observation
    from gigabrain_runtime.robots.embodiment import get_embodiment

    emb = get_embodiment(embodiment)
    rng = np.random.default_rng(seed)
    fields = {
        "images": {c: rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for c in emb.cameras},
        "state": (emb.lower + emb.upper) / 2,
        "instruction": "pick up the red cube",
        "embodiment": embodiment,
    }
    fields.update(overrides)
    return Observation(**fields)


PACKAGE_DIR = Path(__file__).resolve().parents[1] / "gigabrain_runtime"


@dataclass(frozen=True)
class Import:
    """One import statement's target as the interpreter resolves it."""

    source: str  # the importing module, e.g. gigabrain_runtime.hilr.plot
    target: str  # the imported module (``from a import b`` -> ``a.b`` when that is a module)
    lazy: bool  # inside a function: runs when called, not when the module is imported
    line: int


def package_modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of gigabrain_runtime."""
    out = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
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
