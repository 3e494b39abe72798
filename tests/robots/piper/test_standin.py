"""The stand-in's arm reads commands the way the piper_ros driver does and audits what a careful
driver would object to - the tests of the bridge rely on both."""

from __future__ import annotations

import numpy as np
import pytest

from gigabrain_runtime.params.nodes import PiperStandinParams
from gigabrain_runtime.robots.piper.piper_ros import DRIVER_JOINTS
from gigabrain_runtime.robots.piper.standin import StandinArm

NAMES = list(DRIVER_JOINTS)
POSE = [0.2, 0.8, -0.7, 0.1, 0.3, -0.2, 0.05]
FULL = dict(velocity=[0.0] * 6 + [50.0], effort=[0.0] * 6 + [1.5])


def _arm(**kw) -> StandinArm:
    return StandinArm(PiperStandinParams(**kw), t0=0.0)


def test_commands_before_enable_are_ignored_and_counted():
    arm = _arm()
    start = arm.step(0.1)
    arm.command(NAMES, POSE, **FULL, stamp_s=1.0, now=1.0)
    np.testing.assert_array_equal(arm.step(0.1), start)
    report = arm.report()
    assert report["commands_before_enable"] == 1 and report["commands"] == 0
    assert report["commands_while_disabled"] == 0
    arm.set_enabled(True, now=1.1)
    arm.command(NAMES, POSE, **FULL, stamp_s=1.15, now=1.15)
    arm.set_enabled(False, now=1.2)  # enabled once, disabled again: a new target is a fault
    arm.command(NAMES, [p + 0.01 for p in POSE], **FULL, stamp_s=1.3, now=1.3)
    assert arm.report()["commands_while_disabled"] == 1
    # the target it already holds, taken after the disable (DDS orders nothing across topics):
    # ignored as well, harmless, counted apart
    arm.command(NAMES, POSE, **FULL, stamp_s=1.25, now=1.35)
    report = arm.report()
    assert report["commands_while_disabled"] == 1 and report["repeats_while_disabled"] == 1


def test_enabling_reinitialises_the_gripper_and_holds_the_joints():
    arm = _arm()
    arm.set_enabled(True, now=0.5)
    for _ in range(100):
        q = arm.step(0.01)
    assert q[6] == pytest.approx(0.0, abs=1e-9)  # the driver closes the gripper on enable
    np.testing.assert_allclose(q[:6], PiperStandinParams().start[:6])


def test_the_arm_moves_at_the_commanded_speed_percentage():
    arm = _arm(max_speed_rad_s=2.0)
    arm.set_enabled(True, now=0.0)
    q0 = arm.step(0.0)
    far = list(q0)
    far[0] = q0[0] + 1.0
    arm.command(NAMES, far, **FULL, stamp_s=0.0, now=0.0)  # 50 % of 2 rad/s
    q = arm.step(0.1)
    assert q[0] - q0[0] == pytest.approx(0.1, rel=1e-9)
    assert arm.report()["speed_percent_seen"] == [50.0]


def test_the_driver_reading_names_joints_and_gripper_by_index():
    arm = _arm()
    arm.set_enabled(True, now=0.0)
    names = ["joint2", "joint1", "joint3", "joint4", "joint5", "joint6", "gripper"]
    pos = [0.9, 0.1, -0.5, 0.0, 0.2, 0.0, 0.03]  # joint1/joint2 swapped in order
    arm.command(names, pos, **FULL, stamp_s=0.0, now=0.0)
    np.testing.assert_allclose(arm.target, [0.1, 0.9, -0.5, 0.0, 0.2, 0.0, 0.03])
    arm.command(NAMES[1:], POSE[1:], velocity=[], effort=[], stamp_s=0.02, now=0.02)
    r = arm.report()
    assert arm.target[0] == 0.0  # a missing joint1 is commanded to 0 rad, as the driver does
    assert r["missing_names"] == 1 and r["speed_unset"] == 1 and r["effort_unset"] == 1


def test_the_audit_counts_limit_violations_and_the_fastest_step():
    arm = _arm(command_period_s=0.02)
    arm.set_enabled(True, now=0.0)
    arm.command(NAMES, POSE, **FULL, stamp_s=10.0, now=0.0)
    step = list(POSE)
    step[2] += 0.04  # 2 rad/s over one 20 ms period
    arm.command(NAMES, step, **FULL, stamp_s=10.02, now=0.02)
    late = list(step)
    late[2] += 0.04  # the same step after two periods: 1 rad/s
    arm.command(NAMES, late, **FULL, stamp_s=10.06, now=0.06)
    assert arm.report()["max_velocity_rad_s"] == pytest.approx(2.0, rel=1e-6)
    outside = list(late)
    outside[1] = -0.5  # joint2's lower limit is 0
    outside[6] = 0.2  # the gripper opens 0.08 m at most
    arm.command(NAMES, outside, **FULL, stamp_s=10.08, now=0.08)
    r = arm.report()
    assert r["outside_limits"] == 1 and r["gripper_out_of_range"] == 1
    assert r["commands"] == 4 and r["gripper_effort_seen"] == [1.5]
    assert r["command_period_median_s"] == pytest.approx(0.02)  # gaps 0.02, 0.04, 0.02
