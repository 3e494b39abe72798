"""piper_bridge: the runtime's canonical topics <-> one or more piper_ros drivers, as they are.

Canonical side (this node's namespace): ``joint_states`` (published, the embodiment's joint
names and order, calibrated), ``joint_command`` (subscribed, from the executor) and
``teleop/joint_command`` (published from the leader arms, for the intervention flow).

Driver side, per arm (``arm_namespaces[i]``: '' = this namespace, 'left' relative,
'/left' absolute): ``joint_states_single`` and ``joint_ctrl`` (leader arm) in,
``joint_ctrl_single`` and ``enable_flag`` out - see robots/piper_ros.py for what the driver reads
from which field.

Safety:
* commands are validated (names, finite, position limits) before anything reaches a driver; a
  bad one is dropped - the driver keeps its last target, i.e. the arm holds - and reported;
* ``enable_flag`` is sent once per arm when its driver is discovered, and commands flow to that
  arm only ``enable_settle_s`` later;
* on shutdown the bridge keeps forwarding until the executor's braking stream has come to rest
  (or ``shutdown_grace_s``), then optionally disables the arms (off by default: an unpowered
  PiPER sags under gravity).
"""

from __future__ import annotations

import array
import threading
import time

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool

from gigabrain_runtime.diagnostics.stats import Level, RateMeter, Status
from gigabrain_runtime.params.nodes import PiperBridgeParams
from gigabrain_runtime.robots.embodiment import get_embodiment
from gigabrain_runtime.robots.joint_calibration import JointCalibration
from gigabrain_runtime.robots.piper_ros import (
    ArmSplit,
    PiperDriverConfig,
    check_within_limits,
    driver_positions,
)
from gigabrain_runtime.ros import qos
from gigabrain_runtime.ros.convert import joint_positions, s_to_stamp, stamp_to_s
from gigabrain_runtime.ros.node_utils import DiagnosticsPublisher, run_node
from gigabrain_runtime.ros.params import declare_params, on_set_params


def _driver_topic(namespace: str, name: str) -> str:
    namespace = namespace.rstrip("/")
    return f"{namespace}/{name}" if namespace else name


