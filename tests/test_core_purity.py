"""The core never imports rclpy or the package's ROS layer, and importing the package pulls in no
heavy dependency."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gigabrain_runtime.structure import ROS_LAYER, imports_of, in_ros_layer, package_modules


def _core_modules() -> dict[str, Path]:
    return {m: p for m, p in package_modules().items() if not in_ros_layer(m)}


def _is_ros(target: str) -> bool:
    top = target.split(".")[0]
    return top == "rclpy" or top.endswith(("_msgs", "_interfaces")) or top.startswith("rosidl")


def test_core_modules_never_import_rclpy():
    offenders = [
        f"{imp.source}:{imp.line} {imp.target}"
        for m, p in _core_modules().items()
        for imp in imports_of(m, p)
        if _is_ros(imp.target)
    ]
    assert offenders == [], f"rclpy or ROS messages imported outside {ROS_LAYER}: {offenders}"


def test_core_modules_never_import_the_ros_layer():
    """Not even lazily in a command's function: commands reach the ROS layer by name
    (gigabrain_runtime/entries.py)."""
    offenders = [
        f"{imp.source}:{imp.line} {imp.target}"
        for m, p in _core_modules().items()
        for imp in imports_of(m, p)
        if in_ros_layer(imp.target)
    ]
    assert offenders == [], (
        f"the core imports the ROS layer ({', '.join(ROS_LAYER)}); name the function in "
        f"gigabrain_runtime/entries.py instead: {offenders}"
    )


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
