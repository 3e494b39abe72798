"""ROS 2 YAML launch files, parsed into node specifications (no launch/launch_ros needed).

Supported (the subset of the ROS 2 YAML frontend this project's files use, so the same files run
under ``ros2 launch`` on a full install): ``arg`` (name, default, description), ``let`` (name,
value), ``node`` (pkg, exec, name, namespace, param [name/value or from], remap [from/to],
args, output, respawn, respawn_delay, if, unless), ``group`` (a list of children, or a mapping with
``children``; ``scoped``) with ``push_ros_namespace`` / ``push-ros-namespace``, ``include``
(file, arg [name/value]), the conditions ``if``/``unless`` on a node or a mapping group (true,
false, 1 or 0, as launch's IfCondition reads them) and the substitutions ``$(var x)``,
``$(env X [default])``, ``$(find-pkg-share pkg)``, ``$(dirname)``. Anything else is an error
naming the entity, never silently ignored.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_SUBST = re.compile(r"\$\(([a-z-]+)((?:\s+[^()\s]+)*)\s*\)")


@dataclass
class NodeSpec:
    pkg: str
    executable: str
    name: str
    namespace: str
    params: dict[str, Any] = field(default_factory=dict)
    param_files: list[str] = field(default_factory=list)
    remaps: list[tuple[str, str]] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    source: str = ""
    respawn: bool = False
    respawn_delay: float = 0.0

    @property
    def fqn(self) -> str:
        return (
            (self.namespace.rstrip("/") + "/" + self.name)
            if self.namespace != "/"
            else ("/" + self.name)
        )


class LaunchError(ValueError):
    pass


def package_share(pkg: str) -> Path:
    """Share directory of a package: this repository for gigabrain_runtime when run from a
    checkout, else the ament index (AMENT_PREFIX_PATH/share/pkg)."""
    if pkg == "gigabrain_runtime":
        root = Path(__file__).resolve().parents[2]
        if (root / "launch").is_dir() and (root / "package.xml").is_file():
            return root
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        share = Path(prefix) / "share" / pkg
        if prefix and share.is_dir():
            return share
    raise LaunchError(f"$(find-pkg-share {pkg}): package not found")


def join_namespace(outer: str, inner: str) -> str:
    ns = inner if inner.startswith("/") else f"{outer.rstrip('/')}/{inner}"
    return "/" + "/".join(p for p in ns.split("/") if p)


class _Context:
    def __init__(self, file: Path, variables: dict[str, str], namespace: str) -> None:
        self.file = file
        self.vars = variables
        self.namespace = namespace

    def child(self, *, file: Path | None = None, scoped: bool = True) -> _Context:
        return _Context(file or self.file, dict(self.vars) if scoped else self.vars, self.namespace)

    def subst(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value

        def one(m: re.Match[str]) -> str:
            kind, rest = m.group(1), m.group(2).split()
            if kind == "var":
                if not rest or rest[0] not in self.vars:
                    raise LaunchError(
                        f"{self.file.name}: $(var {' '.join(rest)}) is not defined "
                        f"(known: {', '.join(sorted(self.vars))})"
                    )
                return self.vars[rest[0]]
            if kind == "env":
                if not rest:
                    raise LaunchError(f"{self.file.name}: $(env) needs a variable name")
                default = rest[1] if len(rest) > 1 else None
                value = os.environ.get(rest[0], default)
                if value is None:
                    raise LaunchError(f"{self.file.name}: environment variable {rest[0]} unset")
                return value
            if kind == "find-pkg-share":
                return str(package_share(rest[0]))
            if kind == "dirname":
                return str(self.file.parent)
            raise LaunchError(f"{self.file.name}: unsupported substitution $({kind})")

        previous = None
        while previous != value:  # nested substitutions resolve inside out
            previous, value = value, _SUBST.sub(one, value)
        return value


def _typed(value: Any) -> Any:
    """Parameter values given as strings get ROS's YAML type inference ('50.0' -> 50.0)."""
    if isinstance(value, str):
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        if isinstance(parsed, (bool, int, float, str, list)):
            return parsed
        return value
    return value


def load_launch(path: str | Path, arguments: dict[str, str] | None = None) -> list[NodeSpec]:
    """Parse ``path`` with ``arguments`` (name:=value from the command line)."""
    path = Path(path).resolve()
    ctx = _Context(path, {}, "/")
    nodes: list[NodeSpec] = []
    _load(path, ctx, dict(arguments or {}), nodes, depth=0)
    return nodes


