"""calibrate joints: zero offsets from an arm held at a reference pose, written to joints.yaml
and read back by the bridges' JointCalibration."""

from __future__ import annotations

import numpy as np
import pytest

from gigabrain_runtime.calibration.joints import write_joints_yaml, zero_offsets
from gigabrain_runtime.cli import main
from gigabrain_runtime.robots.embodiment import get_embodiment
from gigabrain_runtime.robots.joint_calibration import JointCalibration

PIPER = get_embodiment("piper")
DUAL = get_embodiment("piper_dual")
TRUE_OFFSET = np.array([0.012, -0.03, 0.004, 0.0, 0.021, -0.007, 0.001])


def _still_samples(reference, signs, n=40, noise=5e-4, seed=0):
    rng = np.random.default_rng(seed)
    raw = signs * reference + TRUE_OFFSET  # what the driver reads at the reference pose
    return raw + rng.uniform(-noise, noise, (n, 7))


def test_offsets_recover_the_drivers_zero_and_the_calibration_maps_it_back():
    ref = np.array([0.0, 0.5, -0.5, 0.0, 0.3, 0.0, 0.0])
    signs = np.array([1, 1, 1, -1, 1, 1, 1.0])
    samples = _still_samples(ref, signs)
    off = zero_offsets(samples, ref, signs, PIPER.joint_names)
    np.testing.assert_allclose(off, TRUE_OFFSET, atol=2e-4)
    cal = JointCalibration(joint_names=PIPER.joint_names, offsets=off, signs=signs)
    np.testing.assert_allclose(cal.to_canonical(samples.mean(axis=0)), ref, atol=1e-9)


def test_a_moving_arm_is_refused_naming_the_joint():
    samples = _still_samples(np.zeros(7), np.ones(7))
    samples[10:, 2] += 0.05
    with pytest.raises(ValueError, match="joint3 moved by 0.05"):
        zero_offsets(samples, np.zeros(7), np.ones(7), PIPER.joint_names)


def test_writing_one_arm_keeps_the_other_arms_entries(tmp_path):
    path = tmp_path / "joints.yaml"
    left = {f"left_{j}": (0.01, 1) for j in ("joint1", "joint2")}
    right = {"right_joint4": (-0.02, -1)}
    write_joints_yaml(path, "piper_dual", DUAL.joint_names, left)
    cal = write_joints_yaml(path, "piper_dual", DUAL.joint_names, right)
    assert cal.offsets[DUAL.joint_names.index("left_joint1")] == 0.01
    assert cal.signs[DUAL.joint_names.index("right_joint4")] == -1
    again = JointCalibration.load(path, DUAL.joint_names)
    np.testing.assert_array_equal(again.offsets, cal.offsets)


def test_cli_from_a_bag_of_the_drivers_topic(tmp_path, capsys):
    from gigabrain_runtime.bags import typestore
    from gigabrain_runtime.hilr.recording import EpisodeInfo, EpisodeWriter, TopicSpec

    ts = typestore()
    T = ts.types
    jt = "sensor_msgs/msg/JointState"
    w = EpisodeWriter(
        tmp_path / "zero",
        [TopicSpec("/left/joint_states_single", jt)],
        EpisodeInfo(episode="zero", robot="piper_dual"),
    )
    names = ["joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "gripper"]
    for k, q in enumerate(_still_samples(np.zeros(7), np.ones(7))):
        t = 10**18 + k * 5 * 10**6
        stamp = T["builtin_interfaces/msg/Time"](sec=t // 10**9, nanosec=t % 10**9)
        msg = T[jt](
            header=T["std_msgs/msg/Header"](stamp=stamp, frame_id=""),
            name=names,
            position=q,
            velocity=np.zeros(0),
            effort=np.zeros(0),
        )
        w.write("/left/joint_states_single", bytes(ts.serialize_cdr(msg, jt)), t)
    w.close("success")
    out = tmp_path / "cal" / "joints.yaml"
    args = ["calibrate", "joints", "--robot", "piper_dual", "--bag", str(tmp_path / "zero")]
    args += ["--topic", "/left/joint_states_single", "--arm-prefix", "left_", "--out", str(out)]
    assert main(args) == 0
    assert "40 joint states at the reference pose" in capsys.readouterr().out
    cal = JointCalibration.load(out, DUAL.joint_names)
    left = [DUAL.joint_names.index(f"left_{n}") for n in names]
    np.testing.assert_allclose(cal.offsets[left], TRUE_OFFSET, atol=2e-4)
    right = [DUAL.joint_names.index(f"right_{n}") for n in names]
    assert np.all(cal.offsets[right] == 0.0)  # not measured: identity
