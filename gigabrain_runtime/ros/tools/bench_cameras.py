"""Frames per second that reach a subscriber from a camera publisher with stock settings.

A stock camera driver runs with Fast DDS's default settings (no profile) and publishes raw
frames with either the ROS default QoS (reliable, keep last 10) or the sensor-data QoS (best
effort, keep last 5). For each resolution x rate x publisher QoS, a publisher runs in a separate
process *without* the project's Fast DDS profile, and this process subscribes the way the vla
does (with the project's profile): best effort (``qos.SENSOR``), and matched to what the
publisher offers (``qos.camera_qos``: reliable when every publisher is). Reported: frames
published and received per second over the same window.

    gigabrain-runtime bench-cameras [--seconds 10] [--out benchmarks/camera_delivery.json]
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

RESOLUTIONS = ((640, 480), (1280, 720))
RATES = (15.0, 30.0)
PUBLISHER_QOS = ("reliable", "sensor_data")
SUBSCRIBER_QOS = ("best_effort", "matched")


@dataclasses.dataclass(frozen=True)
class Case:
    width: int
    height: int
    hz: float
    publisher_qos: str
    subscriber_qos: str


def _publisher_qos(name: str):  # noqa: ANN202
    from rclpy.qos import QoSProfile, qos_profile_sensor_data

    return qos_profile_sensor_data if name == "sensor_data" else QoSProfile(depth=10)


def publish(width: int, height: int, hz: float, qos_name: str, seconds: float) -> int:
    """The stock publisher (run in its own process, without the project's profile): rgb8
    frames at ``hz`` for ``seconds``; prints how many it published."""
    import rclpy
    from sensor_msgs.msg import Image

    from gigabrain_runtime.pacing import DeadlinePacer

    rclpy.init()
    node = rclpy.create_node("stock_camera")
    pub = node.create_publisher(Image, "bench/image_raw", _publisher_qos(qos_name))
    data = np.random.default_rng(0).integers(0, 256, width * height * 3, np.uint8).tobytes()
    # wait for the subscriber, as a driver started before the runtime would have
    deadline = time.monotonic() + 20.0
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.5)  # the subscriber settles its QoS (CameraSubscription checks every 1 s)
    pacer = DeadlinePacer(1.0 / hz)
    sent = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pacer.wait()
        msg = Image(height=height, width=width, encoding="rgb8", step=width * 3)
        msg.header.stamp = node.get_clock().now().to_msg()
        msg.data = data
        pub.publish(msg)
        sent += 1
    print(sent, flush=True)
    node.destroy_node()
    rclpy.shutdown()
    return 0


def _measure(case: Case, seconds: float) -> dict[str, Any]:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import Image

    from gigabrain_runtime.ros import qos

    node = rclpy.create_node("bench_cameras")
    received: list[float] = []
    seen_as: set[str] = set()  # the subscription's reliability when frames arrived
    lock = threading.Lock()

    def on_image(msg: Image) -> None:
        with lock:
            received.append(time.monotonic())
            seen_as.add(getattr(sub, "reliability", "best_effort"))

    if case.subscriber_qos == "matched":
        sub = qos.CameraSubscription(node, Image, "bench/image_raw", on_image)
    else:
        sub = node.create_subscription(Image, "bench/image_raw", on_image, qos.SENSOR)
    env = {k: v for k, v in os.environ.items() if k != "FASTDDS_DEFAULT_PROFILES_FILE"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gigabrain_runtime.ros.tools.bench_cameras",
            "--publish",
            str(case.width),
            str(case.height),
            str(case.hz),
            case.publisher_qos,
            str(seconds),
        ],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        while proc.poll() is None:
            executor.spin_once(timeout_sec=0.05)
        for _ in range(20):  # frames still in flight
            executor.spin_once(timeout_sec=0.05)
    finally:
        executor.shutdown()
        sent = int((proc.stdout.read() if proc.stdout else "0").strip() or 0)
        node.destroy_node()
    with lock:
        times = list(received)
    return {
        **dataclasses.asdict(case),
        "seconds": seconds,
        "published_per_s": sent / seconds,
        "received_per_s": len(times) / seconds,
        "subscribed_as": "+".join(sorted(seen_as)) or "-",
        "delivered": len(times) / sent if sent else 0.0,
    }


def run(seconds: float = 10.0, out: Path | None = None) -> list[dict[str, Any]]:
    import rclpy

    from gigabrain_runtime.ros.node_utils import use_project_dds_profile

    use_project_dds_profile()  # the subscriber side is the runtime's
    rclpy.init()
    rows = []
    try:
        for (w, h), hz, pq, sq in (
            (r, hz, pq, sq)
            for r in RESOLUTIONS
            for hz in RATES
            for pq in PUBLISHER_QOS
            for sq in SUBSCRIBER_QOS
        ):
            row = _measure(Case(w, h, hz, pq, sq), seconds)
            rows.append(row)
            print(
                f"{w}x{h} {hz:4.0f} Hz  publisher {pq:11s} subscriber {sq:11s} "
                f"({row['subscribed_as']:11s}): {row['received_per_s']:5.1f} of "
                f"{row['published_per_s']:5.1f} frames/s",
                flush=True,
            )
    finally:
        rclpy.shutdown()
    if out is not None:
        out.write_text(json.dumps({"rows": rows}, indent=1) + "\n")
    return rows


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--publish":
        w, h, hz, q, s = sys.argv[2:7]
        raise SystemExit(publish(int(w), int(h), float(hz), q, float(s)))
    raise SystemExit("use: gigabrain-runtime bench-cameras")
