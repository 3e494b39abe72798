"""Forward kinematics of an embodiment, from its simulation scene (``sim/data/<robot>.yaml``).

The scene's joint origins are the URDF's, so the MuJoCo body frames are the URDF link frames and
``T_base_flange`` here is what ``tf2`` reports on the robot. mujoco is imported lazily, in
:class:`ArmKinematics`; the module itself is light.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from gigabrain_runtime.geometry import pose, quat_xyzw_to_matrix
from gigabrain_runtime.robots.embodiment import Embodiment, get_embodiment
from gigabrain_runtime.sim.simulator import build_mjcf, load_scene

# MuJoCo cameras look along -z with y up; ROS optical frames look along +z with y down.
MJ_TO_OPTICAL = np.diag([1.0, -1.0, -1.0])


def quat_wxyz_to_matrix(q: np.ndarray) -> np.ndarray:
    """MuJoCo's (w, x, y, z) quaternion -> rotation matrix."""
    return quat_xyzw_to_matrix(np.roll(np.asarray(q, dtype=np.float64), -1))


class ArmKinematics:
    """``T_base_flange`` for joint positions of ``robot`` (a built-in name or a YAML path).

    ``flange`` is the body whose pose is wanted (default: the body carrying ``camera`` in the
    scene, else see :meth:`default_flange`); ``base`` the frame it is expressed in (default:
    the scene's root body, e.g. ``base_link``).
    ``arm_prefix`` is prepended to the embodiment's joint names when reading joint positions by
    name, for an arm of a dual rig whose joints are published as e.g. ``left_joint1``.
    Raises ValueError for an unknown robot, body or camera.
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
        import mujoco

        self._mj = mujoco
        self.embodiment = get_embodiment(robot) if isinstance(robot, str) else robot
        self.scene: dict[str, Any] = load_scene(self.embodiment.name)
        self.model = mujoco.MjModel.from_xml_string(build_mjcf(self.scene, self.embodiment, 64))
        self.data = mujoco.MjData(self.model)
        self.arm_prefix = arm_prefix
        roots = [b["name"] for b in self.scene["bodies"] if b["parent"] == "world"]
        self.base = base or roots[0]
        self.flange = flange or self.default_flange(camera)
        self._base_id = self._body_id(self.base, "base")
        self._flange_id = self._body_id(self.flange, "flange")
        jmap = self.scene.get("joint_map", {}) or {}
        # embodiment joint -> [(qpos address, scale)] of the simulated joints it drives
        self._qpos: dict[str, list[tuple[int, float]]] = {}
        chain = set(self._ancestors(self._flange_id))
        chain_joints = []
        for j in self.embodiment.joint_names:
            sims = jmap[j]["joints"] if j in jmap else [j]
            scale = float(jmap[j].get("scale", 1.0)) if j in jmap else 1.0
            entries = []
            moves_flange = False
            for sj in sims:
                jid = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_JOINT, sj)
                if jid < 0:
                    raise ValueError(f"robot {self.embodiment.name}: no simulated joint {sj!r}")
                entries.append((int(self.model.jnt_qposadr[jid]), scale))
                moves_flange |= int(self.model.jnt_bodyid[jid]) in chain
            self._qpos[j] = entries
            if moves_flange:
                chain_joints.append(j)
        self.chain_joints = tuple(chain_joints)
        if not self.chain_joints:
            raise ValueError(f"flange: no joint of {self.embodiment.name} moves {self.flange!r}")

    # ---- scene look-ups ----------------------------------------------------------------------
    def _body_id(self, name: str, field: str) -> int:
        bid = self._mj.mj_name2id(self.model, self._mj.mjtObj.mjOBJ_BODY, name)
        if bid < 0:
            known = ", ".join(b["name"] for b in self.scene["bodies"])
            raise ValueError(f"{field}: no body {name!r} in {self.embodiment.name} (have: {known})")
        return int(bid)

    def _ancestors(self, bid: int) -> list[int]:
        out = [bid]
        while bid > 0:
            bid = int(self.model.body_parentid[bid])
            out.append(bid)
        return out

    def default_flange(self, camera: str | None = None) -> str:
        """The body carrying ``camera`` in the scene when it rides on the robot; else the one
        body that carries a camera on a moving link (a wrist camera's link). ValueError when
        that is ambiguous (e.g. a two-armed robot): pass ``flange`` explicitly."""
        mounts = {
            c["name"]: c["parent"] for c in self.scene.get("cameras", []) if c["parent"] != "world"
        }
        if camera is not None and camera in mounts:
            return mounts[camera]
        # a camera on a body that no joint moves (a head on a fixed torso) is not a flange
        moving = {b["name"] for b in self.scene["bodies"] if b.get("joint")}
        parents = {b["name"]: b["parent"] for b in self.scene["bodies"]}

        def moved(name: str) -> bool:
            while name in parents:
                if name in moving:
                    return True
                name = parents[name]
            return False

        candidates = sorted({p for p in mounts.values() if moved(p)})
        if len(candidates) != 1:
            raise ValueError(
                f"flange: cannot tell which link of {self.embodiment.name} is the flange "
                f"(camera-carrying links: {', '.join(candidates) or 'none'}); name it"
            )
        return candidates[0]

    def camera_mount(self, camera: str) -> tuple[str, np.ndarray]:
        """(parent body, T_parent_camera-optical) of a camera as the scene places it: a nominal
        mount to compare a calibration against. ValueError for an unknown camera."""
        cid = self._mj.mj_name2id(self.model, self._mj.mjtObj.mjOBJ_CAMERA, camera)
        if cid < 0:
            known = ", ".join(c["name"] for c in self.scene.get("cameras", []))
            raise ValueError(f"camera: no {camera!r} in the {self.embodiment.name} scene ({known})")
        body = self._mj.mj_id2name(
            self.model, self._mj.mjtObj.mjOBJ_BODY, int(self.model.cam_bodyid[cid])
        )
        R = quat_wxyz_to_matrix(self.model.cam_quat[cid]) @ MJ_TO_OPTICAL
        return body, pose(R, self.model.cam_pos[cid])

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

    def _set(self, q: np.ndarray | Mapping[str, float]) -> None:
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
        for j, value in zip(self.embodiment.joint_names, q, strict=True):
            for adr, scale in self._qpos[j]:
                self.data.qpos[adr] = value * scale
        self._mj.mj_kinematics(self.model, self.data)

    def _world(self, bid: int) -> np.ndarray:
        return pose(self.data.xmat[bid].reshape(3, 3), self.data.xpos[bid])

    def body_pose(self, q: np.ndarray | Mapping[str, float], body: str) -> np.ndarray:
        """T_base_body (4x4, metres) at joint positions ``q`` (embodiment order or by name)."""
        bid = self._body_id(body, "body")
        self._set(q)
        return np.linalg.inv(self._world(self._base_id)) @ self._world(bid)

    def flange_pose(self, q: np.ndarray | Mapping[str, float]) -> np.ndarray:
        """T_base_flange (4x4, metres) at joint positions ``q`` (embodiment order or by name)."""
        self._set(q)
        return np.linalg.inv(self._world(self._base_id)) @ self._world(self._flange_id)
