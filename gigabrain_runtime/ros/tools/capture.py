"""Short captures from a live topic for the calibration tools (the only rclpy they need)."""

from __future__ import annotations

import time

import rclpy
from rclpy.node import Node
from sensor_msgs.msg import JointState

from gigabrain_runtime.ros import qos
from gigabrain_runtime.ros.node_utils import use_project_dds_profile


def joint_states(topic: str, seconds: float) -> list[tuple[list[str], list[float]]]:
    """(names, positions) of every JointState on ``topic`` during ``seconds``."""
    use_project_dds_profile()
    rclpy.init()
    got: list[tuple[list[str], list[float]]] = []
    try:
        node = Node("calibrate_joints")
        node.create_subscription(
            JointState, topic, lambda m: got.append((list(m.name), list(m.position))), qos.SENSOR
        )
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.05)
        node.destroy_node()
    finally:
        rclpy.try_shutdown()
    return got
