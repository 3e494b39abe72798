"""piper_standin: a stand-in for the piper_ros driver (node piper_single_ctrl), for tests and
for trying the PiPER launch files without an arm.

Same topic names, types, QoS (rclpy default: reliable, keep last 1) and rate (200 Hz) as the
driver, and the same reading of ``joint_ctrl_single``: joint1..6 by name (a missing one goes to
0 rad, as in the driver), the gripper by index 6, ``velocity[6]`` the speed percentage,
``effort[6]`` the gripper torque; commands are ignored until ``enable_flag`` is true. The arm
moves toward its target at ``speed% x max_speed_rad_s``.

Unlike the driver it audits what it is sent - commands while disabled, missing names, speed or
gripper effort not set, positions outside the URDF limits, the largest step between consecutive
commands - and reports it on /diagnostics and, at exit, as JSON (``report`` parameter).

Optionally it plays a leader arm on ``joint_ctrl`` (``leader``: a slow sweep around the start
pose; without it, ``joint_ctrl`` repeats a zero frame with stamp 0, as the driver does with no
leader on the bus), and publishes synthetic camera frames (``camera_topics``) so the policy has
images to run on.
"""

from __future__ import annotations

import array
import json
import math
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool

from gigabrain_runtime.diagnostics.stats import Status
from gigabrain_runtime.params.nodes import PiperStandinParams
from gigabrain_runtime.robots.embodiment import get_embodiment
from gigabrain_runtime.robots.joint_calibration import JointCalibration
from gigabrain_runtime.robots.piper_ros import DRIVER_JOINTS, GRIPPER_INDEX
from gigabrain_runtime.ros import qos
from gigabrain_runtime.ros.convert import s_to_stamp
from gigabrain_runtime.ros.node_utils import DiagnosticsPublisher, run_node
from gigabrain_runtime.ros.params import declare_params


