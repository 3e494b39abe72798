"""A scripted expert for the simulated pick-and-place scene: the demo's "operator".

Waypoints (above the cube, at the cube, grasp, lift, above the bowl, release) are solved once by
damped-least-squares inverse kinematics on the scene's MuJoCo model, with the gripper pointing
down; the operator then plays them from wherever the arm is when it takes over, with
minimum-jerk timing. Only the PiPER scene defines the task (``expert`` in its scene file).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gigabrain_runtime.control.blending import minimum_jerk
from gigabrain_runtime.robots.embodiment import Embodiment
from gigabrain_runtime.sim.simulator import Simulator, import_mujoco


@dataclass(frozen=True)
class Waypoint:
    name: str
    joints: np.ndarray  # embodiment order and units
    duration_s: float  # time to reach it from the previous waypoint


def solve_ik(
    sim: Simulator,
    body: str,
    point_local: np.ndarray,
    target: np.ndarray,
    q0: np.ndarray,
    *,
    iterations: int = 300,
    damping: float = 0.05,
) -> np.ndarray:
    """Arm joints (embodiment order; the gripper kept) placing ``point_local`` of ``body`` at
    ``target`` (world) with the body's z axis pointing down."""
    mujoco = import_mujoco()
    model = sim.model
    data = mujoco.MjData(model)
    links = sim.links
    arm = [
        i
        for i, link in enumerate(links)
        if len(link.sim_joints) == 1
        and model.jnt_type[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, link.sim_joints[0])]
        == mujoco.mjtJoint.mjJNT_HINGE
    ]
    dofs = [
        int(
            model.jnt_dofadr[
                mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, links[i].sim_joints[0])
            ]
        )
        for i in arm
    ]
    qadr = [sim._qpos_adr[links[i].sim_joints[0]] for i in arm]
    bid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, body)
    q = np.array(q0, dtype=np.float64)
    lo, hi = sim.embodiment.lower, sim.embodiment.upper
    jacp, jacr = np.zeros((3, model.nv)), np.zeros((3, model.nv))
    down = np.array([0.0, 0.0, -1.0])
    for _ in range(iterations):
        for i, a in zip(arm, qadr, strict=True):
            data.qpos[a] = q[i]
        mujoco.mj_kinematics(model, data)
        mujoco.mj_comPos(model, data)  # the Jacobian needs the com-based motion dofs
        rot = data.xmat[bid].reshape(3, 3)
        point = data.xpos[bid] + rot @ point_local
        err_p = target - point
        err_r = np.cross(rot[:, 2], down)  # rotate the body's z toward down
        if np.linalg.norm(err_p) < 1e-4 and np.linalg.norm(err_r) < 1e-3:
            break
        mujoco.mj_jac(model, data, jacp, jacr, point, bid)
        jac = np.vstack([jacp[:, dofs], 0.3 * jacr[:, dofs]])
        err = np.concatenate([err_p, 0.3 * err_r])
        dq = jac.T @ np.linalg.solve(jac @ jac.T + damping**2 * np.eye(6), err)
        q[arm] = np.clip(q[arm] + dq, lo[arm], hi[arm])
    return q


def pick_and_place(sim: Simulator) -> list[Waypoint]:
    """The expert's waypoints for the scene's task (ValueError if the scene defines none)."""
    task = sim.scene.get("expert")
    if not task:
        raise ValueError(f"scene {sim.embodiment.name}: no expert task defined")
    body, point = task["body"], np.asarray(task["point"], float)
    # where the objects are now (an episode start moves them)
    cube, bowl = sim.body_position(task["pick"]), sim.body_position(task["place"])
    grip = sim.embodiment.joint_names.index(task["gripper"])
    opened, closed = float(task["open"]), float(task["closed"])
    above = np.array([0.0, 0.0, float(task["approach_height"])])
    q = sim.joint_positions()
    plan = []
    for name, target, g, dur in [
        ("above_cube", cube + above, opened, 1.5),
        ("at_cube", cube + np.array([0, 0, 0.005]), opened, 1.0),
        ("grasp", None, closed, 0.6),
        ("lift", cube + above, closed, 1.0),
        ("above_bowl", bowl + above, closed, 1.5),
        ("release", None, opened, 0.6),
    ]:
        if target is not None:
            q = solve_ik(sim, body, point, target, q)
        q = q.copy()
        q[grip] = g
        plan.append(Waypoint(name, q, dur))
    return plan


class ExpertOperator:
    """Plays the waypoints from the pose the arm is in at ``start``.

    ``pace_from``: the pose the first waypoint's duration was written for (the arm's home).
    Given it, the first move lasts in proportion to how far the arm has to go from where it was
    taken over - the largest joint move against the one from ``pace_from`` - at least
    ``min_move_s`` and at most the written duration: an operator who takes over next to the cube
    goes straight on to it, at the demonstrations' pace, instead of creeping there for the time
    a move from home takes (corrections that hover where the policy hovered teach it to hover).
    Without it every waypoint keeps its written duration (the demonstrations, from home)."""

    def __init__(
        self,
        embodiment: Embodiment,
        waypoints: list[Waypoint],
        *,
        pace_from: np.ndarray | None = None,
        min_move_s: float = 0.4,
    ) -> None:
        if not waypoints:
            raise ValueError("waypoints: the operator needs at least one")
        if not min_move_s > 0:
            raise ValueError(f"min_move_s: must be > 0, got {min_move_s}")
        self.embodiment = embodiment
        self.waypoints = list(waypoints)
        self._written = list(waypoints)
        self._pace_from = None if pace_from is None else np.asarray(pace_from, float).copy()
        self._min_move_s = float(min_move_s)
        self._t0: float | None = None
        self._from: np.ndarray | None = None

    def start(self, t: float, measured: np.ndarray) -> None:
        self._t0, self._from = t, np.asarray(measured, float).copy()
        self.waypoints = list(self._written)
        if self._pace_from is not None:
            first = self._written[0]
            reference = float(np.max(np.abs(first.joints - self._pace_from)))
            distance = float(np.max(np.abs(first.joints - self._from)))
            scale = min(1.0, distance / reference) if reference > 0 else 1.0
            duration = min(first.duration_s, max(self._min_move_s, first.duration_s * scale))
            self.waypoints[0] = Waypoint(first.name, first.joints, duration)

    @property
    def first_move_s(self) -> float:
        """How long the move to the first waypoint takes (after :meth:`start`)."""
        return self.waypoints[0].duration_s

    @property
    def started(self) -> bool:
        return self._t0 is not None

    def command(self, t: float) -> np.ndarray:
        if self._t0 is None or self._from is None:
            raise RuntimeError("ExpertOperator.command before start()")
        elapsed = t - self._t0
        prev = self._from
        for wp in self.waypoints:
            if elapsed <= wp.duration_s:
                w = minimum_jerk(elapsed / wp.duration_s)
                return (1.0 - w) * prev + w * wp.joints
            elapsed -= wp.duration_s
            prev = wp.joints
        return self.waypoints[-1].joints.copy()


def grasp_point(sim: Simulator, joints: np.ndarray) -> np.ndarray:
    """Where the gripper grasps (the scene's expert ``body`` and ``point``), world frame (m),
    with the arm at ``joints``: forward kinematics, as a person sees the gripper."""
    task = sim.scene.get("expert")
    if not task:
        raise ValueError(f"scene {sim.embodiment.name}: no expert task defined")
    return sim.point_at(joints, task["body"], np.asarray(task["point"], float))
