"""The piper_ros driver's conventions, and how the runtime's joints map onto one or more drivers.

What the driver (agilexrobotics/Piper_ros, node ``piper_single_ctrl``) expects on
``joint_ctrl_single`` (sensor_msgs/JointState), read from its ``joint_callback``:

* ``name``/``position``: joint1..joint6 are looked up *by name* (a missing name is commanded to
  0 rad), the gripper is ``position[6]`` *by index* (metres of total opening, x1e6 to the CAN
  units, no clamping in the ROS 2 driver);
* ``velocity[6]``: the arm's speed as a percentage, clipped to 1..100 - used only when
  ``velocity`` has exactly 7 entries and not all of them are zero, otherwise the driver sets 100;
* ``effort[6]``: gripper torque in N m, clipped to 0.5..3 (1.0 when absent).

It publishes ``joint_states_single`` and ``joint_ctrl`` (the leader arm's commands, when one is
on the CAN bus) with names joint1..joint6, gripper at 200 Hz, and enables/disables the arm on
``enable_flag`` (std_msgs/Bool; enabling also re-initialises the gripper to 0).

Several arms (a dual PiPER) are one embodiment whose joint names carry a per-arm prefix
(``left_joint1`` ... ``right_gripper``); :class:`ArmSplit` is the one mapping between the
embodiment's joint vector and each driver's seven values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gigabrain_runtime.robots.embodiment import Embodiment, positions_by_name

DRIVER_JOINTS: tuple[str, ...] = (
    "joint1",
    "joint2",
    "joint3",
    "joint4",
    "joint5",
    "joint6",
    "gripper",
)
GRIPPER_INDEX = 6  # the driver reads the gripper by index, never by name


@dataclass(frozen=True, kw_only=True)
class PiperDriverConfig:
    """What the bridge writes into the driver's extra JointState fields."""

    speed_percent: int = 100  # velocity[6]: the arm's own speed limit, % of its maximum
    gripper_effort_nm: float = 1.0  # effort[6]: gripper torque

    def __post_init__(self) -> None:
        if not isinstance(self.speed_percent, int) or not 1 <= self.speed_percent <= 100:
            raise ValueError(f"speed_percent: must be an int in 1..100, got {self.speed_percent!r}")
        if not math.isfinite(self.gripper_effort_nm) or not (0.5 <= self.gripper_effort_nm <= 3.0):
            raise ValueError(
                f"gripper_effort: must be in 0.5..3.0 N m, got {self.gripper_effort_nm!r}"
            )

    def command_fields(
        self, positions7: np.ndarray
    ) -> tuple[list[str], list[float], list[float], list[float]]:
        """(name, position, velocity, effort) of one ``joint_ctrl_single`` message."""
        p = np.asarray(positions7, dtype=np.float64)
        if p.shape != (len(DRIVER_JOINTS),):
            raise ValueError(f"piper command: expected 7 positions, got shape {p.shape}")
        velocity = [0.0] * 6 + [float(self.speed_percent)]
        effort = [0.0] * 6 + [float(self.gripper_effort_nm)]
        return list(DRIVER_JOINTS), [float(x) for x in p], velocity, effort


@dataclass(frozen=True)
class ArmSplit:
    """Arm i drives the embodiment joints ``prefixes[i] + DRIVER_JOINTS[j]``.

    ``index[i, j]`` is that joint's position in the embodiment's joint vector; every embodiment
    joint belongs to exactly one arm.
    """

    prefixes: tuple[str, ...]
    index: np.ndarray  # int [arms, 7]
    dof: int

    @classmethod
    def from_embodiment(cls, embodiment: Embodiment, prefixes: tuple[str, ...]) -> ArmSplit:
        if not prefixes:
            raise ValueError("arm_prefixes: need at least one arm")
        if len(set(prefixes)) != len(prefixes):
            raise ValueError(f"arm_prefixes: duplicate prefixes {list(prefixes)}")
        where = {n: i for i, n in enumerate(embodiment.joint_names)}
        index = np.zeros((len(prefixes), len(DRIVER_JOINTS)), dtype=np.int64)
        for a, prefix in enumerate(prefixes):
            for j, joint in enumerate(DRIVER_JOINTS):
                name = prefix + joint
                if name not in where:
                    raise ValueError(
                        f"arm_prefixes: {prefix!r} names joint {name!r}, which embodiment "
                        f"{embodiment.name} does not have (its joints: "
                        f"{list(embodiment.joint_names)})"
                    )
                index[a, j] = where[name]
        covered = sorted(index.reshape(-1).tolist())
        if covered != list(range(embodiment.dof)):
            left = [embodiment.joint_names[i] for i in range(embodiment.dof) if i not in covered]
            raise ValueError(
                f"arm_prefixes: {list(prefixes)} leave joints of {embodiment.name} without a "
                f"driver: {left}"
            )
        return cls(prefixes=tuple(prefixes), index=index, dof=embodiment.dof)

    @property
    def arms(self) -> int:
        return len(self.prefixes)

    def split(self, positions: np.ndarray) -> np.ndarray:
        """Embodiment vector [dof] -> per-arm driver values [arms, 7]."""
        return np.asarray(positions, dtype=np.float64)[self.index]

    def merge(self, per_arm: np.ndarray) -> np.ndarray:
        """Per-arm driver values [arms, 7] -> embodiment vector [dof]."""
        out = np.empty(self.dof, dtype=np.float64)
        out[self.index] = np.asarray(per_arm, dtype=np.float64)
        return out


def driver_positions(names: list[str], positions: list[float], *, field: str) -> np.ndarray:
    """The 7 values of a driver JointState (``joint_states_single`` or ``joint_ctrl``) in
    DRIVER_JOINTS order. Raises ValueError naming ``field`` on missing joints or bad values."""
    return positions_by_name(names, positions, DRIVER_JOINTS, field=field)
