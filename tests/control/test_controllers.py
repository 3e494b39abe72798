"""Chunks for ros2_control joint_trajectory_controllers: one per controller, ending at rest
within the joint limits, and a stop that continues from the running plan."""

from __future__ import annotations

import numpy as np
import pytest

from gigabrain_runtime.control.controllers import ControllerOutput, braking_tail
from gigabrain_runtime.robots.embodiment import Embodiment, get_embodiment

PIPER = get_embodiment("piper")
DT = 0.02


def _home() -> np.ndarray:
    return np.array([PIPER.home.get(j, 0.0) for j in PIPER.joint_names])


def _chunk(rng: np.random.Generator, start: np.ndarray, speed: float = 1.0) -> np.ndarray:
    """A plausible 50-point chunk moving at up to ``speed`` x the velocity limits."""
    v = rng.uniform(-1, 1, PIPER.dof) * PIPER.max_velocity * speed
    t = (np.arange(50) + 1)[:, None] * DT
    return np.clip(start + v * t, PIPER.lower, PIPER.upper)


def _accelerations(traj) -> np.ndarray:
    return np.abs(np.diff(traj.velocities, axis=0)) / np.diff(traj.times_s)[:, None]


def test_each_controller_gets_its_joints_in_its_names_and_units():
    out = ControllerOutput(PIPER, DT)
    start = _home()
    plans = out.chunk(_chunk(np.random.default_rng(0), start), start, 10.0, 10.0)
    (arm, a), (grip, g) = plans
    assert arm.name == "arm_controller" and a.joint_names == tuple(f"joint{i}" for i in range(1, 7))
    assert grip.name == "gripper_controller" and g.joint_names == ("joint7",)
    assert arm.topic_name == "arm_controller/joint_trajectory"
    # the gripper controller moves one finger: half the opening
    full = out._plan  # noqa: SLF001 - the plan both were cut from
    np.testing.assert_allclose(g.positions[:, 0], 0.5 * full.positions[:, 6])
    np.testing.assert_allclose(a.positions, full.positions[:, :6])
    assert a.stamp_s == 0.0 and np.all(np.diff(a.times_s) > 0) and a.times_s[0] > 0


@pytest.mark.parametrize("seed", range(20))
def test_every_chunk_ends_at_rest_without_braking_harder_than_the_limits(seed):
    rng = np.random.default_rng(seed)
    out = ControllerOutput(PIPER, DT)
    start = _home()
    actions = _chunk(rng, start, speed=rng.uniform(0.1, 1.0))
    plans = out.chunk(actions, start, 5.0, 5.0)
    full = out._plan  # noqa: SLF001
    assert np.all(full.velocities[-1] == 0.0)
    # the tail: from the chunk's last point (index 49) to rest, at most each joint's max
    # acceleration
    tail = full.velocities[49:]
    assert len(tail) > 1
    acc = np.abs(np.diff(tail, axis=0)) / DT
    assert np.all(acc <= PIPER.max_acceleration * (1 + 1e-9)), acc.max(axis=0)
    assert np.all(np.abs(full.velocities) <= PIPER.max_velocity)
    for _, traj in plans:
        assert np.all(traj.velocities[-1] == 0.0)
        assert np.all(np.diff(traj.times_s) > 0)
    # inside the joint limits throughout
    assert np.all(full.positions >= PIPER.lower - 1e-12) and np.all(
        full.positions <= PIPER.upper + 1e-12
    )


def test_a_chunk_that_jumps_still_ends_at_rest_within_the_braking_time():
    """Random-weight policies emit points that jump; the plan's velocities stay within the
    joints' max_velocity, so the tail is at most max_velocity / max_acceleration long."""
    rng = np.random.default_rng(7)
    out = ControllerOutput(PIPER, DT)
    start = _home()
    actions = PIPER.lower + rng.uniform(0, 1, (50, PIPER.dof)) * (PIPER.upper - PIPER.lower)
    out.chunk(actions, start, 1.0, 1.0)
    full = out._plan  # noqa: SLF001
    assert np.all(np.abs(full.velocities) <= PIPER.max_velocity)
    braking = np.max(PIPER.max_velocity / PIPER.max_acceleration)
    assert full.times_s[-1] <= 50 * DT + braking + DT