def _load(
    path: Path, ctx: _Context, arguments: dict[str, str], nodes: list[NodeSpec], depth: int
) -> None:
    if depth > 16:
        raise LaunchError(f"{path.name}: include depth over 16 (an include cycle?)")
    if not path.is_file():
        raise LaunchError(f"launch file not found: {path}")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or "launch" not in data:
        raise LaunchError(f"{path.name}: expected a top-level 'launch:' list")
    entries = data["launch"] or []
    declared = {e["arg"]["name"] for e in entries if isinstance(e, dict) and "arg" in e}
    unknown = sorted(set(arguments) - declared)
    if depth == 0 and unknown:
        raise LaunchError(
            f"{path.name}: unknown launch arguments {unknown} "
            f"(declared: {', '.join(sorted(declared))})"
        )
    _entities(entries, ctx, arguments, nodes, depth)


def _entities(
    entries: list[Any], ctx: _Context, arguments: dict[str, str], nodes: list[NodeSpec], depth: int
) -> None:
    for entry in entries:
        if not isinstance(entry, dict) or len(entry) != 1:
            raise LaunchError(
                f"{ctx.file.name}: each launch entry must be one mapping, got {entry!r}"
            )
        ((kind, body),) = entry.items()
        if kind == "arg":
            name = body["name"]
            if name in arguments:
                ctx.vars[name] = str(arguments[name])
            elif "default" in body:
                ctx.vars[name] = str(ctx.subst(body["default"]))
            else:
                raise LaunchError(f"{ctx.file.name}: launch argument {name!r} is required")
        elif kind == "let":
            ctx.vars[body["name"]] = str(ctx.subst(body["value"]))
        elif kind in ("push_ros_namespace", "push-ros-namespace"):
            ctx.namespace = join_namespace(ctx.namespace, str(ctx.subst(body["namespace"])))
        elif isinstance(body, dict) and not _included(body, ctx, kind):
            continue
        elif kind == "group":
            children = body.get("children", []) if isinstance(body, dict) else body
            scoped = (
                str(body.get("scoped", "true")).lower() != "false"
                if isinstance(body, dict)
                else True
            )
            _entities(children, ctx.child(scoped=scoped), arguments, nodes, depth)
        elif kind == "node":
            nodes.append(_node(body, ctx))
        elif kind == "include":
            file = Path(ctx.subst(body["file"]))
            if not file.is_absolute():
                file = (ctx.file.parent / file).resolve()
            inc_args = {a["name"]: str(ctx.subst(a["value"])) for a in body.get("arg", [])}
            # an included file sees only its own arguments, inside the current namespace
            inner = _Context(file, {}, ctx.namespace)
            _load(file, inner, inc_args, nodes, depth + 1)
        else:
            raise LaunchError(f"{ctx.file.name}: unsupported launch entity {kind!r}")


def _included(body: dict[str, Any], ctx: _Context, kind: str) -> bool:
    """An entity's ``if``/``unless`` condition (none: included)."""
    for key, want in (("if", True), ("unless", False)):
        if key in body:
            raw = str(ctx.subst(body[key])).strip().lower()
            if raw not in ("true", "false", "1", "0"):
                raise LaunchError(
                    f"{ctx.file.name}: {kind} {key}: expected true, false, 1 or 0, got {raw!r}"
                )
            if (raw in ("true", "1")) != want:
                return False
    return True


def _node(body: dict[str, Any], ctx: _Context) -> NodeSpec:
    for key in ("pkg", "exec"):
        if key not in body:
            raise LaunchError(f"{ctx.file.name}: node is missing {key!r}")
    name = str(ctx.subst(body.get("name", body["exec"])))
    ns = join_namespace(ctx.namespace, str(ctx.subst(body.get("namespace", ""))))
    spec = NodeSpec(
        pkg=str(ctx.subst(body["pkg"])),
        executable=str(ctx.subst(body["exec"])),
        name=name,
        namespace=ns,
        source=str(ctx.file),
    )
    for p in body.get("param", []) or []:
        if "from" in p:
            spec.param_files.append(str(ctx.subst(p["from"])))
        elif "name" in p and "value" in p:
            spec.params[str(p["name"])] = _typed(ctx.subst(p["value"]))
        else:
            raise LaunchError(f"{ctx.file.name}: node {name}: param needs name+value or from")
    for r in body.get("remap", []) or []:
        spec.remaps.append((str(ctx.subst(r["from"])), str(ctx.subst(r["to"]))))
    args = body.get("args", "")
    if args:
        spec.args = str(ctx.subst(args)).split()
    if "respawn" in body:
        respawn = _typed(ctx.subst(body["respawn"]))
        if not isinstance(respawn, bool):
            raise LaunchError(
                f"{ctx.file.name}: node {name}: respawn: expected true or false, got {respawn!r}"
            )
        spec.respawn = respawn
    if "respawn_delay" in body:
        delay = _typed(ctx.subst(body["respawn_delay"]))
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
            raise LaunchError(
                f"{ctx.file.name}: node {name}: respawn_delay: expected seconds >= 0, got {delay!r}"
            )
        spec.respawn_delay = float(delay)
    return spec
