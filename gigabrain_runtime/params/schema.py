"""Parameter schemas as frozen dataclasses, in the manner of ros2_controllers'
generate_parameter_library: every field is one parameter, written once with its default,
description, range or choices, and whether it may change while the node runs::

    @dataclass(frozen=True, kw_only=True)
    class ExecutorParams(NodeParams):
        control_hz: float = param(50.0, "command rate (Hz)", lo=1.0, hi=500.0, read_only=True)

A parameter's type is its default's: bool, int, float, str, or a non-empty tuple of float or
str (a ROS array). Constructing a schema validates every field and raises ValueError naming the
field and the value; :func:`update` applies run-time changes through the same checks and
refuses read-only fields. Nothing here knows ROS: ``ros/params.py`` turns a :class:`Spec` into
a ParameterDescriptor.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

P = TypeVar("P", bound="NodeParams")

_TYPE_NAMES = {bool: "bool", int: "integer", float: "double", str: "string"}


@dataclass(frozen=True)
class Spec:
    """One parameter: what its ParameterDescriptor and the README's table say about it."""

    name: str
    default: Any
    description: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()
    read_only: bool = False

    @property
    def is_array(self) -> bool:
        return isinstance(self.default, tuple)

    @property
    def kind(self) -> type:
        """The Python type of the value (of each element, for an array)."""
        return type(self.default[0]) if self.is_array else type(self.default)

    @property
    def type_name(self) -> str:
        """The ROS parameter type: bool, integer, double, string, double[] or string[]."""
        return _TYPE_NAMES[self.kind] + ("[]" if self.is_array else "")

    def check(self, value: Any) -> Any:
        """``value`` normalised (int -> float for a double, any sequence -> tuple), or
        ValueError naming the parameter and the value when it does not fit."""
        if not self.is_array:
            return self._check_scalar(value, value)
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise ValueError(f"{self.name}: {value!r} is not of type {self.type_name}")
        return tuple(self._check_scalar(v, value) for v in value)

    def _check_scalar(self, v: Any, whole: Any) -> Any:
        kind = self.kind
        if kind is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if type(v) is not kind:
            raise ValueError(f"{self.name}: {whole!r} is not of type {self.type_name}")
        if kind is float and not math.isfinite(v):
            raise ValueError(f"{self.name}: {whole!r} is not a finite number")
        if self.lo is not None and not self.lo <= v <= self.hi:
            raise ValueError(f"{self.name}: {v!r} is not in [{self.lo:g}, {self.hi:g}]")
        if self.choices and v not in self.choices:
            raise ValueError(f"{self.name}: {v!r} is not one of {', '.join(self.choices)}")
        return v


def param(
    default: Any,
    description: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    choices: tuple[str, ...] = (),
    read_only: bool = False,
) -> Any:
    """A schema field: the parameter's default, description, inclusive range ``[lo, hi]``
    (numbers; both or neither), allowed ``choices`` (strings) and ``read_only`` (set at start-up
    only: changing it live is unsafe or has no effect). TypeError on a malformed declaration."""
    spec = Spec("", default, description, lo, hi, tuple(choices), read_only)
    if isinstance(default, tuple) and not default:
        raise TypeError("param: an array default needs at least one element (its type)")
    if spec.kind not in _TYPE_NAMES or (spec.is_array and spec.kind not in (float, str)):
        raise TypeError(f"param: unsupported type {type(default).__name__} of {default!r}")
    if (lo is None) != (hi is None) or (lo is not None and spec.kind not in (int, float)):
        raise TypeError("param: a range needs both lo and hi, on a number")
    if choices and spec.kind is not str:
        raise TypeError("param: choices are for strings")
    spec.check(default)
    return dataclasses.field(default=default, metadata={"param": spec})


@dataclass(frozen=True, kw_only=True)
class NodeParams:
    """Base of the node schemas: every field is a :func:`param`, and constructing an instance
    checks (and normalises) all of them. Subclasses add cross-field checks in
    ``__post_init__`` after calling ``super().__post_init__()``."""

    def __post_init__(self) -> None:
        for s in specs(type(self)):
            object.__setattr__(self, s.name, s.check(getattr(self, s.name)))


def specs(cls: type[NodeParams]) -> tuple[Spec, ...]:
    """Every parameter of a schema, in declaration order."""
    return tuple(
        dataclasses.replace(f.metadata["param"], name=f.name)
        for f in dataclasses.fields(cls)
        if "param" in f.metadata
    )


def spec(cls: type[NodeParams], name: str) -> Spec:
    """One parameter of a schema; ValueError (with the closest names) for an unknown one."""
    known = {s.name: s for s in specs(cls)}
    if name in known:
        return known[name]
    close = difflib.get_close_matches(str(name), known, n=2)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    raise ValueError(f"{name}: no such parameter of {cls.__name__}{hint}")


def validate(cls: type[NodeParams], name: str, value: Any) -> Any:
    """The value of parameter ``name`` normalised, or ValueError naming it and the value."""
    return spec(cls, name).check(value)


def from_mapping(cls: type[P], values: Mapping[str, Any]) -> P:
    """A schema instance from ``{name: value}`` (absent names keep their defaults).
    ValueError on an unknown name or a value that does not fit."""
    for name in values:
        spec(cls, name)
    return cls(**values)


def update(params: P, changes: Mapping[str, Any]) -> P:
    """``params`` with ``changes`` applied, checked by the same schema: a run-time change.
    ValueError on an unknown or read-only parameter, or a value that does not fit."""
    for name in changes:
        if spec(type(params), name).read_only:
            raise ValueError(f"{name}: read-only, set it when the node starts")
    return dataclasses.replace(params, **changes)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(value)  # 50.0, not 50: `-p control_hz:=50` would be an integer
    if isinstance(value, tuple):
        return "[" + ", ".join(repr(v) if isinstance(v, str) else _text(v) for v in value) + "]"
    return str(value) if value != "" else "''"


def markdown_table(cls: type[NodeParams]) -> str:
    """The schema as a Markdown table (the README's parameter tables are these)."""
    rows = [
        "| parameter | type | default | allowed | at run time | description |",
        "|---|---|---|---|---|---|",
    ]
    for s in specs(cls):
        allowed = ", ".join(s.choices) if s.choices else ""
        if s.lo is not None:
            allowed = f"{s.lo:g} .. {s.hi:g}"
        live = "read-only" if s.read_only else "settable"
        description = s.description.replace("|", "\\|").replace("<", "\\<")
        rows.append(
            f"| `{s.name}` | {s.type_name} | `{_text(s.default)}` | {allowed} | {live} "
            f"| {description} |"
        )
    return "\n".join(rows) + "\n"