def test_points_already_due_are_dropped_and_the_rest_timed_from_now():
    out = ControllerOutput(PIPER, DT)
    start = _home()
    actions = _chunk(np.random.default_rng(1), start)
    stamp, now = 100.0, 100.1  # 100 ms of latency: points 1..5 are due already
    (_, arm), _ = out.chunk(actions, start, stamp, now)
    np.testing.assert_allclose(arm.positions[0], actions[5, :6])
    assert arm.times_s[0] == pytest.approx(0.02)
    assert out.chunk(actions, start, stamp, stamp + 10.0) == []  # all of it in the past


def test_braking_tail_stops_all_joints_together_at_the_slowest_joints_limit():
    v = np.array([3.0, -1.0, 0.0])
    a = np.array([5.0, 5.0, 1.0])
    p, vel = braking_tail(np.zeros(3), v, a, DT)
    assert len(p) == 30  # 3 rad/s at 5 rad/s^2: 0.6 s
    assert np.all(vel[-1] == 0.0)
    np.testing.assert_allclose(p[-1], v * 0.6 / 2)
    assert braking_tail(np.zeros(3), np.zeros(3), a, DT)[0].shape == (0, 3)


def test_the_stop_continues_from_where_the_running_plan_is():
    out = ControllerOutput(PIPER, DT)
    start = _home()
    actions = _chunk(np.random.default_rng(2), start, speed=0.8)
    out.chunk(actions, start, 20.0, 20.0)
    plan = out._plan  # noqa: SLF001
    p_now, v_now = plan.sample(20.3)
    stops = out.stop(20.3, measured=start)  # the measured state lags: the plan is what runs
    (_, arm), (_, grip) = stops
    full_p = np.concatenate([arm.positions, 2 * grip.positions], axis=1)
    full_v = np.concatenate([arm.velocities, 2 * grip.velocities], axis=1)
    # the first point is one period of braking from the plan's state, not a jump
    np.testing.assert_allclose(
        full_p[0], p_now + v_now * DT, atol=np.max(PIPER.max_acceleration) * DT**2
    )
    assert np.all(full_v[-1] == 0.0)
    acc = np.abs(np.diff(np.concatenate([v_now[None], full_v]), axis=0)) / DT
    assert np.all(acc <= PIPER.max_acceleration * (1 + 1e-9))
    # with no plan running, the stop is a hold point at the measured state
    (_, hold), _ = out.stop(30.0, measured=start)
    assert len(hold.times_s) == 1 and np.all(hold.velocities == 0)
    np.testing.assert_allclose(hold.positions[0], start[:6])


def test_controller_data_is_checked_when_the_robot_file_is_read():
    raw = {
        "name": "arm",
        "embodiment_id": 0,
        "cameras": ["c"],
        "joints": [
            {"name": "a", "lower": -1, "upper": 1, "max_velocity": 1, "max_acceleration": 1},
            {"name": "b", "lower": -1, "upper": 1, "max_velocity": 1, "max_acceleration": 1},
        ],
    }
    with pytest.raises(ValueError, match="no controller takes \\['b'\\]"):
        Embodiment.from_dict({**raw, "controllers": [{"name": "x", "joints": ["a"]}]})
    with pytest.raises(ValueError, match="more than one controller"):
        Embodiment.from_dict(
            {
                **raw,
                "controllers": [
                    {"name": "x", "joints": ["a", "b"]},
                    {"name": "y", "joints": ["b"]},
                ],
            }
        )
    with pytest.raises(ValueError, match="controllers\\[0\\]: controller x: scale"):
        Embodiment.from_dict(
            {**raw, "controllers": [{"name": "x", "joints": ["a", "b"], "scale": [1]}]}
        )
    with pytest.raises(ValueError, match="lists no controllers"):
        ControllerOutput(Embodiment.from_dict(raw), DT)
    with pytest.raises(ValueError, match="camera_frames.d is not a camera"):
        Embodiment.from_dict({**raw, "camera_frames": {"d": "d_frame"}})
    assert Embodiment.from_dict(raw).frame_id("c") == "c_optical_frame"


def test_a_ros2_control_joint_state_gives_the_robot_joints_back():
    """joint_state_broadcaster names PiPER's finger joint7 (0.5 x the opening); the vla reads
    the robot's `gripper` from it."""
    out = ControllerOutput(PIPER, DT)
    names = ["joint7", "joint1", "joint2", "joint3", "joint4", "joint5", "joint6"]
    values = [0.02, 0.1, 0.2, -0.3, 0.4, 0.5, 0.6]
    got_names, got = out.robot_state(names, values)
    assert dict(zip(got_names, got, strict=True))["gripper"] == pytest.approx(0.04)
    assert out.robot_state(["gripper"], [0.05]) == (["gripper"], [0.05])  # already ours