class _Arm:
    """What the bridge knows about one driver."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.state: np.ndarray | None = None  # raw driver values [7]
        self.state_stamp_s = 0.0
        self.state_mono = -np.inf
        self.state_rate = RateMeter()
        self.leader: np.ndarray | None = None
        self.leader_stamp_s = 0.0
        self.leader_mono = -np.inf
        self.enabled_mono: float | None = None
        self.commands_sent = 0


class PiperBridgeNode(Node):
    def __init__(self) -> None:
        super().__init__("piper_bridge")
        p = declare_params(self, PiperBridgeParams)
        self.driver = PiperDriverConfig(
            speed_percent=p.speed_percent, gripper_effort_nm=p.gripper_effort
        )
        self.enable_on_start = p.enable_on_start
        self.disable_on_shutdown = p.disable_on_shutdown
        self._set_timing(p, set())
        self.embodiment = get_embodiment(p.robot)
        self.split = ArmSplit.from_embodiment(self.embodiment, p.arm_prefixes)
        self.calibration = JointCalibration.load(p.joints_calibration, self.embodiment.joint_names)

        self._lock = threading.Lock()
        self.arms = [_Arm(ns) for ns in p.arm_namespaces]
        self._errors: dict[str, str] = {}
        self.dropped_commands = 0
        self.commands_in = 0
        self._last_command_mono = -np.inf
        self._command_rate = RateMeter()

        self._state_pub = self.create_publisher(JointState, "joint_states", qos.SENSOR)
        self._teleop_pub = self.create_publisher(JointState, "teleop/joint_command", qos.SENSOR)
        self.create_subscription(JointState, "joint_command", self._on_command, qos.COMMAND)
        self._ctrl_pubs = []
        self._enable_pubs = []
        for i, arm in enumerate(self.arms):
            ns = arm.namespace
            self.create_subscription(
                JointState,
                _driver_topic(ns, "joint_states_single"),
                lambda msg, i=i: self._on_driver_state(i, msg),
                qos.SENSOR,
            )
            self.create_subscription(
                JointState,
                _driver_topic(ns, "joint_ctrl"),
                lambda msg, i=i: self._on_leader(i, msg),
                qos.SENSOR,
            )
            self._ctrl_pubs.append(
                self.create_publisher(
                    JointState, _driver_topic(ns, "joint_ctrl_single"), qos.DRIVER
                )
            )
            self._enable_pubs.append(
                self.create_publisher(Bool, _driver_topic(ns, "enable_flag"), qos.DRIVER)
            )
        self.create_timer(0.1, self._enable_arms)
        on_set_params(self, p, self._set_timing)
        DiagnosticsPublisher(self, self._diagnostics)
        where = ", ".join(
            f"{prefix or '(no prefix)'} -> {self._ctrl_pubs[i].topic_name}"
            for i, prefix in enumerate(self.split.prefixes)
        )
        self.get_logger().info(
            f"piper bridge for {self.embodiment.name}: {where}; speed {self.driver.speed_percent}%"
            + ("" if self.calibration.is_identity else f"; calibration {p.joints_calibration}")
        )

    def _set_timing(self, new: PiperBridgeParams, names: set[str]) -> None:
        """The parameters that may change while the bridge runs."""
        self.enable_settle_s = new.enable_settle_s
        self.state_timeout_s = new.state_timeout_s
        self.leader_timeout_s = new.leader_timeout_s
        self.shutdown_grace_s = new.shutdown_grace_s

    # ---- enable ------------------------------------------------------------------------------
    def _enable_arms(self) -> None:
        if not self.enable_on_start:
            return
        for i, arm in enumerate(self.arms):
            if arm.enabled_mono is None and self._enable_pubs[i].get_subscription_count() > 0:
                self._enable_pubs[i].publish(Bool(data=True))
                arm.enabled_mono = time.monotonic()
                self.get_logger().info(f"enabled arm on {self._enable_pubs[i].topic_name}")

    def _may_command(self, arm: _Arm, now: float) -> bool:
        if not self.enable_on_start:
            return True
        return arm.enabled_mono is not None and now - arm.enabled_mono >= self.enable_settle_s

    # ---- driver -> canonical -----------------------------------------------------------------
    def _driver_values(self, i: int, msg: JointState, field: str) -> np.ndarray | None:
        """The 7 driver values of arm ``i``, or None (reported on /diagnostics)."""
        try:
            raw = driver_positions(list(msg.name), list(msg.position), field=field)
        except ValueError as exc:
            self._errors[f"arm{i}.{field}"] = str(exc)
            return None
        self._errors.pop(f"arm{i}.{field}", None)
        return raw

    def _publish_canonical(self, pub, per_arm: list[np.ndarray], stamp) -> None:  # noqa: ANN001
        """Merge the arms' driver values into the embodiment's calibrated joint vector."""
        out = JointState()
        out.header.stamp = stamp
        out.name = list(self.embodiment.joint_names)
        merged = self.split.merge(np.stack(per_arm))
        out.position = array.array("d", self.calibration.to_canonical(merged))
        pub.publish(out)

    def _on_driver_state(self, i: int, msg: JointState) -> None:
        arm = self.arms[i]
        raw = self._driver_values(i, msg, "joint_states_single")
        if raw is None:
            return
        now = time.monotonic()
        arm.state, arm.state_stamp_s, arm.state_mono = raw, stamp_to_s(msg.header.stamp), now
        arm.state_rate.tick(now)
        if i != 0:
            return  # arm 0 paces the merged stream; the others contribute their latest sample
        if any(a.state is None or now - a.state_mono > self.state_timeout_s for a in self.arms):
            return  # one arm is silent: publish nothing, so the runtime's watchdogs hold
        oldest = min(a.state_stamp_s for a in self.arms)
        stamp = msg.header.stamp if len(self.arms) == 1 else s_to_stamp(oldest)
        self._publish_canonical(self._state_pub, [a.state for a in self.arms], stamp)

    def _on_leader(self, i: int, msg: JointState) -> None:
        arm = self.arms[i]
        stamp = stamp_to_s(msg.header.stamp)
        if stamp <= arm.leader_stamp_s:
            return  # the driver republishes the last leader frame (stamp 0 without a leader)
        raw = self._driver_values(i, msg, "joint_ctrl")
        if raw is None:
            return
        now = time.monotonic()
        arm.leader, arm.leader_stamp_s, arm.leader_mono = raw, stamp, now
        if i != 0 or any(
            a.leader is None or now - a.leader_mono > self.leader_timeout_s for a in self.arms
        ):
            return
        self._publish_canonical(self._teleop_pub, [a.leader for a in self.arms], msg.header.stamp)

    # ---- canonical -> driver -----------------------------------------------------------------
    def _on_command(self, msg: JointState) -> None:
        now = time.monotonic()
        self.commands_in += 1
        try:
            positions, _unknown = joint_positions(msg, self.embodiment.joint_names)
            check_within_limits(positions, self.embodiment, field="joint_command")
        except ValueError as exc:
            self.dropped_commands += 1
            self._errors["joint_command"] = str(exc).replace("joint_states", "joint_command")
            return  # the drivers keep their last target: the arms hold
        self._errors.pop("joint_command", None)
        self._last_command_mono = now
        self._command_rate.tick(now)
        per_arm = self.split.split(self.calibration.to_robot(positions))
        for i, arm in enumerate(self.arms):
            if not self._may_command(arm, now):
                continue
            out = JointState()
            out.header.stamp = msg.header.stamp
            name, pos, vel, eff = self.driver.command_fields(per_arm[i])
            out.name, out.position = name, array.array("d", pos)
            out.velocity, out.effort = array.array("d", vel), array.array("d", eff)
            self._ctrl_pubs[i].publish(out)
            arm.commands_sent += 1

    # ---- shutdown ----------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Keep forwarding (run_node spins our callbacks meanwhile) while the executor brakes;
        done when its stream has been quiet for 0.15 s or after ``shutdown_grace_s``."""
        deadline = time.monotonic() + self.shutdown_grace_s
        while time.monotonic() < deadline and self.context.ok():
            if time.monotonic() - self._last_command_mono > 0.15:
                break
            time.sleep(0.01)
        if self.disable_on_shutdown and self.context.ok():
            for pub in self._enable_pubs:
                pub.publish(Bool(data=False))
            time.sleep(0.1)  # let the reliable writes go out before the participant closes
            self.get_logger().info("arms disabled")

    # ---- diagnostics -------------------------------------------------------------------------
    def _diagnostics(self) -> list[Status]:
        now = time.monotonic()
        s = Status("piper_bridge")
        s.values = {
            "commands_in": str(self.commands_in),
            "commands_dropped": str(self.dropped_commands),
            "command_hz": f"{self._command_rate.rate(now):.1f}",
            "calibration": "identity" if self.calibration.is_identity else self.calibration.source,
        }
        for i, arm in enumerate(self.arms):
            tag = self.split.prefixes[i] or f"arm{i}_"
            s.values[f"{tag}state_hz"] = f"{arm.state_rate.rate(now):.1f}"
            s.values[f"{tag}commands_sent"] = str(arm.commands_sent)
            s.values[f"{tag}enabled"] = str(arm.enabled_mono is not None).lower()
            if arm.state is None:
                s.worse(Level.STALE, f"no joint_states_single from {arm.namespace or 'driver'}")
            elif now - arm.state_mono > self.state_timeout_s:
                s.worse(Level.ERROR, f"{tag}driver state is {now - arm.state_mono:.2f} s old")
            if self.enable_on_start and arm.enabled_mono is None:
                s.worse(Level.WARN, f"waiting for the driver's {self._enable_pubs[i].topic_name}")
        for source, err in self._errors.items():
            s.worse(Level.WARN, f"{source}: {err}")
        return [s]


def main(argv: list[str] | None = None) -> int:
    return run_node(PiperBridgeNode, argv)


if __name__ == "__main__":
    raise SystemExit(main())
