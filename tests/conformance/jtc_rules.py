"""ros2_control joint_trajectory_controller's acceptance rules for ``~/joint_trajectory``, written
from its source so the tests can apply them to what the vla emits (no ros2_control wheels exist
for this environment, so the real controller cannot run here).

Source: github.com/ros-controls/ros2_controllers, joint_trajectory_controller/src/
joint_trajectory_controller.cpp, ``validate_trajectory_msg`` and
``validate_trajectory_point_field`` - jazzy ed360c97 L1652-1816, identical bodies in kilted
0f8eb14e L1648-1812 and rolling 94e74de3 L1947-2111. Defaults from
joint_trajectory_controller_parameters.yaml (jazzy L75-141): allow_partial_joints_goal false,
allow_nonzero_velocity_at_trajectory_end false (since 3.12.0; humble keeps true),
allow_integration_in_goal_trajectories false. Each check below cites the jazzy line.

:class:`Follower` is the topic callback and the sampling that decide whether a trajectory is
honoured (topic_callback L1385-1399: an invalid message is logged and the running trajectory
kept; a valid one replaces it; trajectory.cpp L109-254: stamp 0 starts at the first update
after receipt, positions with velocities are interpolated with cubic splines, after the last
point the last point is held).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FLOAT_EPSILON = float(np.finfo(np.float32).eps)  # std::numeric_limits<float>::epsilon()


def _duration_s(d) -> float:  # noqa: ANN001
    return d.sec + d.nanosec * 1e-9


def _field_ok(n_joints: int, values, name: str, i: int, allow_empty: bool) -> str | None:  # noqa: ANN001
    # validate_trajectory_point_field, L1652-1669
    if allow_empty and len(values) == 0:
        return None
    if n_joints != len(values):
        return (
            f"Mismatch between joint_names size ({n_joints}) and {name} ({len(values)}) "
            f"at point #{i}."
        )
    return None


def validate_trajectory_msg(
    msg,  # noqa: ANN001 - trajectory_msgs/JointTrajectory
    controller_joints: tuple[str, ...],
    now_s: float,
    *,
    allow_partial_joints_goal: bool = False,
    allow_nonzero_velocity_at_trajectory_end: bool = False,
    allow_integration_in_goal_trajectories: bool = False,
    has_effort_command_interface: bool = False,
) -> str | None:
    """The message JTC logs when it refuses ``msg``, or None when it accepts it."""
    names = list(msg.joint_names)
    points = list(msg.points)
    # L1676-1685
    if not allow_partial_joints_goal and len(names) != len(controller_joints):
        return "Joints on incoming trajectory don't match the controller joints."
    # L1688-1692
    if not names:
        return "Empty joint names on incoming trajectory."
    # L1695-1699
    if not points:
        return "Empty trajectory received."
    # L1702-1714
    for name in names:
        if name not in controller_joints:
            return f"Incoming joint {name} doesn't match the controller's joints."
    # L1717-1730
    if not allow_nonzero_velocity_at_trajectory_end:
        for i, v in enumerate(points[-1].velocities):
            if abs(v) > FLOAT_EPSILON:
                return (
                    f"Velocity of last trajectory point of joint {names[i]} is not zero: {v:.15f}"
                )
    # L1733-1749
    start = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
    if start != 0.0:
        end = start + _duration_s(points[-1].time_from_start)
        if end < now_s:
            return (
                f"Received trajectory with non-zero start time ({start:f}) that ends in the "
                f"past ({end:f})"
            )
    previous = 0.0
    for i, p in enumerate(points):
        t = _duration_s(p.time_from_start)
        # L1751-1763
        if i > 0 and t <= previous:
            return (
                f"Time between points {i - 1} and {i} is not strictly increasing, it is "
                f"{previous:f} and {t:f} respectively"
            )
        previous = t
        n = len(names)
        # L1765-1800
        if allow_integration_in_goal_trajectories:
            if not p.positions and not p.velocities and not p.accelerations:
                return "The given trajectory has no position, velocity, or acceleration points."
            for values, fname in (
                (p.positions, "positions"),
                (p.velocities, "velocities"),
                (p.accelerations, "accelerations"),
            ):
                if values and (err := _field_ok(n, values, fname, i, False)):
                    return err
        else:
            for values, fname, allow_empty in (
                (p.positions, "positions", False),
                (p.velocities, "velocities", True),
                (p.accelerations, "accelerations", True),
            ):
                if err := _field_ok(n, values, fname, i, allow_empty):
                    return err
        # L1802-1810
        if not has_effort_command_interface and len(p.effort) > 0:
            return (
                "Trajectories with effort fields are only supported for controllers using "
                "the 'effort' command interface."
            )
    return None


@dataclass
class Follower:
    """One JTC on the topic interface: validates, replaces, and samples the reference it would
    command (positions with velocities: cubic Hermite between points; before the first point,
    from the state at pickup; after the last, the last point held)."""

    joints: tuple[str, ...]
    refusals: list[str] = field(default_factory=list)
    accepted: int = 0
    _start_s: float = 0.0
    _times: np.ndarray | None = None
    _pos: np.ndarray | None = None
    _vel: np.ndarray | None = None

    def receive(self, msg, now_s: float, state: tuple[np.ndarray, np.ndarray]) -> bool:  # noqa: ANN001
        err = validate_trajectory_msg(msg, self.joints, now_s)
        if err is not None:
            self.refusals.append(err)
            return False  # L1391-1394: the running trajectory is kept
        self.accepted += 1
        order = [list(msg.joint_names).index(j) for j in self.joints]
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        self._start_s = stamp if stamp != 0.0 else now_s  # trajectory.cpp: stamp 0 = now
        # the state before the message is point "-1" at the pickup time
        p0, v0 = state
        times = [now_s - self._start_s]
        pos, vel = [np.asarray(p0, float)], [np.asarray(v0, float)]
        for p in msg.points:
            times.append(_duration_s(p.time_from_start))
            pos.append(np.array([p.positions[k] for k in order]))
            vel.append(
                np.array([p.velocities[k] for k in order])
                if len(p.velocities)
                else np.zeros(len(order))
            )
        keep = [0] + [k for k in range(1, len(times)) if times[k] > times[0]]
        self._times = np.array([times[k] for k in keep])
        self._pos = np.array([pos[k] for k in keep])
        self._vel = np.array([vel[k] for k in keep])
        return True

    def sample(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        assert self._times is not None, "no trajectory accepted yet"
        u = t - self._start_s
        times, pos, vel = self._times, self._pos, self._vel
        if u >= times[-1]:
            return pos[-1].copy(), np.zeros_like(vel[-1])
        if u <= times[0]:
            return pos[0].copy(), vel[0].copy()
        k = int(np.searchsorted(times, u, side="right")) - 1
        h = times[k + 1] - times[k]
        s = (u - times[k]) / h
        a, b = pos[k], pos[k + 1]
        va, vb = vel[k] * h, vel[k + 1] * h
        p = (2 * s**3 - 3 * s**2 + 1) * a + (s**3 - 2 * s**2 + s) * va
        p = p + (-2 * s**3 + 3 * s**2) * b + (s**3 - s**2) * vb
        dp = (6 * s**2 - 6 * s) * a + (3 * s**2 - 4 * s + 1) * va
        dp = dp + (-6 * s**2 + 6 * s) * b + (3 * s**2 - 2 * s) * vb
        return p, dp / h
