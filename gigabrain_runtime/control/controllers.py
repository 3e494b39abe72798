"""Action chunks for ros2_control joint_trajectory_controllers (JTC), one per controller.

The runtime's own executor takes ``action_chunk`` (every joint, positions on a uniform grid, the
plan followed for at most ``max_open_loop_s``). A robot driven by ros2_control instead takes one
``trajectory_msgs/JointTrajectory`` per controller - on PiPER an arm controller (joint1..joint6)
and a gripper controller - and JTC accepts a trajectory only when (ros2_controllers
``JointTrajectoryController::validate_trajectory_msg``, default parameters since jazzy):

* it names exactly the controller's joints (``allow_partial_joints_goal: false``), none unknown;
* it has points, with ``time_from_start`` strictly increasing, and every point gives one
  position per joint and one velocity per joint (or none);
* its last point's velocities are zero (``allow_nonzero_velocity_at_trajectory_end: false``);
* a non-zero ``header.stamp`` plus its points' times does not lie in the past.

So each chunk becomes a plan that ends at rest: the policy's points (clipped into the joint
limits) with velocities from central differences within the joints' max_velocity (JTC then
interpolates with cubic splines),
and after the last point a braking tail that brings every joint to rest together, no joint
decelerating harder than its ``max_acceleration``. JTC replaces the running trajectory with each
new one, so the tail only runs when chunks stop coming - the same end the executor's open-loop
limit gives. The stop (inputs gone, the vla's hold) is the braking path from where the last plan
is now, ending at rest; with no plan running, one point at the measured position. JTC accepts
both, where an empty trajectory would be refused ("Empty trajectory received").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gigabrain_runtime.robots.embodiment import ControllerSpec, Embodiment


@dataclass(frozen=True, kw_only=True)
class Trajectory:
    """A JointTrajectory without ROS: point k is due ``times_s[k]`` after ``stamp_s`` (0: when
    the controller receives it)."""

    joint_names: tuple[str, ...]
    stamp_s: float
    times_s: np.ndarray  # [n], > 0, strictly increasing
    positions: np.ndarray  # [n, joints]
    velocities: np.ndarray  # [n, joints]

    def __post_init__(self) -> None:
        n, j = self.positions.shape
        if (
            self.velocities.shape != (n, j)
            or self.times_s.shape != (n,)
            or j != len(self.joint_names)
        ):
            raise ValueError(
                f"trajectory: {len(self.joint_names)} joints, times {self.times_s.shape}, "
                f"positions {self.positions.shape}, velocities {self.velocities.shape} disagree"
            )

    @property
    def end_s(self) -> float:
        return self.stamp_s + float(self.times_s[-1])

    def sample(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(position, velocity) at time ``t`` as JTC interpolates positions with velocities:
        a cubic Hermite spline between points; the first point before it, the last after."""
        u = t - self.stamp_s
        times, pos, vel = self.times_s, self.positions, self.velocities
        if u <= times[0]:
            return pos[0].copy(), vel[0].copy()
        if u >= times[-1]:
            return pos[-1].copy(), np.zeros_like(vel[-1])
        k = int(np.searchsorted(times, u, side="right")) - 1
        h = float(times[k + 1] - times[k])
        s = (u - float(times[k])) / h
        p0, p1, v0, v1 = pos[k], pos[k + 1], vel[k] * h, vel[k + 1] * h
        h00, h10, h01, h11 = (
            2 * s**3 - 3 * s**2 + 1,
            s**3 - 2 * s**2 + s,
            -2 * s**3 + 3 * s**2,
            s**3 - s**2,
        )
        d00, d10, d01, d11 = (
            6 * s**2 - 6 * s,
            3 * s**2 - 4 * s + 1,
            -6 * s**2 + 6 * s,
            3 * s**2 - 2 * s,
        )
        p = h00 * p0 + h10 * v0 + h01 * p1 + h11 * v1
        v = (d00 * p0 + d10 * v0 + d01 * p1 + d11 * v1) / h
        return p, v


def braking_tail(
    position: np.ndarray, velocity: np.ndarray, max_acceleration: np.ndarray, dt: float
) -> tuple[np.ndarray, np.ndarray]:
    """Points every ``dt`` that bring every joint from (position, velocity) to rest together:
    each decelerates uniformly over the same whole number of periods, the slowest to stop at
    exactly its ``max_acceleration``. Returns (positions [n, j], velocities [n, j]) with the last
    velocities exactly zero; n = 0 when already at rest."""
    velocity = np.asarray(velocity, dtype=np.float64)
    stop_s = float(np.max(np.abs(velocity) / max_acceleration)) if velocity.size else 0.0
    n = math.ceil(stop_s / dt - 1e-9)
    if n <= 0:
        return np.empty((0, velocity.size)), np.empty((0, velocity.size))
    decel = velocity / (n * dt)
    t = (np.arange(1, n + 1) * dt)[:, None]
    positions = position + velocity * t - 0.5 * decel * t**2
    velocities = velocity - decel * t
    velocities[-1] = 0.0
    return positions, velocities


