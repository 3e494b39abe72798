"""The recorder as its own process: crash safety (SIGKILL) and a full disk."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402

from gigabrain_runtime.hilr.recording import METADATA, typestore  # noqa: E402
from gigabrain_runtime.ros import qos  # noqa: E402
from tests.ros.fake_robot import OBSERVER, Spinner, fresh_domain  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
NAMES = ["joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "gripper"]


def start_recorder(record_dir: Path, domain: int, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gigabrain_runtime",
            "record",
            "--robot",
            "piper",
            "--record-dir",
            str(record_dir),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env={**os.environ, "ROS_DOMAIN_ID": str(domain)},
    )


def test_sigkill_after_10_s_loses_at_most_the_last_second(tmp_path):
    domain = fresh_domain()
    rec = start_recorder(tmp_path, domain)
    gc.collect()
    gc.freeze()
    rclpy.init(domain_id=domain)
    node = Node("joint_publisher", namespace="/piper")
    pub = node.create_publisher(JointState, "joint_states", qos.SENSOR)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        # wait until the recorder is subscribed, then publish 10 s at 100 Hz
        end = time.monotonic() + 60
        while pub.get_subscription_count() == 0 and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.1)
        assert pub.get_subscription_count() > 0, "recorder never subscribed"
        time.sleep(1.0)
        t0 = time.monotonic()
        i = 0
        while time.monotonic() - t0 < 10.0:
            msg = JointState(name=NAMES, position=[float(i)] * 7)
            msg.header.stamp = node.get_clock().now().to_msg()
            pub.publish(msg)
            i += 1
            time.sleep(max(0.0, t0 + i * 0.01 - time.monotonic()))
        rec.send_signal(signal.SIGKILL)
        rec.wait(timeout=10)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown()
    (episode,) = [d for d in tmp_path.iterdir() if d.is_dir()]
    assert not (episode / METADATA).exists()  # the kill left it unfinished
    out = subprocess.run(
        [sys.executable, "-m", "gigabrain_runtime", "bag", "recover", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    from rosbags.highlevel import AnyReader

    with AnyReader([episode], default_typestore=typestore()) as reader:
        conns = [c for c in reader.connections if c.topic == "/piper/joint_states"]
        stamps = [t for _, t, _ in reader.messages(connections=conns)]
    seconds = (stamps[-1] - stamps[0]) * 1e-9
    assert seconds >= 9.0, (seconds, len(stamps), i)
    assert len(stamps) >= 0.9 * i  # published i messages; at most the last second is lost
    listing = subprocess.run(
        [sys.executable, "-m", "gigabrain_runtime", "bag", "list", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert episode.name in listing.stdout and "recovered" in listing.stdout


def test_a_full_disk_stops_recording_with_an_error_and_the_recorder_keeps_running(tmp_path):
    domain = fresh_domain()
    rec = start_recorder(tmp_path, domain, "--min-free-mb", "1e12")  # more than any disk
    gc.collect()
    gc.freeze()
    rclpy.init(domain_id=domain)
    from diagnostic_msgs.msg import DiagnosticArray

    node = Node("diag_listener")
    seen = []
    node.create_subscription(
        DiagnosticArray,
        "/diagnostics",
        lambda m: seen.extend(s for s in m.status if "recorder" in s.name),
        OBSERVER,
    )
    spinner = Spinner(node)
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end and not any(s.level == b"\x02" for s in seen):
            time.sleep(0.2)
        errors = [s for s in seen if s.level == b"\x02"]
        assert errors and "recording stopped" in errors[-1].message
        assert rec.poll() is None  # still running, reporting
    finally:
        spinner.stop()
        node.destroy_node()
        rclpy.shutdown()
        rec.send_signal(signal.SIGINT)
        rec.wait(timeout=15)
    assert not any(d.is_dir() for d in tmp_path.iterdir())  # nothing half-written
