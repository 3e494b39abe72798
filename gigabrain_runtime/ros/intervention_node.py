"""intervention: turns takeover requests into the latched ``intervention/active`` state.

Inputs: ``intervention/engage`` (std_msgs/Bool: true = take over until false) and, if
``deadman_button`` >= 0, ``/joy`` (sensor_msgs/Joy: take over only while the button is held).
The executor follows ``teleop/joint_command`` while the state is active.
"""

from __future__ import annotations

import time

from rclpy.node import Node
from sensor_msgs.msg import Joy
from std_msgs.msg import Bool

from gigabrain_runtime.diagnostics.stats import Level, Status
from gigabrain_runtime.hilr.intervention import InterventionState
from gigabrain_runtime.params.nodes import InterventionParams
from gigabrain_runtime.ros import qos
from gigabrain_runtime.ros.node_utils import DiagnosticsPublisher, run_node
from gigabrain_runtime.ros.params import declare_params


class InterventionNode(Node):
    def __init__(self) -> None:
        super().__init__("intervention")
        p = declare_params(self, InterventionParams)
        self.deadman = p.deadman_button
        self.state = InterventionState()
        self._pub = self.create_publisher(Bool, "intervention/active", qos.LATCHED)
        self._engage_subs = qos.latched_subscriptions(
            self, Bool, "intervention/engage", self._on_engage
        )
        if self.deadman >= 0:
            self.create_subscription(Joy, p.joy_topic, self._on_joy, qos.SENSOR)
        self._publish()
        self.create_timer(1.0, self._publish)  # keeps volatile late joiners informed too
        DiagnosticsPublisher(self, self._diagnostics)

    def _publish(self) -> None:
        self._pub.publish(Bool(data=self.state.active))

    def _changed(self) -> None:
        self._publish()
        self.get_logger().info("operator takeover" if self.state.active else "hand-back")

    def _on_engage(self, msg: Bool) -> None:
        if self.state.engage(msg.data, time.monotonic()):
            self._changed()

    def _on_joy(self, msg: Joy) -> None:
        if self.state.joystick(list(msg.buttons), self.deadman, time.monotonic()):
            self._changed()

    def _diagnostics(self) -> list[Status]:
        s = Status("intervention")
        s.values = {
            "active": str(self.state.active).lower(),
            "engaged_by_topic": str(self.state.topic_engaged).lower(),
            "deadman_held": str(self.state.deadman_held).lower(),
            "interventions": str(len(self.state.segments)),
        }
        if self.state.active:
            s.worse(Level.OK, "operator has control")
            s.message = "operator has control"
        return [s]


def main(argv: list[str] | None = None) -> int:
    return run_node(InterventionNode, argv)


if __name__ == "__main__":
    raise SystemExit(main())
