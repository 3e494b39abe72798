"""Message conversion: what the nodes accept and emit."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("rclpy")

from sensor_msgs.msg import CompressedImage, JointState  # noqa: E402

from gigabrain_runtime.ros.convert import (  # noqa: E402
    chunk_to_trajectory,
    image_to_rgb,
    joint_positions,
    rgb_to_image,
    s_to_stamp,
    trajectory_to_chunk,
)

NAMES = ("a", "b", "c")


def test_raw_and_compressed_images_decode_to_the_same_rgb():
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[:, :3] = (255, 0, 0)
    msg = rgb_to_image(rgb, s_to_stamp(1.5), "cam")
    assert (msg.encoding, msg.step) == ("rgb8", 18)
    np.testing.assert_array_equal(image_to_rgb(msg), rgb)
    ok, png = cv2.imencode(".png", rgb[:, :, ::-1])
    comp = CompressedImage(format="png")
    comp.data = png.tobytes()
    np.testing.assert_array_equal(image_to_rgb(comp), rgb)


def test_chunk_round_trips_through_joint_trajectory_with_its_timing():
    actions = np.arange(12, dtype=float).reshape(4, 3)
    msg = chunk_to_trajectory(actions, NAMES, stamp_s=100.25, control_hz=50.0, start=np.zeros(3))
    chunk = trajectory_to_chunk(msg, NAMES)
    np.testing.assert_allclose(chunk.positions, actions)
    assert chunk.dt_s == pytest.approx(0.02)
    assert chunk.first_due_s == pytest.approx(100.27)  # stamp + 1 / control_hz
    np.testing.assert_allclose(msg.points[0].velocities, actions[0] * 50.0)


def test_trajectory_joint_order_is_mapped_by_name():
    actions = np.array([[1.0, 2.0, 3.0]] * 2)
    msg = chunk_to_trajectory(actions, ("c", "a", "b"), 0.0, 50.0, np.zeros(3))
    np.testing.assert_allclose(trajectory_to_chunk(msg, NAMES).positions[0], [2.0, 3.0, 1.0])
    msg.joint_names = ["c", "a", "x"]
    with pytest.raises(ValueError, match=r"unknown joints \['x'\]"):
        trajectory_to_chunk(msg, NAMES)


def test_joint_states_are_reordered_and_extra_names_reported():
    msg = JointState(name=["extra", "c", "a", "b"], position=[9.0, 3.0, 1.0, 2.0])
    pos, unknown = joint_positions(msg, NAMES)
    np.testing.assert_allclose(pos, [1.0, 2.0, 3.0])
    assert unknown == ["extra"]
    with pytest.raises(ValueError, match=r"missing joints \['c'\]"):
        joint_positions(JointState(name=["a", "b"], position=[1.0, 2.0]), NAMES)
    with pytest.raises(ValueError, match="2 names but 1 positions"):
        joint_positions(JointState(name=["a", "b"], position=[1.0]), NAMES)
