"""The package's import graph has no circles, and the README's drawing of it is current.

Every import counts, module-level and function-level (and those under TYPE_CHECKING): a lazy
import keeps a circle from failing at import time but it is still a circle in the structure -
the one this test was written for (``hilr/episodes.py`` dispatching ``bag plot`` and
``bag export`` through lazy imports of modules that import ``episodes``) existed only through
one. The graph is read by gigabrain_runtime/structure.py, which also draws it
(``gigabrain-runtime structure``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gigabrain_runtime import cli
from gigabrain_runtime.structure import (
    README_BEGIN,
    README_END,
    ROS_LAYER,
    Arrow,
    arrows,
    cycles,
    mermaid,
    module_graph,
    package_modules,
    parts,
    with_readme_drawing,
)

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_package_has_no_import_circles():
    graph = module_graph()
    circles = cycles(graph)
    described = [
        " <-> ".join(c) + ": " + "; ".join(f"{m} -> {sorted(graph[m] & set(c))}" for m in c)
        for c in circles
    ]
    assert circles == [], "import circles:\n" + "\n".join(described)


def test_the_cycle_finder_sees_a_circle_through_a_lazy_import():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_knows_the_layering_it_guards():
    graph = module_graph()
    assert "gigabrain_runtime.hilr.episodes" in graph["gigabrain_runtime.hilr.plot"]
    assert "gigabrain_runtime.hilr.plot" in graph["gigabrain_runtime.hilr.cli"]  # lazy
    assert "gigabrain_runtime.bags" in graph["gigabrain_runtime.calibration.cli"]


def test_the_top_level_parts_have_no_import_circles():
    # a circle between parts (control -> robots -> control) is one even when the modules
    # involved form none: the drawing would show it
    graph: dict[str, set[str]] = {}
    for a in arrows():
        graph.setdefault(a.source, set()).add(a.target)
    circles = cycles(graph)
    described = [
        " <-> ".join(c) + ": " + "; ".join(f"{p} -> {sorted(graph[p] & set(c))}" for p in c)
        for c in circles
    ]
    assert circles == [], "import circles between top-level parts:\n" + "\n".join(described)


def _write_package(root: Path, files: dict[str, str]) -> dict[str, Path]:
    for name, text in files.items():
        path = root / "gigabrain_runtime" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return package_modules(root / "gigabrain_runtime")


def test_arrows_join_the_parts_and_are_dashed_only_for_entry_point_commands(tmp_path):
    modules = _write_package(
        tmp_path,
        {
            "__init__.py": "",
            "geometry.py": "",
            "control/__init__.py": "",
            "control/blend.py": "from gigabrain_runtime import geometry\n",
            "control/loop.py": "from . import blend\n",  # inside the part: no arrow
            "ros/__init__.py": "",
            "ros/node.py": "from ..control.loop import step\n",
            "cli.py": "def demo():\n    from gigabrain_runtime.ros import node\n",
            # a lazy import outside an entry point is a dependency like any other
            "sim.py": "def run():\n    from gigabrain_runtime.control import loop\n",
            # one eager import makes the arrow solid whatever else is lazy
            "bench.py": (
                "import gigabrain_runtime.control.blend\n"
                "def main():\n    import gigabrain_runtime.control.loop\n"
            ),
        },
    )
    assert parts(modules) == {
        "bench": "bench.py",
        "cli": "cli.py",
        "control": "control/",
        "geometry": "geometry.py",
        "ros": "ros/",
        "sim": "sim.py",
    }
    assert arrows(modules) == [
        Arrow("bench", "control", command_only=False),
        Arrow("cli", "ros", command_only=True),
        Arrow("control", "geometry", command_only=False),
        Arrow("ros", "control", command_only=False),
        Arrow("sim", "control", command_only=False),
    ]
    drawing = mermaid(modules)
    assert drawing.startswith("```mermaid\nflowchart TB\n") and drawing.endswith("```\n")
    assert '  subgraph ros_layer["ROS layer"]\n    ros["ros/"]\n  end\n' in drawing
    assert "  cli -.-> ros\n" in drawing and "  ros --> control\n" in drawing


def _drawn_arrows(drawing: str) -> tuple[set[str], list[tuple[str, str, str]]]:
    """The node ids inside the ROS layer's subgraph, and every (source, arrow, target)."""
    layer = re.search(r'subgraph ros_layer\["ROS layer"\]\n(.*?)\n  end', drawing, re.S)
    assert layer, "the drawing has no ROS layer subgraph"
    ids = set(re.findall(r"^\s+(\w+)\[", layer.group(1), re.M))
    return ids, re.findall(r"^\s+(\w+) (-->|-\.->) (\w+)$", drawing, re.M)


def test_the_drawing_has_no_arrow_from_the_core_up_to_the_ros_layer():
    ros, drawn = _drawn_arrows(mermaid())
    assert ros, f"no part of {ROS_LAYER} drawn"
    up = [f"{s} {a} {t}" for s, a, t in drawn if s not in ros and t in ros]
    # not even a dashed one: commands reach the ROS layer by name (entries.py)
    assert up == [], f"the core imports the ROS layer: {up}"


def test_readme_structure_drawing_is_current():
    text = README.read_text()
    assert with_readme_drawing(text) == text, (
        "README.md's structure drawing differs from the package's imports; run "
        "`gigabrain-runtime structure --readme README.md`"
    )


def test_readme_drawing_needs_its_markers():
    with pytest.raises(ValueError, match="README: no"):
        with_readme_drawing("# no drawing here\n")


def test_cli_prints_the_drawing_and_rewrites_it_in_a_readme(tmp_path, capsys):
    assert cli.main(["structure"]) == 0
    assert capsys.readouterr().out == mermaid()
    doc = tmp_path / "README.md"
    doc.write_text(f"intro\n\n{README_BEGIN}\nOLD DRAWING\n{README_END}\n\nrest\n")
    assert cli.main(["structure", "--readme", str(doc)]) == 0
    assert doc.read_text() == f"intro\n\n{README_BEGIN}\n{mermaid()}{README_END}\n\nrest\n"
    assert cli.main(["structure", "--readme", str(tmp_path / "missing.md")]) == 2