class ControllerOutput:
    """Chunks and stops for an embodiment's ros2_control controllers (ROS-free; the vla node
    turns each :class:`Trajectory` into a JointTrajectory on the controller's topic)."""

    def __init__(self, embodiment: Embodiment, dt_s: float) -> None:
        if not embodiment.controllers:
            raise ValueError(
                f"controller_output: robot {embodiment.name} lists no controllers (add a "
                "'controllers:' section to its YAML, see robots/data/piper.yaml)"
            )
        if not dt_s > 0:
            raise ValueError(f"dt_s: must be > 0, got {dt_s}")
        self.embodiment = embodiment
        self.controllers: tuple[ControllerSpec, ...] = embodiment.controllers
        self.dt = dt_s
        names = embodiment.joint_names
        self._columns = [np.array([names.index(j) for j in c.joints]) for c in self.controllers]
        self._plan: Trajectory | None = None

    def chunk(
        self, actions: np.ndarray, start: np.ndarray, stamp_s: float, now_s: float
    ) -> list[tuple[ControllerSpec, Trajectory]]:
        """The chunk ``actions`` [H, dof] (point i due ``(i + 1) dt`` after ``stamp_s``, the time of
        the observation whose measured state was ``start``), one trajectory per controller.

        Stamped 0 ("start when received"), with the points already due by ``now_s`` dropped and
        the rest timed from ``now_s``: JTC then interpolates from the arm's state to the next
        point instead of jumping into the middle of the chunk, and a controller whose clock
        differs from this machine's still accepts it (a non-zero stamp is compared with the
        controller's own clock). Empty when the whole chunk, tail included, is already due."""
        emb, dt = self.embodiment, self.dt
        actions = np.clip(np.asarray(actions, dtype=np.float64), emb.lower, emb.upper)
        path = np.concatenate([np.asarray(start, dtype=np.float64)[None], actions])
        # the spline's velocity at each point, within the joint's max_velocity (a chunk whose
        # points jump asks for more than the joint has; JTC itself limits nothing)
        vmax = emb.max_velocity
        velocities = np.clip(np.gradient(path, dt, axis=0)[1:], -vmax, vmax)
        tail_p, tail_v = braking_tail(actions[-1], velocities[-1], emb.max_acceleration, dt)
        positions = np.concatenate([actions, np.clip(tail_p, emb.lower, emb.upper)])
        velocities = np.concatenate([velocities, tail_v])
        velocities[-1] = 0.0
        due = stamp_s + np.arange(1, len(positions) + 1) * dt - now_s
        keep = due > 1e-6
        if not keep.any():
            return []
        self._plan = Trajectory(
            joint_names=emb.joint_names,
            stamp_s=now_s,
            times_s=due[keep],
            positions=positions[keep],
            velocities=velocities[keep],
        )
        return self._split(self._plan, stamp_s=0.0)

    def stop(self, now_s: float, measured: np.ndarray) -> list[tuple[ControllerSpec, Trajectory]]:
        """Bring the arm to rest: the braking path from where the running plan is at ``now_s``
        (at each joint's max_acceleration), or, with no plan running, a hold point at
        ``measured``. Stamped 0: the controller starts it when it arrives."""
        emb, dt = self.embodiment, self.dt
        plan = self._plan
        if plan is not None and now_s < plan.end_s:
            position, velocity = plan.sample(now_s)
            velocity = np.clip(velocity, -emb.max_velocity, emb.max_velocity)
        else:
            position = np.asarray(measured, dtype=np.float64)
            velocity = np.zeros_like(position)
        position = np.clip(position, emb.lower, emb.upper)
        tail_p, tail_v = braking_tail(position, velocity, emb.max_acceleration, dt)
        if len(tail_p) == 0:
            tail_p, tail_v = position[None], np.zeros((1, position.size))
        stop = Trajectory(
            joint_names=emb.joint_names,
            stamp_s=now_s,
            times_s=np.arange(1, len(tail_p) + 1) * dt,
            positions=np.clip(tail_p, emb.lower, emb.upper),
            velocities=tail_v,
        )
        self._plan = None
        return self._split(stop, stamp_s=0.0)

    def robot_state(
        self, names: list[str], positions: list[float]
    ) -> tuple[list[str], list[float]]:
        """A joint state in the controllers' names and units (ros2_control's
        joint_state_broadcaster: ``joint7`` in m per finger) with the robot's joints it lacks
        added back (``gripper`` = joint7 / 0.5). Joints already named the robot's way win."""
        names, positions = list(names), list(positions)
        for spec in self.controllers:
            for joint, alias, k in zip(
                spec.joints, spec.output_names, spec.output_scale, strict=True
            ):
                if joint not in names and alias in names and len(positions) == len(names):
                    positions.append(positions[names.index(alias)] / k)
                    names.append(joint)
        return names, positions

    def _split(self, full: Trajectory, stamp_s: float) -> list[tuple[ControllerSpec, Trajectory]]:
        out = []
        for spec, cols in zip(self.controllers, self._columns, strict=True):
            scale = spec.output_scale
            out.append(
                (
                    spec,
                    Trajectory(
                        joint_names=spec.output_names,
                        stamp_s=stamp_s,
                        times_s=full.times_s,
                        positions=full.positions[:, cols] * scale,
                        velocities=full.velocities[:, cols] * scale,
                    ),
                )
            )
        return out
