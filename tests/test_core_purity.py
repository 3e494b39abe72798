"""The core never imports rclpy, and importing the package pulls in no heavy dependency."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "gigabrain_runtime"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_modules_never_import_rclpy():
    offenders = [
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if "ros" not in p.relative_to(PACKAGE).parts and "rclpy" in _imports(p)
    ]
    assert offenders == [], f"rclpy imported outside gigabrain_runtime/ros/: {offenders}"


def test_package_imports_without_rclpy_tensorrt_or_torch():
    # rclpy and tensorrt are made unimportable; torch must not be loaded by the light modules.
    code = """
import sys
sys.modules['rclpy'] = None
sys.modules['tensorrt'] = None
import gigabrain_runtime, gigabrain_runtime.cli
import gigabrain_runtime.model.config, gigabrain_runtime.model.presets
import gigabrain_runtime.model.advantage, gigabrain_runtime.model.tokenizer
import gigabrain_runtime.robots.embodiment
import gigabrain_runtime.inference.manifest, gigabrain_runtime.inference.preprocessing
import gigabrain_runtime.inference.factory, gigabrain_runtime.inference.tensorrt_backend
heavy = sorted(m for m in ('torch', 'onnxruntime', 'onnx', 'rclpy', 'tensorrt', 'cv2')
               if sys.modules.get(m) is not None)
print(','.join(heavy))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"heavy modules imported eagerly: {out.stdout.strip()}"
