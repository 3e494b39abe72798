"""The schema machinery without ROS: validation names the field and the value, run-time updates
go through the same checks, read-only fields refuse them."""

from __future__ import annotations

import array
from dataclasses import dataclass

import pytest

from gigabrain_runtime.params.nodes import PiperBridgeParams, PiperStandinParams
from gigabrain_runtime.params.schema import (
    NodeParams,
    from_mapping,
    markdown_table,
    param,
    specs,
    update,
    validate,
)


@dataclass(frozen=True, kw_only=True)
class Demo(NodeParams):
    rate_hz: float = param(10.0, "rate (Hz)", lo=1.0, hi=100.0, read_only=True)
    mode: str = param("a", "a | b", choices=("a", "b"))
    count: int = param(3, "how many", lo=0, hi=5)
    on: bool = param(True, "switch")
    names: tuple[str, ...] = param(("",), "topics <cam>")
    pose: tuple[float, ...] = param((0.0, 1.0), "pose (rad)")


def test_defaults_types_and_descriptors_come_from_the_fields():
    s = {x.name: x for x in specs(Demo)}
    assert list(s) == ["rate_hz", "mode", "count", "on", "names", "pose"]
    assert [s[n].type_name for n in s] == [
        "double", "string", "integer", "bool", "string[]", "double[]"
    ]  # fmt: skip
    assert s["rate_hz"].read_only and (s["rate_hz"].lo, s["rate_hz"].hi) == (1.0, 100.0)
    assert s["mode"].choices == ("a", "b") and not s["mode"].read_only
    assert Demo() == Demo(rate_hz=10.0, mode="a", count=3, on=True, names=("",), pose=(0.0, 1.0))


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("rate_hz", 0.5, "rate_hz: 0.5 is not in [1, 100]"),
        ("rate_hz", float("nan"), "rate_hz: nan is not a finite number"),
        ("rate_hz", "fast", "rate_hz: 'fast' is not of type double"),
        ("rate_hz", True, "rate_hz: True is not of type double"),
        ("mode", "c", "mode: 'c' is not one of a, b"),
        ("count", 6, "count: 6 is not in [0, 5]"),
        ("count", 2.0, "count: 2.0 is not of type integer"),
        ("on", 1, "on: 1 is not of type bool"),
        ("names", "x", "names: 'x' is not of type string[]"),
        ("pose", [0.0, "x"], "pose: [0.0, 'x'] is not of type double[]"),
    ],
)
def test_a_bad_value_is_a_value_error_naming_the_field_and_the_value(name, value, message):
    with pytest.raises(ValueError) as exc:
        Demo(**{name: value})
    assert str(exc.value) == message
    with pytest.raises(ValueError, match=f"^{name}: "):
        validate(Demo, name, value)


def test_values_are_normalised_as_ros_would_hold_them():
    p = from_mapping(Demo, {"rate_hz": 20, "names": ["a", "b"], "pose": array.array("d", [1, 2])})
    assert p.rate_hz == 20.0 and isinstance(p.rate_hz, float)
    assert p.names == ("a", "b") and p.pose == (1.0, 2.0)
    assert validate(Demo, "count", 5) == 5


def test_unknown_names_are_refused_with_the_closest_one():
    with pytest.raises(ValueError, match=r"rate: no such parameter of Demo; did you mean rate_hz"):
        from_mapping(Demo, {"rate": 5.0})


def test_run_time_updates_use_the_same_schema_and_refuse_read_only_fields():
    p = Demo()
    q = update(p, {"mode": "b", "count": 0})
    assert (q.mode, q.count) == ("b", 0) and p.mode == "a"  # the old instance is untouched
    with pytest.raises(ValueError, match=r"^rate_hz: read-only"):
        update(p, {"rate_hz": 20.0})
    with pytest.raises(ValueError, match=r"^count: 9 is not in \[0, 5\]"):
        update(p, {"mode": "b", "count": 9})
    with pytest.raises(ValueError, match="no such parameter"):
        update(p, {"speed": 1.0})


def test_malformed_declarations_fail_when_the_schema_is_written():
    with pytest.raises(TypeError, match="both lo and hi"):
        param(1.0, "x", lo=0.0)
    with pytest.raises(TypeError, match="choices are for strings"):
        param(1, "x", choices=("1",))
    with pytest.raises(TypeError, match="at least one element"):
        param((), "x")
    with pytest.raises(TypeError, match="unsupported type"):
        param(None, "x")
    with pytest.raises(ValueError, match=r"^: 5.0 is not in"):  # the default itself is checked
        param(5.0, "x", lo=0.0, hi=1.0)


def test_cross_field_checks_of_the_node_schemas():
    assert PiperBridgeParams(arm_namespaces=("/l", "/r"), arm_prefixes=("l_", "r_"))
    with pytest.raises(ValueError, match=r"arm_namespaces .* one entry per arm"):
        PiperBridgeParams(arm_namespaces=("/l", "/r"))
    with pytest.raises(ValueError, match=r"^start: expected 7 values"):
        PiperStandinParams(start=(0.0, 1.0))


def test_markdown_table_lists_every_field_and_escapes_markdown():
    table = markdown_table(Demo)
    assert "| `rate_hz` | double | `10.0` | 1 .. 100 | read-only | rate (Hz) |" in table
    assert "| `mode` | string | `a` | a, b | settable | a \\| b |" in table
    assert "| `names` | string[] | `['']` |  | settable | topics \\<cam> |" in table
    assert len(table.strip().splitlines()) == 2 + len(specs(Demo))
