"""Embodiments as data: joint names, limits, cameras and the model's embodiment slot.

Every difference between a PiPER arm, a dual PiPER and a G1 lives in a YAML file under
``robots/data/``; code reads these dataclasses and never branches on a robot's name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from gigabrain_runtime.registry import Registry


@dataclass(frozen=True, kw_only=True)
class JointSpec:
    """One controlled joint. Units: rad (revolute) or m (the gripper opening)."""

    name: str
    lower: float
    upper: float
    max_velocity: float  # rad/s or m/s
    max_acceleration: float  # rad/s^2 or m/s^2

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("joint.name must be non-empty")
        for field in ("lower", "upper", "max_velocity", "max_acceleration"):
            value = getattr(self, field)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(
                    f"joint {self.name}: {field} must be a finite number, got {value!r}"
                )
        if self.lower >= self.upper:
            raise ValueError(
                f"joint {self.name}: lower={self.lower} must be below upper={self.upper}"
            )
        if self.max_velocity <= 0:
            raise ValueError(
                f"joint {self.name}: max_velocity must be > 0, got {self.max_velocity}"
            )
        if self.max_acceleration <= 0:
            raise ValueError(
                f"joint {self.name}: max_acceleration must be > 0, got {self.max_acceleration}"
            )


@dataclass(frozen=True, kw_only=True)
class Embodiment:
    name: str
    embodiment_id: int
    description: str
    cameras: tuple[str, ...]
    joints: tuple[JointSpec, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.embodiment_id, int) or self.embodiment_id < 0:
            raise ValueError(
                f"embodiment {self.name}: embodiment_id must be an int >= 0, "
                f"got {self.embodiment_id!r}"
            )
        if not self.cameras:
            raise ValueError(f"embodiment {self.name}: cameras must list at least one camera")
        if len(set(self.cameras)) != len(self.cameras):
            raise ValueError(f"embodiment {self.name}: duplicate camera names {self.cameras}")
        names = [j.name for j in self.joints]
        if not names:
            raise ValueError(f"embodiment {self.name}: joints must not be empty")
        if len(set(names)) != len(names):
            raise ValueError(f"embodiment {self.name}: duplicate joint names {names}")

    @property
    def joint_names(self) -> tuple[str, ...]:
        return tuple(j.name for j in self.joints)

    @property
    def dof(self) -> int:
        return len(self.joints)

    @property
    def lower(self) -> np.ndarray:
        return np.array([j.lower for j in self.joints], dtype=np.float64)

    @property
    def upper(self) -> np.ndarray:
        return np.array([j.upper for j in self.joints], dtype=np.float64)

    @property
    def max_velocity(self) -> np.ndarray:
        return np.array([j.max_velocity for j in self.joints], dtype=np.float64)

    @property
    def max_acceleration(self) -> np.ndarray:
        return np.array([j.max_acceleration for j in self.joints], dtype=np.float64)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "<dict>") -> Embodiment:
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a mapping at top level")
        known = {"name", "embodiment_id", "description", "cameras", "joints"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{source}: unknown fields {sorted(unknown)}")
        missing = {"name", "embodiment_id", "cameras", "joints"} - set(data)
        if missing:
            raise ValueError(f"{source}: missing fields {sorted(missing)}")
        joints = []
        for i, j in enumerate(data["joints"]):
            if not isinstance(j, dict):
                raise ValueError(f"{source}: joints[{i}] must be a mapping")
            try:
                joints.append(JointSpec(**j))
            except TypeError as exc:
                raise ValueError(f"{source}: joints[{i}]: {exc}") from None
        return cls(
            name=str(data["name"]),
            embodiment_id=data["embodiment_id"],
            description=str(data.get("description", "")),
            cameras=tuple(str(c) for c in data["cameras"]),
            joints=tuple(joints),
        )

    @classmethod
    def from_yaml(cls, path: str | Path) -> Embodiment:
        path = Path(path)
        return cls.from_dict(yaml.safe_load(path.read_text()), source=str(path))


def positions_by_name(
    names: list[str], positions: list[float], wanted: tuple[str, ...], *, field: str
) -> np.ndarray:
    """The positions of ``wanted`` (in that order) from a name/position pair of lists, as a
    JointState carries them. Raises ValueError naming ``field`` when the lists disagree in
    length, a wanted joint is missing, or a value is not finite."""
    if len(positions) != len(names):
        raise ValueError(f"{field}: {len(names)} names but {len(positions)} positions")
    index = {n: i for i, n in enumerate(names)}
    missing = [n for n in wanted if n not in index]
    if missing:
        raise ValueError(f"{field}: missing joints {missing}")
    out = np.array([positions[index[n]] for n in wanted], dtype=np.float64)
    bad = ~np.isfinite(out)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{field}: {out[i]} at joint {wanted[i]} is not finite")
    return out


def _load_builtin() -> Registry[Embodiment]:
    registry: Registry[Embodiment] = Registry("embodiment")
    folder = resources.files("gigabrain_runtime.robots") / "data"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            emb = Embodiment.from_dict(yaml.safe_load(entry.read_text()), source=entry.name)
            registry.register(emb.name, emb)
    ids = [registry.get(n).embodiment_id for n in registry]
    if len(set(ids)) != len(ids):
        raise ValueError(f"built-in embodiments share an embodiment_id: {ids}")
    return registry


EMBODIMENTS: Registry[Embodiment] = _load_builtin()


def get_embodiment(name_or_path: str) -> Embodiment:
    """A built-in embodiment by name, or one loaded from a YAML file path."""
    if name_or_path.endswith((".yaml", ".yml")):
        return Embodiment.from_yaml(name_or_path)
    return EMBODIMENTS.get(name_or_path, field="embodiment")
