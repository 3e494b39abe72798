"""An outside ROS 2 process's view of the runtime: publishes cameras and joint states like a
robot would, and records what comes back (chunks, commands, diagnostics) with arrival times."""

from __future__ import annotations

import threading
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, Float32
from trajectory_msgs.msg import JointTrajectory

from tests.ros.harness import Inbox, Spinner, fresh_domain, stamp_rate  # noqa: F401 (re-exported)

RELIABLE = QoSProfile(reliability=ReliabilityPolicy.RELIABLE, depth=10)
# the observer keeps a deep queue: this process also publishes 0.9 MB frames, and a command it
# has not read yet must not be overwritten before it is counted
OBSERVER = QoSProfile(reliability=ReliabilityPolicy.RELIABLE, depth=200)
LATCHED = QoSProfile(
    reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL, depth=1
)


class FakeRobot(Node, Inbox):
    def __init__(
        self,
        ns: str,
        cameras: tuple[str, ...],
        joints: tuple[str, ...],
        *,
        width: int = 640,
        height: int = 480,
        camera_hz: float = 15.0,
        state_hz: float = 100.0,
        positions: np.ndarray | None = None,
        controllers: tuple[str, ...] = (),
    ) -> None:
        Node.__init__(self, "fake_robot", namespace=ns)
        Inbox.__init__(self)
        self.joints = joints
        self.cameras = {c: True for c in cameras}  # camera -> publishing?
        self.encoding = {c: "rgb8" for c in cameras}
        self.size = {c: (width, height) for c in cameras}
        self.state_names = list(joints)
        self.positions = np.zeros(len(joints)) if positions is None else positions.copy()
        self.follow_commands = True
        self.states_published = 0
        self.frames_published = {c: 0 for c in cameras}
        rng = np.random.default_rng(0)
        self._frame = rng.integers(0, 256, (height, width, 3), dtype=np.uint8).tobytes()
        self._img_pubs = {
            c: self.create_publisher(Image, f"cameras/{c}/image_raw", qos_profile_sensor_data)
            for c in cameras
        }
        self._state_pub = self.create_publisher(JointState, "joint_states", qos_profile_sensor_data)
        self.estop_pub = self.create_publisher(Bool, "estop", LATCHED)
        self.chunk_pub = self.create_publisher(JointTrajectory, "action_chunk", RELIABLE)
        self.create_subscription(
            JointTrajectory, "action_chunk", self._rec("action_chunk"), RELIABLE
        )
        self.create_subscription(JointState, "joint_command", self._on_command, RELIABLE)
        # what ros2_control joint_trajectory_controllers would receive (<name>/joint_trajectory;
        # JTC subscribes with the system default QoS: reliable)
        for topic in controllers:
            self.create_subscription(JointTrajectory, topic, self._rec(topic), OBSERVER)
        self.create_subscription(Float32, "value", self._rec("value"), RELIABLE)
        self.create_subscription(
            DiagnosticArray, "/diagnostics", self._rec("diagnostics"), RELIABLE
        )
        # each stream on its own deadline-paced thread, as separate drivers would be: a slow
        # image publish must not delay the 100 Hz joint states
        self._running = True
        self._threads = [
            threading.Thread(
                target=self._loop, args=(camera_hz, self._publish_images), daemon=True
            ),
            threading.Thread(target=self._loop, args=(state_hz, self._publish_state), daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _loop(self, hz: float, fn) -> None:  # noqa: ANN001
        from gigabrain_runtime.pacing import DeadlinePacer

        pacer = DeadlinePacer(1.0 / hz)
        while self._running and self.context.ok():
            pacer.wait()
            try:
                fn()
            except Exception:
                if self.context.ok() and self._running:
                    raise
                return

    def stop(self) -> None:
        self._running = False
        for t in self._threads:
            t.join(timeout=2)

    def _on_command(self, msg: JointState) -> None:
        with self.lock:
            self.received["joint_command"].append((time.monotonic(), msg))
            if self.follow_commands and list(msg.name) == list(self.joints):
                self.positions = np.array(msg.position)

    def _publish_images(self) -> None:
        stamp = self.get_clock().now().to_msg()
        for cam, on in self.cameras.items():
            if not on:
                continue
            w, h = self.size[cam]
            enc = self.encoding[cam]
            ch = 1 if enc == "mono8" else 3
            msg = Image(height=h, width=w, encoding=enc, step=w * ch)
            msg.header.stamp = stamp
            msg.data = (
                self._frame[: w * h * ch] if w * h * ch <= len(self._frame) else bytes(w * h * ch)
            )
            self._img_pubs[cam].publish(msg)
            self.frames_published[cam] += 1

    def _publish_state(self) -> None:
        msg = JointState()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.name = list(self.state_names)
        with self.lock:
            pos = list(self.positions)
        msg.position = pos[: len(msg.name)] + [0.0] * max(0, len(msg.name) - len(pos))
        self._state_pub.publish(msg)
        self.states_published += 1
