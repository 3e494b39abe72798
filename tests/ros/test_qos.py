"""Camera subscriptions follow what their publishers offer (real DDS, one process)."""

from __future__ import annotations

import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.node import Node  # noqa: E402
from rclpy.qos import QoSProfile, qos_profile_sensor_data  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from gigabrain_runtime.ros import qos  # noqa: E402
from tests.ros.harness import graph, wait_for  # noqa: E402


def test_a_camera_subscription_turns_reliable_only_when_every_publisher_is():
    """A reliable publisher (the ROS default QoS, what most camera drivers use) gets a reliable
    subscription, so lost fragments of large frames are re-sent; a best-effort publisher on the
    same topic turns it back to best effort, which matches both."""
    with graph() as g:
        node = g.spin(Node("camera_subscriber"))
        received: list[str] = []
        sub = qos.CameraSubscription(
            node, String, "cam/image_raw", lambda m: received.append(m.data), check_s=0.1
        )
        assert sub.reliability == "best_effort"  # no publisher yet: matches anything
        talker = Node("talker")
        reliable = talker.create_publisher(String, "cam/image_raw", QoSProfile(depth=10))
        g.spin(talker)
        wait_for(lambda: sub.reliability == "reliable", 20, "a reliable subscription")

        def delivered(text: str) -> bool:
            reliable.publish(String(data=text))
            return text in received

        wait_for(lambda: delivered("frame"), 20, "a frame through the reliable subscription")
        sensor = talker.create_publisher(String, "cam/image_raw", qos_profile_sensor_data)
        wait_for(lambda: sub.reliability == "best_effort", 20, "back to best effort")
        wait_for(lambda: sensor.get_subscription_count() > 0, 20, "both publishers matched")
        assert reliable.get_subscription_count() > 0
