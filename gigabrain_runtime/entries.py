"""What the core runs in the ROS layer, by name: the commands and tools that need ROS 2.

The core (the CLI, the calibration tools, the launcher) never imports ``gigabrain_runtime.ros``
(tests/test_core_purity.py). A command that needs ROS 2 names its function here, and
:func:`load` resolves it when the command runs - as ``ros2 run`` resolves an executable, and as
``launching.runner.NODES`` names the node executables. tests/ros/test_entries.py checks that
every name resolves.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from gigabrain_runtime.registry import Registry

ROS_ENTRIES: Registry[str] = Registry("ROS entry point")
ROS_ENTRIES.register("demo", "gigabrain_runtime.ros.tools.demo:run_demo")
ROS_ENTRIES.register("bench-control", "gigabrain_runtime.ros.tools.bench_control:run")
ROS_ENTRIES.register("bench-console", "gigabrain_runtime.ros.tools.bench_console:run")
ROS_ENTRIES.register("bench-cameras", "gigabrain_runtime.ros.tools.bench_cameras:run")
ROS_ENTRIES.register("bench-flood", "gigabrain_runtime.ros.tools.bench_flood:run")
ROS_ENTRIES.register("eval-graph", "gigabrain_runtime.ros.tools.eval_graph:run")
ROS_ENTRIES.register("record", "gigabrain_runtime.ros.recorder_node:main")
ROS_ENTRIES.register("capture-joint-states", "gigabrain_runtime.ros.tools.capture:joint_states")


def load(name: str) -> Callable[..., Any]:
    """The function registered as ``name`` (its module imported now, with rclpy)."""
    module, attr = ROS_ENTRIES.get(name, field="ROS entry point").split(":")
    return getattr(importlib.import_module(module), attr)
