"""Declaring parameters with descriptors, and reading them into the core's frozen configs."""

from __future__ import annotations

from typing import Any

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
from rclpy.node import Node


def declare(
    node: Node,
    name: str,
    default: Any,
    description: str,
    *,
    read_only: bool = False,
    lo: float | None = None,
    hi: float | None = None,
    choices: tuple[str, ...] | None = None,
) -> Any:
    """Declare one parameter (range / read-only in its descriptor) and return its value."""
    desc = ParameterDescriptor(description=description, read_only=read_only)
    if choices:
        desc.additional_constraints = "one of: " + ", ".join(choices)
    if lo is not None and hi is not None:
        if isinstance(default, bool):
            pass
        elif isinstance(default, int):
            desc.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=0)]
        elif isinstance(default, float):
            desc.floating_point_range = [
                FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)
            ]
    value = node.declare_parameter(name, default, desc).value
    if choices and value not in choices:
        raise ValueError(f"parameter {name}: {value!r} is not one of {', '.join(choices)}")
    return value


def reject(reason: str) -> SetParametersResult:
    return SetParametersResult(successful=False, reason=reason)


def accept() -> SetParametersResult:
    return SetParametersResult(successful=True)
