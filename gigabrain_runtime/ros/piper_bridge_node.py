"""piper_bridge: the runtime's canonical topics <-> one or more piper_ros drivers, as they are.

Canonical side (this node's namespace): ``joint_states`` (published, the embodiment's joint
names and order, calibrated), ``joint_command`` (subscribed, from the executor) and
``teleop/joint_command`` (published from the leader arms, for the intervention flow).

Driver side, per arm (``arm_namespaces[i]``: '' = this namespace, 'left' relative,
'/left' absolute): ``joint_states_single`` and ``joint_ctrl`` (leader arm) in,
``joint_ctrl_single`` and ``enable_flag`` out - see robots/piper/piper_ros.py for what the driver
reads from which field.

What is decided (validation, enabling, merging, staleness, when braking has ended) is decided by
the ROS-free core ``robots/piper/bridge.py``; this node turns messages into calls on it and its
results into messages. On shutdown it keeps forwarding until the executor's braking stream has
come to rest (or ``shutdown_grace_s``), then optionally disables the arms (off by default: an
unpowered PiPER sags under gravity).
"""

from __future__ import annotations

import array
import time

from builtin_interfaces.msg import Time
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool

from gigabrain_runtime.diagnostics.stats import Status
from gigabrain_runtime.params.nodes import PiperBridgeParams
from gigabrain_runtime.robots.piper.bridge import Merged, PiperBridge
from gigabrain_runtime.ros import qos
from gigabrain_runtime.ros.node_utils import DiagnosticsPublisher, run_node, wait_for_acks
from gigabrain_runtime.ros.params import declare_params, on_set_params


def _driver_topic(namespace: str, name: str) -> str:
    namespace = namespace.rstrip("/")
    return f"{namespace}/{name}" if namespace else name


def _ns(stamp: Time) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def _stamp(ns: int) -> Time:
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


class PiperBridgeNode(Node):
    def __init__(self) -> None:
        super().__init__("piper_bridge")
        p = declare_params(self, PiperBridgeParams)
        self.core = PiperBridge(p)
        self.disable_on_shutdown = p.disable_on_shutdown

        self._state_pub = self.create_publisher(JointState, "joint_states", qos.SENSOR)
        self._teleop_pub = self.create_publisher(JointState, "teleop/joint_command", qos.SENSOR)
        self.create_subscription(JointState, "joint_command", self._on_command, qos.COMMAND)
        self._ctrl_pubs = []
        self._enable_pubs = []
        for i, ns in enumerate(p.arm_namespaces):
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
        on_set_params(self, p, lambda new, _names: self.core.set_params(new))
        DiagnosticsPublisher(self, self._diagnostics)
        where = ", ".join(
            f"{prefix or '(no prefix)'} -> {self._ctrl_pubs[i].topic_name}"
            for i, prefix in enumerate(self.core.split.prefixes)
        )
        calibration = self.core.calibration
        self.get_logger().info(
            f"piper bridge for {self.core.embodiment.name}: {where}; "
            f"speed {self.core.driver.speed_percent}%"
            + ("" if calibration.is_identity else f"; calibration {p.joints_calibration}")
        )

    def _enable_arms(self) -> None:
        now = time.monotonic()
        for i, pub in enumerate(self._enable_pubs):
            if self.core.should_enable(i, now, driver_listening=pub.get_subscription_count() > 0):
                pub.publish(Bool(data=True))
                self.get_logger().info(f"enabled arm on {pub.topic_name}")

    def _publish(self, pub, merged: Merged | None) -> None:  # noqa: ANN001
        if merged is None:
            return
        out = JointState()
        out.header.stamp = _stamp(merged.stamp_ns)
        out.name = list(self.core.embodiment.joint_names)
        out.position = array.array("d", merged.positions)
        pub.publish(out)

    def _on_driver_state(self, i: int, msg: JointState) -> None:
        merged = self.core.on_state(
            i, list(msg.name), list(msg.position), _ns(msg.header.stamp), time.monotonic()
        )
        self._publish(self._state_pub, merged)

    def _on_leader(self, i: int, msg: JointState) -> None:
        merged = self.core.on_leader(
            i, list(msg.name), list(msg.position), _ns(msg.header.stamp), time.monotonic()
        )
        self._publish(self._teleop_pub, merged)

    def _on_command(self, msg: JointState) -> None:
        for cmd in self.core.on_command(list(msg.name), list(msg.position), time.monotonic()):
            out = JointState()
            out.header.stamp = msg.header.stamp
            out.name, out.position = cmd.name, array.array("d", cmd.position)
            out.velocity, out.effort = array.array("d", cmd.velocity), array.array("d", cmd.effort)
            self._ctrl_pubs[cmd.arm].publish(out)

    def shutdown(self) -> None:
        """Keep forwarding (run_node spins our callbacks meanwhile) while the executor brakes."""
        started = time.monotonic()
        while self.context.ok() and not self.core.braking_done(time.monotonic(), started):
            time.sleep(0.01)
        wait_for_acks(self, self._ctrl_pubs)  # the resting commands reach the drivers
        if self.disable_on_shutdown and self.context.ok():
            for pub in self._enable_pubs:
                pub.publish(Bool(data=False))
            wait_for_acks(self, self._enable_pubs)  # delivered before the participant closes
            self.get_logger().info("arms disabled")

    def _diagnostics(self) -> list[Status]:
        return [self.core.status(time.monotonic(), [p.topic_name for p in self._enable_pubs])]


def main(argv: list[str] | None = None) -> int:
    return run_node(PiperBridgeNode, argv)


if __name__ == "__main__":
    raise SystemExit(main())
