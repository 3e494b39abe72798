"""QoS per stream, in one place.

* sensor streams (cameras, joint states): best effort, keep last 5 - a late frame is worthless,
  and a best-effort subscription also matches reliable publishers;
* commands and chunks: reliable, keep last 10;
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
DIAGNOSTICS = QoSProfile(
    reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST, depth=10
)


def latched_subscriptions(node, msg_type, topic, callback):  # noqa: ANN001, ANN201
    """Subscribe to a latched topic with both durabilities (callbacks must be idempotent)."""
    return [
        node.create_subscription(msg_type, topic, callback, LATCHED),
        node.create_subscription(msg_type, topic, callback, LATCHED_VOLATILE),
    ]
