"""QoS per stream, in one place.

* sensor streams (cameras, joint states): best effort, keep last 5 - a late frame is worthless,
  and a best-effort subscription also matches reliable publishers. Raw camera frames are the
  exception (:class:`CameraSubscription`): a 0.9-2.8 MB frame travels as hundreds of UDP
  fragments from a publisher without a large shared-memory segment, and a best-effort reader
  loses the whole frame with any one of them; when every publisher offers reliable, the
  subscription turns reliable too, so lost fragments are re-sent instead;
* commands and chunks: reliable, keep last 10 (a controller's trajectory: keep last 1);
* latched state (e-stop, instruction, intervention state): reliable + transient local, depth 1,
  so a late joiner gets the current value. Subscribers to latched topics also subscribe once
  with volatile durability (see ``latched_subscriptions``): a transient-local subscription does
  not match a publisher that offers only volatile durability, and an e-stop must never be missed
  because of a QoS mismatch.
"""

from __future__ import annotations

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

SENSOR = qos_profile_sensor_data
COMMAND = QoSProfile(
    reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST, depth=10
)
LATCHED = QoSProfile(
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
)
LATCHED_VOLATILE = QoSProfile(
    reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST, depth=1
)
# A vendor driver's own topics (piper_ros creates them with rclpy's default: reliable, volatile,
# keep last 1): our publishers must offer reliable, or the driver's subscription never matches.
DRIVER = QoSProfile(
    reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST, depth=1
)
# ros2_control joint_trajectory_controller's ~/joint_trajectory (it subscribes with the system
# default QoS: reliable, volatile): reliable, and keep only the newest - JTC replaces the running
# trajectory with each new one, so an older one queued behind it is worthless
CONTROLLER = QoSProfile(
    reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST, depth=1
)
DIAGNOSTICS = QoSProfile(
    reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST, depth=10
)


CAMERA_RELIABLE = QoSProfile(
    reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST, depth=2
)


class CameraSubscription:
    """A raw-camera subscription whose reliability follows its publishers: best effort (which
    matches every publisher) until every publisher found on the topic offers reliable, then
    reliable keep-last-2; back to best effort when a best-effort publisher appears. Checked
    every ``check_s`` on a node timer."""

    def __init__(self, node, msg_type, topic, callback, *, check_s: float = 1.0) -> None:  # noqa: ANN001
        self._node, self._type, self._topic, self._callback = node, msg_type, topic, callback
        self.reliability = "best_effort"
        self._sub = node.create_subscription(msg_type, topic, callback, SENSOR)
        self._timer = node.create_timer(check_s, self.check)
        self.check()

    @property
    def topic_name(self) -> str:
        return self._sub.topic_name

    def check(self) -> None:
        infos = self._node.get_publishers_info_by_topic(self._sub.topic_name)
        reliable = bool(infos) and all(
            i.qos_profile.reliability == ReliabilityPolicy.RELIABLE for i in infos
        )
        want = "reliable" if reliable else "best_effort"
        if want == self.reliability:
            return
        profile = CAMERA_RELIABLE if reliable else SENSOR
        self._node.destroy_subscription(self._sub)
        self._sub = self._node.create_subscription(self._type, self._topic, self._callback, profile)
        self.reliability = want
        self._node.get_logger().info(
            f"{self._sub.topic_name}: {len(infos)} publisher(s), "
            + (
                "all reliable: subscribing reliable (lost fragments are re-sent)"
                if reliable
                else "not all reliable: subscribing best effort"
            )
        )


def latched_subscriptions(node, msg_type, topic, callback):  # noqa: ANN001, ANN201
    """Subscribe to a latched topic with both durabilities (callbacks must be idempotent)."""
    return [
        node.create_subscription(msg_type, topic, callback, LATCHED),
        node.create_subscription(msg_type, topic, callback, LATCHED_VOLATILE),
    ]
