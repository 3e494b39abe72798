"""piper_standin: a stand-in for the piper_ros driver (node piper_single_ctrl), for tests and
for trying the PiPER launch files without an arm.

Same topic names, types, QoS (rclpy default: reliable, keep last 1) and rate (200 Hz) as the
driver, and the same reading of ``joint_ctrl_single``: joint1..6 by name (a missing one goes to
0 rad, as in the driver), the gripper by index 6, ``velocity[6]`` the speed percentage,
``effort[6]`` the gripper torque; commands are ignored until ``enable_flag`` is true. The arm
moves toward its target at ``speed% x max_speed_rad_s``.

The arm, the driver's reading of commands and the audit are the ROS-free
``robots/piper/standin.py``; this node is its topics. Unlike the driver it audits what it is sent -
commands while disabled, missing names, speed or gripper effort not set, positions outside the URDF
limits, the largest step between consecutive commands - and reports it on /diagnostics and, at exit,
as JSON (``report`` parameter). Optionally it plays a leader arm on ``joint_ctrl`` (``leader``: a
slow sweep around the start pose; without it, ``joint_ctrl`` repeats a zero frame with stamp 0, as
the driver does with no leader on the bus), and publishes synthetic camera frames
(``camera_topics``) so the policy has images to run on.
"""

from __future__ import annotations

import array
import json
import time
from pathlib import Path

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool

from gigabrain_runtime.diagnostics.stats import Status
from gigabrain_runtime.params.nodes import PiperStandinParams
from gigabrain_runtime.robots.piper.piper_ros import DRIVER_JOINTS
from gigabrain_runtime.robots.piper.standin import StandinArm
from gigabrain_runtime.ros import qos
from gigabrain_runtime.ros.convert import s_to_stamp, stamp_to_s
from gigabrain_runtime.ros.node_utils import DiagnosticsPublisher, run_node
from gigabrain_runtime.ros.params import declare_params


class PiperStandinNode(Node):
    def __init__(self) -> None:
        super().__init__("piper_single_ctrl")
        p = declare_params(self, PiperStandinParams)
        self.rate_hz = p.rate_hz
        self.leader = p.leader
        self.report_path = p.report
        self.arm = StandinArm(p, time.monotonic())

        self._state_pub = self.create_publisher(JointState, "joint_states_single", qos.DRIVER)
        self._feedback_pub = self.create_publisher(JointState, "joint_states_feedback", qos.DRIVER)
        self._ctrl_pub = self.create_publisher(JointState, "joint_ctrl", qos.DRIVER)
        self.create_subscription(JointState, "joint_ctrl_single", self._on_command, qos.DRIVER)
        self.create_subscription(Bool, "enable_flag", self._on_enable, qos.DRIVER)
        self.create_timer(1.0 / self.rate_hz, self._tick)
        self._cams = [c for c in p.camera_topics if c]
        if self._cams:
            self._cam_pubs = [self.create_publisher(Image, c, qos.SENSOR) for c in self._cams]
            self._frames = _frames(640, 480)
            self._frame_i = 0
            self.create_timer(1.0 / p.camera_hz, self._publish_frames)
        DiagnosticsPublisher(self, self._diagnostics)
        self.get_logger().info(
            f"piper_ros stand-in at {self.rate_hz:g} Hz (leader arm: {self.leader}, cameras: "
            f"{self._cams or 'none'})"
        )

    def _on_enable(self, msg: Bool) -> None:
        self.arm.set_enabled(bool(msg.data), time.monotonic())
        self.get_logger().info(f"enable_flag: {msg.data}")

    def _on_command(self, msg: JointState) -> None:
        self.arm.command(
            list(msg.name),
            list(msg.position),
            list(msg.velocity),
            list(msg.effort),
            stamp_to_s(msg.header.stamp),
            time.monotonic(),
        )

    def _tick(self) -> None:
        q = self.arm.step(1.0 / self.rate_hz)
        stamp = self.get_clock().now().to_msg()
        msg = JointState()
        msg.header.stamp = stamp
        msg.name = list(DRIVER_JOINTS)
        msg.position = array.array("d", q)
        msg.velocity = array.array("d", [0.0] * 7)
        msg.effort = array.array("d", [0.0] * 7)
        self._state_pub.publish(msg)
        self._feedback_pub.publish(msg)
        ctrl = JointState()
        ctrl.name = list(DRIVER_JOINTS)
        if self.leader:
            ctrl.header.stamp = stamp
            ctrl.position = array.array("d", self.arm.leader_pose(time.monotonic()))
        else:  # the driver with no leader on the bus repeats a zero frame stamped 0
            ctrl.header.stamp = s_to_stamp(0.0)
            ctrl.position = array.array("d", [0.0] * 7)
        self._ctrl_pub.publish(ctrl)

    def _publish_frames(self) -> None:
        stamp = self.get_clock().now().to_msg()
        data = self._frames[self._frame_i % len(self._frames)]
        self._frame_i += 1
        for name, pub in zip(self._cams, self._cam_pubs, strict=True):
            img = Image()
            img.header.stamp = stamp
            img.header.frame_id = name.strip("/").replace("/", "_")
            img.height, img.width, img.encoding, img.step = 480, 640, "rgb8", 640 * 3
            img.data = data
            pub.publish(img)

    def report(self) -> dict[str, object]:
        return self.arm.report()

    def _diagnostics(self) -> list[Status]:
        s = Status("piper_standin")
        s.values = {k: str(v) for k, v in self.arm.report().items() if k != "recent_commands"}
        return [s]

    def shutdown(self) -> None:
        if self.report_path:
            Path(self.report_path).write_text(json.dumps(self.arm.report()))


def _frames(width: int, height: int) -> list[bytes]:
    """A few textured frames (bytes: assigning them to Image.data is cheap)."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (height // 16, width // 16, 3), dtype=np.uint8)
    frames = []
    for k in range(4):
        img = np.kron(np.roll(base, k, axis=1), np.ones((16, 16, 1), dtype=np.uint8))
        frames.append(np.ascontiguousarray(img).tobytes())
    return frames


def main(argv: list[str] | None = None) -> int:
    return run_node(PiperStandinNode, argv)


if __name__ == "__main__":
    raise SystemExit(main())
