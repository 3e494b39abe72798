"""The recorder as its own process: crash safety (SIGKILL) and a full disk."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from rclpy.node import Node  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402

from gigabrain_runtime.hilr.recording import METADATA, typestore  # noqa: E402
from gigabrain_runtime.ros import qos  # noqa: E402
from tests.ros.fake_robot import OBSERVER  # noqa: E402
from tests.ros.harness import Graph, Inbox, graph, wait_for  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
NAMES = ["joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "gripper"]


def start_recorder(g: Graph, record_dir: Path, *extra: str) -> subprocess.Popen:
    """The recorder in ``g``'s domain, its output in a log beside the episodes (not a pipe that
    nobody reads while the test runs); ``g`` stops it (Ctrl-C, then SIGKILL) when it closes."""
    args = ["record", "--robot", "piper", "--record-dir", str(record_dir), *extra]
    return g.launch(args, record_dir / "recorder.log")


def test_sigkill_after_10_s_loses_at_most_the_last_second(tmp_path):
    """Killed mid-stream, the recorder keeps all but the last second of what it had taken in.
    What it had taken in comes from its own diagnostic, sent while the stream was running and
    received just before the kill, so a busy machine that slows its intake does not count as
    a crash-safety loss."""
    with graph() as g:
        rec = start_recorder(g, tmp_path)
        listener = g.spin(DiagListener())
        node = g.spin(Node("joint_publisher", namespace="/piper"))
        pub = node.create_publisher(JointState, "joint_states", qos.SENSOR)
        wait_for(lambda: pub.get_subscription_count() > 0, 60, "the recorder to subscribe")
        listener.diag("recorder", since=time.monotonic(), timeout=30)  # it is up and recording
        # 100 Hz for 10 s, then on until a recorder diagnostic sent after those 10 s arrives:
        # the kill lands while messages are still flowing
        t0 = time.monotonic()
        i = 0
        taken = None
        while taken is None:
            msg = JointState(name=NAMES, position=[float(i)] * 7)
            msg.header.stamp = node.get_clock().now().to_msg()
            pub.publish(msg)
            i += 1
            if time.monotonic() - t0 >= 10.0:
                fresh = [d for d in listener.statuses("recorder", t0 + 10.0) if "messages" in d]
                taken = int(fresh[-1]["messages"]) if fresh else None
            assert time.monotonic() - t0 < 60, "no recorder diagnostic while streaming"
            time.sleep(max(0.0, t0 + i * 0.01 - time.monotonic()))
        rec.send_signal(signal.SIGKILL)
        rec.wait(timeout=10)

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
        on_disk = sum(1 for _ in reader.messages())
    # flushed every 0.5 s: what it took in more than a second before its diagnostic is on disk
    assert on_disk >= taken - 100, (on_disk, taken, i)
    assert taken >= 0.5 * i, (taken, i)  # and it did take in the stream (best effort: most)
    listing = subprocess.run(
        [sys.executable, "-m", "gigabrain_runtime", "bag", "list", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert episode.name in listing.stdout and "recovered" in listing.stdout


class DiagListener(Node, Inbox):
    def __init__(self) -> None:
        Node.__init__(self, "diag_listener")
        Inbox.__init__(self)
        self.create_subscription(
            DiagnosticArray, "/diagnostics", self._rec("diagnostics"), OBSERVER
        )


def test_a_full_disk_stops_recording_with_an_error_and_the_recorder_keeps_running(tmp_path):
    with graph() as g:
        rec = start_recorder(g, tmp_path, "--min-free-mb", "1e12")  # more than any disk
        listener = g.spin(DiagListener())
        err = listener.diag("recorder", since=0.0, where=lambda d: d["_level"] == "2", timeout=60)
        assert "recording stopped" in err["_message"]
        assert rec.poll() is None  # still running, reporting
        # the cause goes away at run time (min_free_mb lowered): the error clears and, with
        # auto_start, a new episode records - no restart
        client = listener.create_client(SetParameters, "/piper/recorder/set_parameters")
        assert client.wait_for_service(timeout_sec=30)
        request = SetParameters.Request()
        value = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=1.0)
        request.parameters = [Parameter(name="min_free_mb", value=value)]
        future = client.call_async(request)
        wait_for(future.done, 30, "min_free_mb set")
        assert future.result().results[0].successful
        ok = listener.diag(
            "recorder",
            since=time.monotonic(),
            where=lambda d: d["_level"] == "0" and d["recording"] == "true",
            timeout=30,
        )
        assert ok["episodes"] == "1"
    # nothing half-written while the disk was "full"; the one episode after it is complete
    (episode,) = [d for d in tmp_path.iterdir() if d.is_dir()]
    assert (episode / METADATA).is_file()
