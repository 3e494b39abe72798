"""The README's Layout section names every folder and top-level module of the package and every
top-level folder of the repository, nested as they are, and nothing that is not there."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gigabrain_runtime"
# folders of data and build products that the Layout section describes under their parent
DATA_DIRS = {"data", "checkpoints", "interfaces", "config", "__pycache__"}


def _layout_block() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Layout\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```\n", 1)[1].split("```", 1)[0]


def _named_folders(block: str) -> set[str]:
    """Folder paths the block names, from the indentation of 'name/' at the start of a line."""
    out: set[str] = set()
    stack: list[tuple[int, str]] = []
    for line in block.splitlines():
        m = re.match(r"^( *)([A-Za-z0-9_]+)/(?:\s|$)", line)
        if not m:
            continue
        indent, name = len(m.group(1)), m.group(2)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = "/".join([p for _, p in stack] + [name])
        out.add(path)
        stack.append((indent, name))
    return out


def _package_folders() -> set[str]:
    return {
        "gigabrain_runtime/" + str(d.relative_to(PACKAGE))
        for d in PACKAGE.rglob("*")
        if d.is_dir() and (d / "__init__.py").exists()
        if not set(d.relative_to(PACKAGE).parts) & DATA_DIRS
    } | {"gigabrain_runtime"}


def test_layout_names_every_package_folder_nested_as_in_the_tree():
    named = {f for f in _named_folders(_layout_block()) if f.startswith("gigabrain_runtime")}
    tree = _package_folders()
    assert named == tree, (
        f"README Layout and the package disagree: missing {sorted(tree - named)}, "
        f"not in the tree {sorted(named - tree)}"
    )


def test_layout_names_every_top_level_module_of_the_package():
    block = _layout_block()
    modules = {p.name for p in PACKAGE.glob("*.py") if p.name not in {"__init__.py", "__main__.py"}}
    missing = sorted(m for m in modules if m not in block)
    assert missing == [], f"README Layout does not mention {missing}"


def test_layout_names_the_repository_folders_that_exist():
    named = {f for f in _named_folders(_layout_block()) if "/" not in f} - {"gigabrain_runtime"}
    gone = sorted(f for f in named if not (ROOT / f).is_dir())
    assert gone == [], f"README Layout names folders that do not exist: {gone}"
    for fixed in ("engines", "launch", "calibration", "ros2_ws", "tests", "benchmarks"):
        assert fixed in named, f"README Layout does not mention {fixed}/"
