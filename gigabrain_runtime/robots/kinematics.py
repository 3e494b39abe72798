"""A robot's kinematic chain as data (``kinematics:`` in ``robots/data/<robot>.yaml``), and its
forward kinematics in numpy.

Links carry URDF joint origins: a link's frame is its parent's, moved by ``pos`` (m) and turned
by ``rpy`` (rad), then moved by its joint (a hinge turns about ``axis``, a slide moves along
it). The chain's joints may differ from the embodiment's: ``joint_map`` says which chain
joints an embodiment joint drives and with which scale (a gripper opening driving two fingers
by half each). Cameras mounted on the robot are placed by ``camera_mounts``, in MuJoCo's camera
convention (x right, y up, looking along -z). The simulator builds its bodies from this data
and the calibration tools compute flange poses from it, so both agree by construction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gigabrain_runtime.geometry import (
    look_at_xyaxes,
    pose,
    rotvec_to_matrix,
    rpy_to_matrix,
    xyaxes_to_matrix,
)

WORLD = "world"
JOINT_TYPES = ("hinge", "slide")


def _vector(value: Any, n: int, where: str) -> tuple[float, ...]:
    if (
        not isinstance(value, (list, tuple))
        or len(value) != n
        or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in value)
    ):
        raise ValueError(f"{where}: expected {n} finite numbers, got {value!r}")
    return tuple(float(v) for v in value)


@dataclass(frozen=True, kw_only=True)
class ChainJoint:
    """The joint that moves a link relative to its parent. ``range``: limits of a chain joint
    that is not an embodiment joint (a finger), in its own units."""

    name: str
    axis: tuple[float, ...]
    type: str = "hinge"
    range: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.type not in JOINT_TYPES:
            raise ValueError(f"joint {self.name}: type must be one of {JOINT_TYPES}")
        if np.linalg.norm(self.axis) < 1e-9:
            raise ValueError(f"joint {self.name}: axis must not be zero")

    def motion(self, value: float) -> np.ndarray:
        """T_link-origin_link for joint position ``value`` (rad or m)."""
        axis = np.asarray(self.axis) / np.linalg.norm(self.axis)
        if self.type == "slide":
            return pose(np.eye(3), axis * value)
        return pose(rotvec_to_matrix(axis * value), np.zeros(3))


@dataclass(frozen=True, kw_only=True)
class Link:
    name: str
    parent: str  # a link listed before this one, or "world" for the root
    pos: tuple[float, ...] = (0.0, 0.0, 0.0)
    rpy: tuple[float, ...] | None = None
    joint: ChainJoint | None = None

    @property
    def origin(self) -> np.ndarray:
        """T_parent_link at joint position 0."""
        return pose(rpy_to_matrix(self.rpy) if self.rpy else np.eye(3), self.pos)


@dataclass(frozen=True, kw_only=True)
class CameraMount:
    """A camera fixed to a link: ``xyaxes`` (its x and y axes in the link frame) or
    ``lookat`` (a point in the link frame it looks at, level with the link's z)."""

    name: str
    parent: str
    pos: tuple[float, ...]
    xyaxes: tuple[float, ...] | None = None
    lookat: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if (self.xyaxes is None) == (self.lookat is None):
            raise ValueError(f"camera {self.name}: give exactly one of xyaxes and lookat")

    @property
    def axes(self) -> tuple[float, ...]:
        if self.xyaxes is not None:
            return self.xyaxes
        return tuple(look_at_xyaxes(list(self.pos), list(self.lookat or ())))

    @property
    def matrix(self) -> np.ndarray:
        """T_link_camera, the camera frame in MuJoCo's convention (looking along -z, y up)."""
        return pose(xyaxes_to_matrix(self.axes), self.pos)


@dataclass(frozen=True, kw_only=True)
class Kinematics:
    links: tuple[Link, ...]
    # embodiment joint -> (chain joints it drives, scale); absent: the chain joint of its name
    joint_map: dict[str, tuple[tuple[str, ...], float]] = field(default_factory=dict)
    camera_mounts: tuple[CameraMount, ...] = ()

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for link in self.links:
            if link.name in seen or link.name == WORLD:
                raise ValueError(f"kinematics.links: duplicate or reserved name {link.name!r}")
            if link.parent != WORLD and link.parent not in seen:
                raise ValueError(
                    f"kinematics.links: {link.name}'s parent {link.parent!r} must be listed "
                    "before it (or be 'world')"
                )
            seen.add(link.name)
        if not any(link.parent == WORLD for link in self.links):
            raise ValueError("kinematics.links: no root link (parent: world)")
        joints = self.joint_names
        if len(set(joints)) != len(joints):
            raise ValueError(f"kinematics.links: duplicate joint names {joints}")
        for name, (targets, _) in self.joint_map.items():
            unknown = [t for t in targets if t not in joints]
            if unknown:
                raise ValueError(f"kinematics.joint_map.{name}: no chain joints {unknown}")
        for cam in self.camera_mounts:
            if cam.parent not in seen:
                raise ValueError(f"kinematics.camera_mounts: {cam.name}'s parent {cam.parent!r}")

    @property
    def link_names(self) -> tuple[str, ...]:
        return tuple(link.name for link in self.links)

    @property
    def joint_names(self) -> tuple[str, ...]:
        """The chain's joints (not necessarily the embodiment's), in link order."""
        return tuple(link.joint.name for link in self.links if link.joint)

    def drives(self, joint: str) -> tuple[tuple[str, ...], float]:
        """(chain joints, scale) an embodiment joint drives."""
        return self.joint_map.get(joint, ((joint,), 1.0))

    def ancestors(self, link: str) -> list[str]:
        """``link`` and every link above it, up to the root."""
        parents = {lk.name: lk.parent for lk in self.links}
        out = [link]
        while parents.get(out[-1], WORLD) != WORLD:
            out.append(parents[out[-1]])
        return out

    def link_poses(self, joints: Mapping[str, float]) -> dict[str, np.ndarray]:
        """T_world_link (4x4, m) of every link with chain joint positions ``joints`` (by chain
        joint name; absent joints at 0), the root placed at the world origin."""
        out: dict[str, np.ndarray] = {}
        for link in self.links:
            T = link.origin if link.parent == WORLD else out[link.parent] @ link.origin
            if link.joint:
                T = T @ link.joint.motion(float(joints.get(link.joint.name, 0.0)))
            out[link.name] = T
        return out

    @classmethod
    def from_dict(cls, data: Any, *, source: str) -> Kinematics:
        """The ``kinematics:`` section of a robot file; ValueError naming ``source`` and the
        field."""
        try:
            return cls._from_dict(data)
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None

    @classmethod
    def _from_dict(cls, data: Any) -> Kinematics:
        where = "kinematics"
        if not isinstance(data, dict) or set(data) - {"links", "joint_map", "camera_mounts"}:
            raise ValueError(f"{where}: expected a mapping of links, joint_map, camera_mounts")
        links = []
        for i, raw in enumerate(data.get("links") or []):
            at = f"{where}.links[{i}]"
            if not isinstance(raw, dict) or not {"name", "parent"} <= set(raw):
                raise ValueError(f"{at}: expected a mapping with name and parent")
            joint = raw.get("joint")
            if joint is not None:
                if not isinstance(joint, dict) or not {"name", "axis"} <= set(joint):
                    raise ValueError(f"{at}.joint: expected a mapping with name and axis")
                joint = ChainJoint(
                    name=str(joint["name"]),
                    axis=_vector(joint["axis"], 3, f"{at}.joint.axis"),
                    type=str(joint.get("type", "hinge")),
                    range=_vector(joint["range"], 2, f"{at}.joint.range")
                    if "range" in joint
                    else None,
                )
            links.append(
                Link(
                    name=str(raw["name"]),
                    parent=str(raw["parent"]),
                    pos=_vector(raw.get("pos", [0, 0, 0]), 3, f"{at}.pos"),
                    rpy=_vector(raw["rpy"], 3, f"{at}.rpy") if "rpy" in raw else None,
                    joint=joint,
                )
            )
        joint_map = {}
        for name, raw in (data.get("joint_map") or {}).items():
            if not isinstance(raw, dict) or not isinstance(raw.get("joints"), list):
                raise ValueError(f"{where}.joint_map.{name}: expected {{joints: [...], scale: s}}")
            joint_map[str(name)] = (
                tuple(str(j) for j in raw["joints"]),
                float(raw.get("scale", 1)),
            )
        mounts = []
        for i, raw in enumerate(data.get("camera_mounts") or []):
            at = f"{where}.camera_mounts[{i}]"
            if not isinstance(raw, dict) or not {"name", "parent", "pos"} <= set(raw):
                raise ValueError(f"{at}: expected a mapping with name, parent, pos")
            mounts.append(
                CameraMount(
                    name=str(raw["name"]),
                    parent=str(raw["parent"]),
                    pos=_vector(raw["pos"], 3, f"{at}.pos"),
                    xyaxes=_vector(raw["xyaxes"], 6, f"{at}.xyaxes") if "xyaxes" in raw else None,
                    lookat=_vector(raw["lookat"], 3, f"{at}.lookat") if "lookat" in raw else None,
                )
            )
        return cls(links=tuple(links), joint_map=joint_map, camera_mounts=tuple(mounts))
