"""Policies trained by this project and shipped with it, as data: one folder each.

``<name>/policy.yaml`` says which preset the weights are for, the robot, the joints trained as
offsets from the state, the files (EMA weights in safetensors, ``norm_stats.json``), the exact
commands that reproduced them and what they measured. :func:`ensure_policy_engine` exports one
to an engine directory on first use (the demo's and ``eval``'s default for its robot), and
reuses it while the engine was made from these exact files.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from gigabrain_runtime.hashing import sha256_file

ROOT = Path(__file__).resolve().parent


@dataclass(frozen=True, kw_only=True)
class ShippedPolicy:
    name: str
    description: str
    preset: str
    robot: str
    delta_joints: tuple[str, ...]
    weights: Path
    norm_stats: Path
    reproduce: tuple[str, ...]
    # the robot's default (demo, eval); false for a policy shipped for another use (the RAMP
    # loop's deliberately weak starting point)
    default: bool = True

    @classmethod
    def load(cls, name: str) -> ShippedPolicy:
        path = ROOT / name / "policy.yaml"
        if not path.is_file():
            known = ", ".join(available()) or "none"
            raise ValueError(f"policy: no shipped policy {name!r} (shipped: {known})")
        raw: dict[str, Any] = yaml.safe_load(path.read_text()) or {}
        where = f"policy {name} ({path})"
        for key in ("preset", "robot", "weights", "norm_stats"):
            if not raw.get(key):
                raise ValueError(f"{where}: missing {key!r}")
        policy = cls(
            name=name,
            description=str(raw.get("description", "")),
            preset=str(raw["preset"]),
            robot=str(raw["robot"]),
            delta_joints=tuple(str(j) for j in raw.get("delta_joints") or ()),
            weights=path.parent / str(raw["weights"]),
            norm_stats=path.parent / str(raw["norm_stats"]),
            reproduce=tuple(str(c) for c in raw.get("reproduce") or ()),
            default=bool(raw.get("default", True)),
        )
        for f in (policy.weights, policy.norm_stats):
            if not f.is_file():
                raise ValueError(f"{where}: {f.name} is missing")
        return policy

    @property
    def fingerprint(self) -> str:
        """What an engine made from this policy records: its files' hashes."""
        return f"{sha256_file(self.weights)}:{sha256_file(self.norm_stats)}"


def available() -> list[str]:
    return sorted(p.parent.name for p in ROOT.glob("*/policy.yaml"))


def for_robot(robot: str) -> ShippedPolicy | None:
    """The shipped default policy for ``robot`` (the first by name), or None."""
    for name in available():
        policy = ShippedPolicy.load(name)
        if policy.robot == robot and policy.default:
            return policy
    return None


def ensure_policy_engine(
    policy: ShippedPolicy,
    directory: str | Path,
    log: Any = print,
    *,
    optimize: bool | None = None,
) -> Path:
    """Export ``policy`` to ``directory`` unless an engine made from its exact files with
    intact graphs is already there; returns the directory. ``optimize``: as ``export_source``
    (default: onnxscript's optimiser for models of this size)."""
    from gigabrain_runtime.inference.export import export_source, preset_source
    from gigabrain_runtime.inference.manifest import EngineManifest
    from gigabrain_runtime.model.presets import get_preset
    from gigabrain_runtime.robots.embodiment import get_embodiment

    directory = Path(directory)
    try:
        manifest = EngineManifest.read(directory)
        if manifest.extra.get("policy") == f"{policy.name}:{policy.fingerprint}" and all(
            (directory / g.file).is_file() and sha256_file(directory / g.file) == g.sha256
            for g in manifest.graphs.values()
        ):
            return directory
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        pass
    log(f"exporting the shipped policy {policy.name} to {directory} (first run only) ...")
    source = preset_source(
        get_preset(policy.preset),
        weights=policy.weights,
        embodiments=[get_embodiment(policy.robot)],
        norm_stats=policy.norm_stats,
        delta_joints=policy.delta_joints,
    )
    source = replace(
        source,
        manifest=replace(
            source.manifest,
            extra={**source.manifest.extra, "policy": f"{policy.name}:{policy.fingerprint}"},
        ),
    )
    export_source(source, directory, optimize=optimize)
    return directory
