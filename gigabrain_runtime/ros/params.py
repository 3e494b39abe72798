"""A node's parameter schema (params/nodes.py) on the node: declared with descriptors, read
into the schema's frozen dataclass, and run-time changes validated by the same schema."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
from rclpy.node import Node
from rclpy.parameter import Parameter

from gigabrain_runtime.params.schema import NodeParams, Spec, from_mapping, spec, specs, update

P = TypeVar("P", bound=NodeParams)


def descriptor(s: Spec) -> ParameterDescriptor:
    """The ParameterDescriptor of one schema field: description, range, choices, read-only."""
    desc = ParameterDescriptor(description=s.description, read_only=s.read_only)
    if s.choices:
        desc.additional_constraints = "one of: " + ", ".join(s.choices)
    if s.lo is not None and s.kind is int:
        desc.integer_range = [IntegerRange(from_value=int(s.lo), to_value=int(s.hi), step=0)]
    elif s.lo is not None:
        desc.floating_point_range = [
            FloatingPointRange(from_value=float(s.lo), to_value=float(s.hi), step=0.0)
        ]
    return desc


def _declare(node: Node, s: Spec, default: Any) -> Any:
    if node.has_parameter(s.name):
        return node.get_parameter(s.name).value
    return node.declare_parameter(s.name, s.check(default), descriptor(s)).value


def declare_field(node: Node, cls: type[NodeParams], name: str) -> Any:
    """Declare one field of a schema ahead of the others (its value decides the defaults of
    some others) and return its value; :func:`declare_params` then leaves it as it is."""
    s = spec(cls, name)
    return _declare(node, s, s.default)


def declare_params(node: Node, cls: type[P], *, defaults: Mapping[str, Any] | None = None) -> P:
    """Declare every field of schema ``cls`` on ``node`` (overrides from ``--ros-args``, params
    files and ``parameter_overrides`` apply) and return the values as a ``cls``.

    ``defaults`` replaces schema defaults known only at start-up (g1_bridge: its arm_sdk_config
    file's). Raises ValueError naming the parameter and the value when one does not fit the
    schema (rclpy's ParameterException when it breaks a descriptor's range or type).
    """
    defaults = defaults or {}
    for name in defaults:
        spec(cls, name)  # an unknown name: ValueError with the close ones
    values = {s.name: _declare(node, s, defaults.get(s.name, s.default)) for s in specs(cls)}
    return from_mapping(cls, values)


def on_set_params(node: Node, params: P, apply: Callable[[P, set[str]], None]) -> None:
    """Validate every run-time change of ``params``' fields with its schema, then call
    ``apply(new, names)`` with the new values and the names being set; it may raise ValueError
    to refuse the change (a check the schema cannot make alone), before changing anything. A
    refusal is returned as the SetParametersResult's reason, naming the field and the value.
    Parameters outside the schema (use_sim_time) are left to rclpy."""
    names = {s.name for s in specs(type(params))}
    current = params

    def callback(changes: list[Parameter]) -> SetParametersResult:
        nonlocal current
        mine = {p.name: p.value for p in changes if p.name in names}
        if not mine:
            return SetParametersResult(successful=True)
        try:
            new = update(current, mine)
            apply(new, set(mine))
        except ValueError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        current = new
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(callback)
