"""The piper_ros conventions and the per-arm split of a multi-arm embodiment."""

from __future__ import annotations

import numpy as np
import pytest

from gigabrain_runtime.robots.embodiment import get_embodiment
from gigabrain_runtime.robots.piper.piper_ros import (
    DRIVER_JOINTS,
    ArmSplit,
    PiperDriverConfig,
    driver_positions,
)

DUAL = get_embodiment("piper_dual")
PIPER = get_embodiment("piper")


def test_dual_split_sends_each_arm_exactly_its_prefixed_joints():
    split = ArmSplit.from_embodiment(DUAL, ("left_", "right_"))
    q = np.arange(DUAL.dof, dtype=float)
    per_arm = split.split(q)
    assert per_arm.shape == (2, 7)
    for a, prefix in enumerate(("left_", "right_")):
        for j, joint in enumerate(DRIVER_JOINTS):
            assert per_arm[a, j] == q[DUAL.joint_names.index(prefix + joint)]
    np.testing.assert_array_equal(split.merge(per_arm), q)


def test_single_arm_split_is_the_identity():
    split = ArmSplit.from_embodiment(PIPER, ("",))
    q = np.linspace(0, 1, 7)
    np.testing.assert_array_equal(split.split(q)[0], q)


def test_split_errors_name_the_missing_joint_or_uncovered_joints():
    with pytest.raises(ValueError, match="top_joint1"):
        ArmSplit.from_embodiment(DUAL, ("left_", "top_"))
    with pytest.raises(ValueError, match="right_joint1"):
        ArmSplit.from_embodiment(DUAL, ("left_",))
    with pytest.raises(ValueError, match="duplicate"):
        ArmSplit.from_embodiment(DUAL, ("left_", "left_"))


def test_command_fields_carry_speed_percent_and_gripper_effort_where_the_driver_reads_them():
    cfg = PiperDriverConfig(speed_percent=40, gripper_effort_nm=2.0)
    names, pos, vel, eff = cfg.command_fields(np.arange(7) * 0.1)
    assert names == list(DRIVER_JOINTS) and names[6] == "gripper"  # gripper read by index 6
    assert pos == pytest.approx(list(np.arange(7) * 0.1))
    assert len(vel) == 7 and vel[6] == 40.0 and any(vel)  # all-zero would mean "100 %"
    assert len(eff) == 7 and eff[6] == 2.0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"speed_percent": 0}, "speed_percent"), ({"gripper_effort_nm": 5.0}, "gripper_effort")],
)
def test_driver_config_rejects_values_the_driver_would_clip(kwargs, field):
    with pytest.raises(ValueError, match=field):
        PiperDriverConfig(**kwargs)


def test_driver_positions_by_name_and_errors():
    names = ["gripper", "joint6", "joint5", "joint4", "joint3", "joint2", "joint1"]
    q = driver_positions(names, [0.05, 6, 5, 4, 3, 2, 1], field="joint_states_single")
    np.testing.assert_array_equal(q, [1, 2, 3, 4, 5, 6, 0.05])
    with pytest.raises(ValueError, match=r"joint_ctrl: missing joints \['joint6'\]"):
        driver_positions(names[2:] + ["gripper"], [0.0] * 6, field="joint_ctrl")
    with pytest.raises(ValueError, match="joint3 is not finite"):
        driver_positions(list(DRIVER_JOINTS), [0, 0, float("nan"), 0, 0, 0, 0], field="x")
