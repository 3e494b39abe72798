"""Forward kinematics of an embodiment for the calibration tools, from the robot's own data
(``kinematics:`` in ``robots/data/<robot>.yaml``, the URDF joint origins), so ``T_base_flange``
here is what ``tf2`` reports on the robot. Pure numpy.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from gigabrain_runtime.geometry import pose
from gigabrain_runtime.robots.embodiment import EMBODIMENTS, Embodiment, get_embodiment
from gigabrain_runtime.robots.kinematics import WORLD, Kinematics

# MuJoCo-convention cameras (the mounts) look along -z with y up; ROS optical frames look along
# +z with y down.
MJ_TO_OPTICAL = np.diag([1.0, -1.0, -1.0])


class ArmKinematics:
    """``T_base_flange`` for joint positions of ``robot`` (a built-in name or a YAML path).

    ``flange`` is the link whose pose is wanted (default: the link carrying ``camera`` on the
    robot, else see :meth:`default_flange`); ``base`` the frame it is expressed in (default:
    the robot's root link, e.g. ``base_link``).
    ``arm_prefix`` is prepended to the embodiment's joint names when reading joint positions by
    name, for an arm of a dual rig whose joints are published as e.g. ``left_joint1``.
    Raises ValueError for a robot without kinematics, an unknown link or camera.
    """

    def __init__(
        self,
        robot: str | Embodiment,
        *,
        flange: str | None = None,
        base: str | None = None,
        arm_prefix: str = "",
        camera: str | None = None,
    ) -> None:
        self.embodiment = get_embodiment(robot) if isinstance(robot, str) else robot
        if self.embodiment.kinematics is None:
            have = [n for n in EMBODIMENTS if EMBODIMENTS.get(n).kinematics is not None]
            raise ValueError(
                f"robot: {self.embodiment.name} has no kinematics in its robot file (have: "
                f"{', '.join(have)}); for one arm of a dual rig use that arm's robot with "
                "--arm-prefix"
            )
        self.kinematics: Kinematics = self.embodiment.kinematics
        self.arm_prefix = arm_prefix
        roots = [lk.name for lk in self.kinematics.links if lk.parent == WORLD]
        self.base = base or roots[0]
        self.flange = flange or self.default_flange(camera)
        for name, field in ((self.base, "base"), (self.flange, "flange")):
            self._check_link(name, field)
        above_flange = set(self.kinematics.ancestors(self.flange))
        moved_by = {lk.joint.name: lk.name for lk in self.kinematics.links if lk.joint}
        self.chain_joints = tuple(
            j
            for j in self.embodiment.joint_names
            if any(moved_by[c] in above_flange for c in self.kinematics.drives(j)[0])
        )
        if not self.chain_joints:
            raise ValueError(f"flange: no joint of {self.embodiment.name} moves {self.flange!r}")

    # ---- robot data look-ups -----------------------------------------------------------------
    def _check_link(self, name: str, field: str) -> None:
        if name not in self.kinematics.link_names:
            known = ", ".join(self.kinematics.link_names)
            raise ValueError(f"{field}: no link {name!r} in {self.embodiment.name} (have: {known})")

    def default_flange(self, camera: str | None = None) -> str:
        """The link carrying ``camera`` on the robot; else the one link that carries a camera
        on a moving link (a wrist camera's link). ValueError when that is ambiguous (e.g. a
        two-armed robot): pass ``flange`` explicitly."""
        mounts = {c.name: c.parent for c in self.kinematics.camera_mounts}
        if camera is not None and camera in mounts:
            return mounts[camera]
        # a camera on a link that no joint moves (a head on a fixed torso) is not a flange
        moving = {lk.name for lk in self.kinematics.links if lk.joint}

        def moved(name: str) -> bool:
            return any(a in moving for a in self.kinematics.ancestors(name))

        candidates = sorted({p for p in mounts.values() if moved(p)})
        if len(candidates) != 1:
            raise ValueError(
                f"flange: cannot tell which link of {self.embodiment.name} is the flange "
                f"(camera-carrying links: {', '.join(candidates) or 'none'}); name it"
            )
        return candidates[0]

    def camera_mount(self, camera: str) -> tuple[str, np.ndarray]:
        """(parent link, T_parent_camera-optical) of a camera as the robot data mounts it: a
        nominal mount to compare a calibration against. ValueError for an unknown camera."""
        mounts = {c.name: c for c in self.kinematics.camera_mounts}
        if camera not in mounts:
            known = ", ".join(mounts)
            raise ValueError(f"camera: no {camera!r} mounted on {self.embodiment.name} ({known})")
        T = mounts[camera].matrix
        return mounts[camera].parent, pose(T[:3, :3] @ MJ_TO_OPTICAL, T[:3, 3])

    # ---- forward kinematics ------------------------------------------------------------------
    @property
    def joint_names(self) -> tuple[str, ...]:
        """The names joint positions are read by (with ``arm_prefix``), embodiment order."""
        return tuple(self.arm_prefix + j for j in self.embodiment.joint_names)

    def positions_from_names(self, names: list[str], values: list[float]) -> np.ndarray:
        """Embodiment-ordered positions from (name, value) pairs, e.g. a JointState. Joints that
        do not move the flange (the gripper) default to 0 within limits; a missing chain joint
        raises ValueError naming it."""
        by_name = dict(zip(names, values, strict=True))
        missing = [
            self.arm_prefix + j for j in self.chain_joints if self.arm_prefix + j not in by_name
        ]
        if missing:
            raise ValueError(f"joints: missing {', '.join(missing)} (have: {', '.join(names)})")
        lo, hi = self.embodiment.lower, self.embodiment.upper
        return np.array(
            [
                float(by_name.get(self.arm_prefix + j, np.clip(0.0, lo[i], hi[i])))
                for i, j in enumerate(self.embodiment.joint_names)
            ]
        )

    def _link_poses(self, q: np.ndarray | Mapping[str, float]) -> dict[str, np.ndarray]:
        if isinstance(q, Mapping):
            q = self.positions_from_names(list(q), list(q.values()))
        q = np.asarray(q, dtype=np.float64).reshape(-1)
        if q.shape != (self.embodiment.dof,):
            raise ValueError(
                f"joint positions: expected {self.embodiment.dof} values "
                f"({', '.join(self.embodiment.joint_names)}), got {q.shape[0]}"
            )
        if not np.all(np.isfinite(q)):
            raise ValueError("joint positions: contain NaN or inf")
        chain: dict[str, float] = {}
        for j, value in zip(self.embodiment.joint_names, q, strict=True):
            targets, scale = self.kinematics.drives(j)
            for c in targets:
                chain[c] = value * scale
        return self.kinematics.link_poses(chain)

    def body_pose(self, q: np.ndarray | Mapping[str, float], body: str) -> np.ndarray:
        """T_base_body (4x4, metres) of link ``body`` at joint positions ``q`` (embodiment
        order or by name)."""
        self._check_link(body, "body")
        poses = self._link_poses(q)
        return np.linalg.inv(poses[self.base]) @ poses[body]

    def flange_pose(self, q: np.ndarray | Mapping[str, float]) -> np.ndarray:
        """T_base_flange (4x4, metres) at joint positions ``q`` (embodiment order or by name)."""
        return self.body_pose(q, self.flange)