class PiperStandinNode(Node):
    def __init__(self) -> None:
        super().__init__("piper_single_ctrl")
        p = declare_params(self, PiperStandinParams)
        self.rate_hz = p.rate_hz
        self.max_speed = p.max_speed_rad_s
        self.leader = p.leader
        self.command_period_s = p.command_period_s
        self.report_path = p.report
        self.limits = get_embodiment("piper")  # the URDF limits the audit checks against
        self.encoder = JointCalibration.load(p.encoder_calibration, self.limits.joint_names)

        self._lock = threading.Lock()
        self.q = np.array(p.start, dtype=np.float64)
        self.start_pose = self.q.copy()
        self.target = self.q.copy()
        self.speed_percent = 100.0
        self.enabled = False
        self.audit: dict[str, object] = {
            "commands": 0,
            "commands_while_disabled": 0,
            "missing_names": 0,
            "speed_unset": 0,
            "effort_unset": 0,
            "outside_limits": 0,
            "gripper_out_of_range": 0,
            "speed_percent_seen": [],
            "gripper_effort_seen": [],
            "max_velocity_rad_s": 0.0,  # largest step per command period, over all joints
            "first_command_s": None,
            "last_command_s": None,
            "enable_events": [],
        }
        self.recent: deque[tuple[float, list[float]]] = deque(maxlen=400)
        self._last_cmd: np.ndarray | None = None
        self._last_stamp = 0.0
        self._t0 = time.monotonic()

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

    # ---- what the driver does ----------------------------------------------------------------
    def _on_enable(self, msg: Bool) -> None:
        with self._lock:
            self.enabled = bool(msg.data)
            self.audit["enable_events"].append(
                [round(time.monotonic() - self._t0, 3), self.enabled]
            )
            if self.enabled:
                self.target[GRIPPER_INDEX] = 0.0  # the driver re-initialises the gripper to 0
                self.target[:GRIPPER_INDEX] = self.q[:GRIPPER_INDEX]
        self.get_logger().info(f"enable_flag: {msg.data}")

    def _on_command(self, msg: JointState) -> None:
        a = self.audit
        with self._lock:
            if not self.enabled:
                a["commands_while_disabled"] += 1
                return
            a["commands"] += 1
            names = list(msg.name)
            pos = list(msg.position)
            if any(n not in names for n in DRIVER_JOINTS[:GRIPPER_INDEX]):
                a["missing_names"] += 1
            by_name = {n: pos[i] for i, n in enumerate(names) if i < len(pos)}
            cmd = np.array([by_name.get(n, 0.0) for n in DRIVER_JOINTS[:GRIPPER_INDEX]] + [0.0])
            cmd[GRIPPER_INDEX] = pos[GRIPPER_INDEX] if len(pos) > GRIPPER_INDEX else 0.0
            vel = list(msg.velocity)
            if len(vel) == 7 and any(v != 0 for v in vel):
                self.speed_percent = float(np.clip(round(vel[6]), 1, 100))
                if self.speed_percent not in a["speed_percent_seen"]:
                    a["speed_percent_seen"].append(self.speed_percent)
            else:
                a["speed_unset"] += 1  # the driver falls back to 100 %
                self.speed_percent = 100.0
            eff = list(msg.effort)
            if len(eff) >= 7:
                e = float(np.clip(eff[6], 0.5, 3.0))
                if e not in a["gripper_effort_seen"]:
                    a["gripper_effort_seen"].append(e)
            else:
                a["effort_unset"] += 1
            lo, hi = self.limits.lower, self.limits.upper
            true = self.encoder.to_canonical(cmd)
            if np.any(true < lo - 1e-6) or np.any(true > hi + 1e-6):
                a["outside_limits"] += 1
            if not 0.0 <= cmd[GRIPPER_INDEX] <= 0.08:
                a["gripper_out_of_range"] += 1
            stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
            if self._last_cmd is not None:
                # the sender's stamps jitter by milliseconds: count whole periods between them,
                # so a late command followed by a punctual one is not read as a burst of speed
                periods = max(1, round((stamp - self._last_stamp) / self.command_period_s))
                step = np.abs(cmd[:GRIPPER_INDEX] - self._last_cmd[:GRIPPER_INDEX])
                v = float(np.max(step)) / (periods * self.command_period_s)
                a["max_velocity_rad_s"] = max(a["max_velocity_rad_s"], v)
            self._last_cmd, self._last_stamp = cmd, stamp
            now = round(time.monotonic() - self._t0, 4)
            if a["first_command_s"] is None:
                a["first_command_s"] = now
            a["last_command_s"] = now
            self.target = cmd
            self.recent.append((time.monotonic() - self._t0, cmd.tolist()))

    def _tick(self) -> None:
        dt = 1.0 / self.rate_hz
        with self._lock:
            if self.enabled:
                v = self.speed_percent / 100.0 * self.max_speed
                step = np.clip(self.target - self.q, -v * dt, v * dt)
                step[GRIPPER_INDEX] = np.clip(
                    self.target[GRIPPER_INDEX] - self.q[GRIPPER_INDEX], -0.1 * dt, 0.1 * dt
                )
                self.q = self.q + step
            q = self.q.copy()
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
            t = time.monotonic() - self._t0
            sweep = self.start_pose.copy()
            sweep[0] += 0.3 * math.sin(2 * math.pi * 0.2 * t)
            sweep[GRIPPER_INDEX] = 0.04 + 0.03 * math.sin(2 * math.pi * 0.1 * t)
            ctrl.header.stamp = stamp
            ctrl.position = array.array("d", sweep)
        else:
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

    # ---- audit -------------------------------------------------------------------------------
    def report(self) -> dict[str, object]:
        with self._lock:
            out = dict(self.audit)
            first, last = out["first_command_s"], out["last_command_s"]
            span = (last - first) if first is not None and last is not None else 0.0
            out["command_hz"] = round((out["commands"] - 1) / span, 2) if span > 0 else 0.0
            out["enabled"] = self.enabled
            out["position"] = self.q.tolist()
            out["recent_commands"] = list(self.recent)
        return out

    def _diagnostics(self) -> list[Status]:
        r = self.report()
        s = Status("piper_standin")
        s.values = {k: str(v) for k, v in r.items() if k != "recent_commands"}
        return [s]

    def shutdown(self) -> None:
        if self.report_path:
            Path(self.report_path).write_text(json.dumps(self.report()))


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
