"""ros/params.py on real rclpy nodes (no spinning, no traffic): every schema field declared with
its descriptor, overrides reaching the config, run-time changes checked by the schema."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

rclpy = pytest.importorskip("rclpy")

from rcl_interfaces.msg import ParameterType  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.exceptions import ParameterException  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from gigabrain_runtime.params.nodes import NODE_PARAMS, G1BridgeParams, VlaParams  # noqa: E402
from gigabrain_runtime.params.schema import NodeParams, param, specs  # noqa: E402
from gigabrain_runtime.ros.params import (  # noqa: E402
    declare_field,
    declare_params,
    on_set_params,
)
from tests.helpers import xdist_worker  # noqa: E402

_CONTEXTS = itertools.count()


@dataclass(frozen=True, kw_only=True)
class Demo(NodeParams):
    rate_hz: float = param(10.0, "rate (Hz)", lo=1.0, hi=100.0, read_only=True)
    mode: str = param("a", "mode", choices=("a", "b"))
    count: int = param(3, "how many", lo=0, hi=5)
    names: tuple[str, ...] = param(("",), "topics")


@pytest.fixture
def make_node():
    """Nodes in a context of their own, on a domain in 201..232: outside the graph tests' 1..100
    and the G1 bridge tests' CycloneDDS domains 101..200, and not one another xdist worker uses
    at the same time (the G1 stand-in's tests draw CycloneDDS domains from 201..230: no topic in
    common with these nodes, which neither publish nor subscribe)."""
    made: list[tuple[Context, Node]] = []

    def make(args: list[str] | None = None, **kwargs) -> Node:
        ctx = Context()
        index, count = xdist_worker()  # worker i of n: 201 + i, 201 + i + n, ...
        domain = 201 + index + count * (next(_CONTEXTS) % max(1, 32 // count))
        rclpy.init(args=args, context=ctx, domain_id=domain)
        # a name of its own: rcl keeps one /rosout publisher per logger name in a process
        node = Node(f"params_test_{len(made)}", context=ctx, **kwargs)
        made.append((ctx, node))
        return node

    yield make
    for ctx, node in made:
        node.destroy_node()
        rclpy.shutdown(context=ctx)


def test_every_field_is_declared_with_its_descriptor(make_node):
    node = make_node()
    p = declare_params(node, Demo)
    assert p == Demo()
    d = {s.name: node.describe_parameter(s.name) for s in specs(Demo)}
    assert d["rate_hz"].read_only and d["rate_hz"].description == "rate (Hz)"
    r = d["rate_hz"].floating_point_range[0]
    assert (r.from_value, r.to_value) == (1.0, 100.0)
    r = d["count"].integer_range[0]
    assert (r.from_value, r.to_value) == (0, 5) and not d["count"].read_only
    assert d["mode"].additional_constraints == "one of: a, b"
    assert d["names"].type == ParameterType.PARAMETER_STRING_ARRAY
    assert node.get_parameter("rate_hz").value == 10.0


@pytest.mark.parametrize("name", NODE_PARAMS.names())
def test_every_node_schema_declares_on_a_node(make_node, name):
    cls = NODE_PARAMS.get(name)
    assert declare_params(make_node(), cls) == cls()


def test_ros_args_and_parameter_overrides_reach_the_config(make_node):
    node = make_node(["--ros-args", "-p", "rate_hz:=20.0", "-p", "names:=[left, right]"])
    assert declare_params(node, Demo) == Demo(rate_hz=20.0, names=("left", "right"))
    node = make_node(parameter_overrides=[Parameter("mode", value="b")])
    assert declare_params(node, Demo).mode == "b"
    node = make_node(["--ros-args", "-p", "stamp_tolerance_s:=0.05", "-p", "mode:=standard"])
    p = declare_params(node, VlaParams)
    assert (p.stamp_tolerance_s, p.mode, p.max_image_age_s) == (0.05, "standard", 0.15)


def test_a_bad_override_stops_the_start_with_the_field_and_the_value(make_node):
    with pytest.raises(ValueError, match=r"^mode: 'turbo' is not one of a, b$"):
        declare_params(make_node(["--ros-args", "-p", "mode:=turbo"]), Demo)
    with pytest.raises(ParameterException, match="rate_hz"):  # rclpy enforces the range too
        declare_params(make_node(["--ros-args", "-p", "rate_hz:=500.0"]), Demo)


def test_start_up_defaults_replace_the_schemas_and_overrides_still_win(make_node):
    node = make_node(["--ros-args", "-p", "ramp_in_s:=1.0"])
    assert declare_field(node, G1BridgeParams, "arm_sdk_config") == ""
    p = declare_params(node, G1BridgeParams, defaults={"ramp_in_s": 3.0, "ramp_out_s": 3.0})
    assert (p.ramp_in_s, p.ramp_out_s) == (1.0, 3.0)
    assert node.get_parameter("ramp_out_s").value == 3.0
    with pytest.raises(ValueError, match=r"^ramp_out_s: 9.0 is not in \[0.1, 4\]"):
        declare_params(make_node(), G1BridgeParams, defaults={"ramp_out_s": 9.0})


def test_run_time_changes_are_checked_by_the_schema(make_node):
    node = make_node()
    p = declare_params(node, Demo)
    applied: list[tuple[Demo, set[str]]] = []

    def apply(new: Demo, names: set[str]) -> None:
        if new.count == 4:
            raise ValueError("count: 4 is unlucky")
        applied.append((new, names))

    on_set_params(node, p, apply)

    def set_(name, value):
        return node.set_parameters([Parameter(name, value=value)])[0]

    assert set_("mode", "b").successful
    assert applied == [(Demo(mode="b"), {"mode"})]
    r = set_("mode", "c")
    assert not r.successful and r.reason == "mode: 'c' is not one of a, b"
    r = set_("count", 4)
    assert not r.successful and r.reason == "count: 4 is unlucky"
    assert node.get_parameter("count").value == 3  # refused: nothing changed
    assert not set_("rate_hz", 20.0).successful  # read-only
    assert set_("count", 5).successful and applied[-1] == (Demo(mode="b", count=5), {"count"})
    assert set_("use_sim_time", True).successful  # not the schema's: left to rclpy
    assert len(applied) == 2
