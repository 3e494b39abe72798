"""Embodiments as data: joint names, limits, cameras and the model's embodiment slots.

Every difference between a PiPER arm, a dual PiPER and a G1 lives in a YAML file under
``robots/data/``; code reads these dataclasses and never branches on a robot's name.

A robot meets a model through a :class:`ModelIO`: which embodiment slot (the model's per-robot
action projections) it uses, which of its cameras feeds which camera slot, which robot joint
(or held constant) fills each model dimension, and which dimensions are deltas. For this
project's own presets that is the identity with the robot's ``embodiment_id``; for a checkpoint
family (``robots/data/checkpoints/<family>.yaml`` lists its slots) it is the robot's
``checkpoints: <family>:`` section.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from gigabrain_runtime.registry import Registry
from gigabrain_runtime.robots.kinematics import Kinematics

# How far past its limits a *measured* joint position (or a model's output) may be before it is
# refused, as a fraction of the joint's range: encoders and policies overshoot a little near a
# limit; a value further out is a wiring, unit or model fault, not a pose.
LIMIT_MARGIN = 0.1


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
        for name in ("lower", "upper", "max_velocity", "max_acceleration"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(
                    f"joint {self.name}: {name} must be a finite number, got {value!r}"
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
class ControllerSpec:
    """One ros2_control joint_trajectory_controller that takes some of the robot's joints.

    ``name``: the controller's name (``<name>/joint_trajectory`` is its topic unless ``topic``
    says otherwise; a relative topic resolves in the vla's namespace). ``joints``: the robot's
    joints it takes, in the controller's order. ``controller_joints``: the names the controller
    was configured with, where they differ from the robot's (same order); ``scale``: controller
    unit per robot unit for each joint (PiPER's gripper controller moves one finger: 0.5 x the
    opening).
    """

    name: str
    joints: tuple[str, ...]
    topic: str = ""
    controller_joints: tuple[str, ...] = ()
    scale: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        where = f"controller {self.name or '?'}"
        if not self.name or "/" in self.name:
            raise ValueError(f"{where}: name must be a controller name, got {self.name!r}")
        if not self.joints or len(set(self.joints)) != len(self.joints):
            raise ValueError(f"{where}: joints must be distinct names, got {self.joints}")
        if self.controller_joints and len(self.controller_joints) != len(self.joints):
            raise ValueError(
                f"{where}: controller_joints has {len(self.controller_joints)} names for "
                f"{len(self.joints)} joints"
            )
        if self.scale and (
            len(self.scale) != len(self.joints)
            or not all(
                isinstance(k, (int, float)) and math.isfinite(k) and k > 0 for k in self.scale
            )
        ):
            raise ValueError(
                f"{where}: scale must give one positive number per joint, got {self.scale}"
            )

    @property
    def topic_name(self) -> str:
        return self.topic or f"{self.name}/joint_trajectory"

    @property
    def output_names(self) -> tuple[str, ...]:
        return self.controller_joints or self.joints

    @property
    def output_scale(self) -> np.ndarray:
        return np.asarray(self.scale or (1.0,) * len(self.joints), dtype=np.float64)

    @classmethod
    def from_dict(cls, raw: Any, *, source: str) -> ControllerSpec:
        if not isinstance(raw, dict):
            raise ValueError(f"{source}: expected a mapping, got {raw!r}")
        allowed = {"name", "joints", "topic", "controller_joints", "scale"}
        unknown = set(raw) - allowed
        if unknown:
            raise ValueError(f"{source}: unknown fields {sorted(unknown)}")
        try:
            return cls(
                name=str(raw.get("name", "")),
                joints=tuple(str(j) for j in raw.get("joints") or ()),
                topic=str(raw.get("topic", "")),
                controller_joints=tuple(str(j) for j in raw.get("controller_joints") or ()),
                scale=tuple(raw.get("scale") or ()),
            )
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None


RUNTIME_FAMILY = "runtime"


@dataclass(frozen=True, kw_only=True)
class EmbodimentSlot:
    """One embodiment slot of a checkpoint family: the cameras and dimensions it was trained
    with and which dimensions are deltas from the current state."""

    family: str
    name: str
    embodiment_id: int
    cameras: tuple[str, ...]
    delta_mask: tuple[bool, ...]

    def __post_init__(self) -> None:
        where = f"{self.family} slot {self.name}"
        if not isinstance(self.embodiment_id, int) or self.embodiment_id < 0:
            raise ValueError(f"{where}: embodiment_id must be an int >= 0")
        if not self.cameras or len(set(self.cameras)) != len(self.cameras):
            raise ValueError(f"{where}: cameras must be distinct names, got {self.cameras}")
        if not self.delta_mask or not all(isinstance(m, bool) for m in self.delta_mask):
            raise ValueError(f"{where}: delta_mask must be a list of true/false")

    @property
    def dims(self) -> int:
        return len(self.delta_mask)


@dataclass(frozen=True, kw_only=True)
class ModelIO:
    """How one robot feeds one model slot and reads its output.

    ``camera_slots``: per model camera slot, the robot camera feeding it (None: a black frame).
    ``dims``: per model state/action dimension, the robot joint it carries or a constant held
    in the state (its action is discarded). ``delta_mask``: per model dimension, True when the
    model predicts a delta that is added to the current state after un-normalising.
    """

    family: str
    slot: str
    embodiment_id: int
    camera_slots: tuple[str | None, ...]
    dims: tuple[str | float, ...]
    delta_mask: tuple[bool, ...]

    def describe(self) -> str:
        """One line per mapping, for logs and ``predict``."""
        cams = ", ".join(
            f"{slot_cam}<-{robot_cam or 'black'}"
            for slot_cam, robot_cam in zip(self.slot_cameras, self.camera_slots, strict=True)
        )
        dims = " ".join(
            (d if isinstance(d, str) else f"{d:g}") + ("+" if delta else "")
            for d, delta in zip(self.dims, self.delta_mask, strict=True)
        )
        return (
            f"slot {self.embodiment_id} ({self.family}: {self.slot}); cameras {cams}; "
            f"dims [{dims}] (+ = delta)"
        )

    @property
    def slot_cameras(self) -> tuple[str, ...]:
        """The slot's own camera names (the checkpoint's), in slot order."""
        if self.family == RUNTIME_FAMILY:
            return tuple(c or "-" for c in self.camera_slots)
        return SLOT_FAMILIES.get(self.family, field="family").get(self.slot, field="slot").cameras


def _load_slot_families() -> Registry[Registry[EmbodimentSlot]]:
    families: Registry[Registry[EmbodimentSlot]] = Registry("checkpoint family")
    folder = resources.files("gigabrain_runtime.robots") / "data" / "checkpoints"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        data = yaml.safe_load(entry.read_text())
        family = str(data["family"])
        slots: Registry[EmbodimentSlot] = Registry(f"{family} embodiment slot")
        for raw in data["slots"]:
            slots.register(
                raw["name"],
                EmbodimentSlot(
                    family=family,
                    name=raw["name"],
                    embodiment_id=int(raw["embodiment_id"]),
                    cameras=tuple(raw["cameras"]),
                    delta_mask=tuple(raw["delta_mask"]),
                ),
            )
        families.register(family, slots)
    return families


SLOT_FAMILIES: Registry[Registry[EmbodimentSlot]] = _load_slot_families()


@dataclass(frozen=True, kw_only=True)
class Embodiment:
    name: str
    embodiment_id: int
    description: str
    cameras: tuple[str, ...]
    joints: tuple[JointSpec, ...]
    # checkpoint family -> this robot's raw mapping onto one of its slots (see model_io)
    checkpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    # the kinematic chain (calibration's forward kinematics, the simulator's bodies); None for
    # a robot nobody has described yet
    kinematics: Kinematics | None = None
    # a reference pose by joint name (the simulator starts there; other joints at 0)
    home: dict[str, float] = field(default_factory=dict)
    # camera -> the frame_id its images and camera_info carry (REP-105 tools need one); a
    # camera not listed gets "<cam>_optical_frame"
    camera_frames: dict[str, str] = field(default_factory=dict)
    # the ros2_control controllers that take this robot's joints (see ControllerSpec); empty:
    # the robot is driven through the runtime's executor only
    controllers: tuple[ControllerSpec, ...] = ()

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
        for family in self.checkpoints:
            self.model_io(family)  # a bad mapping fails when the robot file is read
        for joint, value in self.home.items():
            if joint not in names:
                raise ValueError(f"embodiment {self.name}: home.{joint} is not a joint")
            spec = self.joints[names.index(joint)]
            if not isinstance(value, (int, float)) or not spec.lower <= value <= spec.upper:
                raise ValueError(
                    f"embodiment {self.name}: home.{joint} must be within "
                    f"[{spec.lower}, {spec.upper}], got {value!r}"
                )
        if self.kinematics is not None:
            self._check_kinematics(self.kinematics)
        for cam, frame in self.camera_frames.items():
            if cam not in self.cameras:
                raise ValueError(f"embodiment {self.name}: camera_frames.{cam} is not a camera")
            if not isinstance(frame, str) or not frame or frame.startswith("/"):
                raise ValueError(
                    f"embodiment {self.name}: camera_frames.{cam} must be a frame name without "
                    f"a leading '/', got {frame!r}"
                )
        self._check_controllers()

    def frame_id(self, camera: str) -> str:
        """The frame_id of ``camera``'s images and camera_info."""
        return self.camera_frames.get(camera, f"{camera}_optical_frame")

    def _check_controllers(self) -> None:
        if not self.controllers:
            return
        where = f"embodiment {self.name}: controllers"
        names = [c.name for c in self.controllers]
        if len(set(names)) != len(names):
            raise ValueError(f"{where}: duplicate controller names {names}")
        claimed = [j for c in self.controllers for j in c.joints]
        unknown = [j for j in claimed if j not in self.joint_names]
        if unknown:
            raise ValueError(f"{where}: {unknown} are not joints of the robot")
        twice = sorted({j for j in claimed if claimed.count(j) > 1})
        if twice:
            raise ValueError(f"{where}: {twice} belong to more than one controller")
        missing = [j for j in self.joint_names if j not in claimed]
        if missing:
            raise ValueError(f"{where}: no controller takes {missing}")

    def _check_kinematics(self, kin: Kinematics) -> None:
        where = f"embodiment {self.name}: kinematics"
        unknown = [j for j in kin.joint_map if j not in self.joint_names]
        if unknown:
            raise ValueError(f"{where}.joint_map: {unknown} are not joints of the robot")
        for j in self.joint_names:
            missing = [c for c in kin.drives(j)[0] if c not in kin.joint_names]
            if missing:
                raise ValueError(
                    f"{where}: joint {j} drives no chain joint {missing} (add it to the links "
                    "or map it in joint_map)"
                )
        strangers = [c.name for c in kin.camera_mounts if c.name not in self.cameras]
        if strangers:
            raise ValueError(f"{where}.camera_mounts: {strangers} are not in cameras")

    def model_io(self, family: str = RUNTIME_FAMILY) -> ModelIO:
        """This robot's mapping onto a model of ``family``. ValueError naming the field when the
        robot has no slot in that family or its mapping disagrees with the slot."""
        if family == RUNTIME_FAMILY:
            return ModelIO(
                family=family,
                slot=self.name,
                embodiment_id=self.embodiment_id,
                camera_slots=self.cameras,
                dims=self.joint_names,
                delta_mask=(False,) * self.dof,
            )
        where = f"robot {self.name}: checkpoints.{family}"
        slots = SLOT_FAMILIES.get(family, field=f"robot {self.name}: checkpoints")
        raw = self.checkpoints.get(family)
        if raw is None:
            with_slot = [n for n in EMBODIMENTS if family in EMBODIMENTS.get(n).checkpoints]
            raise ValueError(
                f"robot {self.name} has no slot in {family} checkpoints (robots with one: "
                f"{', '.join(with_slot) or 'none'}; add a 'checkpoints: {family}:' section to "
                "its YAML, see robots/data/piper_dual.yaml)"
            )
        if not isinstance(raw, dict) or set(raw) != {"slot", "cameras", "dims"}:
            keys = sorted(raw) if isinstance(raw, dict) else raw
            raise ValueError(f"{where}: expected keys slot, cameras, dims, got {keys}")
        slot = slots.get(str(raw["slot"]), field=f"{where}.slot")
        cams = raw["cameras"]
        if not isinstance(cams, dict):
            raise ValueError(f"{where}.cameras: expected a mapping slot camera -> robot camera")
        for cam in cams:
            if cam not in slot.cameras:
                raise ValueError(
                    f"{where}.cameras: camera {cam!r} was never seen by the {slot.name} slot "
                    f"(its cameras: {', '.join(slot.cameras)})"
                )
        camera_slots: list[str | None] = []
        for cam in slot.cameras:
            if cam not in cams:
                raise ValueError(
                    f"{where}.cameras: no entry for the slot's camera {cam!r} (null = black frame)"
                )
            robot_cam = cams[cam]
            if robot_cam is not None and robot_cam not in self.cameras:
                raise ValueError(
                    f"{where}.cameras.{cam}: {robot_cam!r} is not one of the robot's cameras "
                    f"({', '.join(self.cameras)})"
                )
            camera_slots.append(robot_cam)
        dims = raw["dims"]
        if not isinstance(dims, list) or len(dims) != slot.dims:
            n = len(dims) if isinstance(dims, list) else dims
            raise ValueError(f"{where}.dims: the {slot.name} slot has {slot.dims} dims, got {n}")
        out_dims: list[str | float] = []
        for i, d in enumerate(dims):
            if isinstance(d, str):
                if d not in self.joint_names:
                    raise ValueError(f"{where}.dims[{i}]: {d!r} is not a joint of {self.name}")
                out_dims.append(d)
            elif isinstance(d, (int, float)) and not isinstance(d, bool) and math.isfinite(d):
                out_dims.append(float(d))
            else:
                raise ValueError(f"{where}.dims[{i}]: {d!r} is neither a joint nor a number")
        missing = [j for j in self.joint_names if out_dims.count(j) != 1]
        if missing:
            raise ValueError(f"{where}.dims: each joint exactly once; not so for {missing}")
        return ModelIO(
            family=family,
            slot=slot.name,
            embodiment_id=slot.embodiment_id,
            camera_slots=tuple(camera_slots),
            dims=tuple(out_dims),
            delta_mask=slot.delta_mask,
        )

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

    def check_positions(
        self, positions: Any, *, field: str, margin: float = 0.0, tolerance: float = 1e-6
    ) -> np.ndarray:
        """``positions`` ([..., dof], embodiment order) as float64, or ValueError naming
        ``field``, the first offending joint (and point, for a trajectory) and its value: wrong
        width, not finite, or outside ``[lower, upper]`` widened by ``margin`` x the joint's range
        (+ ``tolerance``)."""
        p = np.asarray(positions, dtype=np.float64)
        if p.ndim == 0 or p.shape[-1] != self.dof:
            raise ValueError(f"{field}: expected {self.dof} positions per point, got {p.shape}")
        span = (self.upper - self.lower) * margin + tolerance
        lo, hi = self.lower - span, self.upper + span
        bad = ~np.isfinite(p) | (p < lo) | (p > hi)
        if not bad.any():
            return p
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        j, value = where[-1], p[where]
        point = f"point {where[0]} " if p.ndim == 2 else ""
        name = self.joint_names[j]
        if not np.isfinite(value):
            raise ValueError(f"{field}: {point}{name} is not finite ({value})")
        beyond = f" by more than {margin:g} of its range" if margin else ""
        raise ValueError(
            f"{field}: {point}{name}={value:.4f} outside [{self.lower[j]:.4f}, "
            f"{self.upper[j]:.4f}]{beyond}"
        )

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
        known = {
            "name",
            "embodiment_id",
            "description",
            "cameras",
            "joints",
            "checkpoints",
            "kinematics",
            "home",
            "camera_frames",
            "controllers",
        }
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
            checkpoints=_checkpoints(data.get("checkpoints"), source),
            kinematics=Kinematics.from_dict(data["kinematics"], source=source)
            if "kinematics" in data
            else None,
            home=_home(data.get("home"), source),
            camera_frames=_str_map(data.get("camera_frames"), "camera_frames", source),
            controllers=tuple(
                ControllerSpec.from_dict(c, source=f"{source}: controllers[{i}]")
                for i, c in enumerate(_list(data.get("controllers"), "controllers", source))
            ),
        )

    @classmethod
    def from_yaml(cls, path: str | Path) -> Embodiment:
        path = Path(path)
        return cls.from_dict(yaml.safe_load(path.read_text()), source=str(path))


def _checkpoints(raw: Any, source: str) -> dict[str, dict[str, Any]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise ValueError(
            f"{source}: checkpoints must map a checkpoint family to a mapping "
            f"(slot, cameras, dims), got {raw!r}"
        )
    return {str(k): dict(v) for k, v in raw.items()}


def _str_map(raw: Any, name: str, source: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError(f"{source}: {name} must be a mapping, got {raw!r}")
    return {str(k): v for k, v in raw.items()}


def _list(raw: Any, name: str, source: str) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValueError(f"{source}: {name} must be a list, got {raw!r}")
    return raw


def _home(raw: Any, source: str) -> dict[str, float]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError(f"{source}: home must map joint names to positions, got {raw!r}")
    return {str(k): v for k, v in raw.items()}


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
