"""The vla + executor graph as an outside ROS 2 process sees it (real DDS on loopback).

One graph is launched for the module through ``gigabrain-runtime launch
launch/runtime.launch.yaml`` - exactly what a user runs - and a fake robot in this process
publishes 640x480 rgb8 cameras at 15 Hz and joint states at 100 Hz. The tests run in order and
each leaves the graph as it found it.
"""

from __future__ import annotations

import array
import gc
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from std_msgs.msg import Bool  # noqa: E402
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint  # noqa: E402

from gigabrain_runtime.robots.embodiment import get_embodiment  # noqa: E402
from tests.ros.fake_robot import (  # noqa: E402
    FakeRobot,
    Spinner,
    fresh_domain,
    rate,
    stamp_rate,
)

ROOT = Path(__file__).resolve().parents[2]
PIPER = get_embodiment("piper")
MID = (PIPER.lower + PIPER.upper) / 2


def wait_for(predicate, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture(scope="module")
def graph(tiny_engine, tmp_path_factory):
    base = tmp_path_factory.mktemp("graph")
    log = base / "launch.log"
    record_dir = base / "recordings"
    domain = fresh_domain()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gigabrain_runtime",
            "launch",
            str(ROOT / "launch/runtime.launch.yaml"),
            "robot:=piper",
            f"engine:={tiny_engine}",
            f"record_dir:={record_dir}",
        ],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        env={**os.environ, "ROS_DOMAIN_ID": str(domain)},
    )
    gc.collect()
    gc.freeze()  # the observer must not pause for seconds-long GC walks of torch's heap
    rclpy.init(domain_id=domain)
    robot = FakeRobot("/piper", PIPER.cameras, PIPER.joint_names, positions=MID)
    spinner = Spinner(robot)
    try:
        wait_for(lambda: len(robot.since("action_chunk", 0)) >= 5, 90, "the first chunks")
        robot.record_dir = record_dir
        yield robot, proc, log
    finally:
        robot.stop()
        spinner.stop()
        robot.destroy_node()
        rclpy.shutdown()
        proc.send_signal(2)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def alive(proc):
    return proc.poll() is None


def test_chunks_at_inference_hz_and_commands_at_control_hz(graph):
    robot, _, _ = graph
    t0 = time.monotonic()
    time.sleep(4.5)
    t1 = time.monotonic()
    chunk_hz = rate(robot.since("action_chunk", t0), t0, t1)
    command_hz = stamp_rate(robot.since("joint_command", t0))
    assert 9.0 <= chunk_hz <= 11.0, chunk_hz  # inference_hz 10 +-10 %
    st = np.array(
        sorted(
            m.header.stamp.sec + m.header.stamp.nanosec * 1e-9
            for _, m in robot.since("joint_command", t0)
        )
    )
    d = np.diff(st)
    assert 47.5 <= command_hz <= 52.5, (command_hz, int((d > 0.03).sum()), d.max())  # +-5 %


def test_chunk_message_layout(graph):
    robot, _, _ = graph
    t, msg = robot.since("action_chunk", 0)[-1]
    assert list(msg.joint_names) == list(PIPER.joint_names)
    assert len(msg.points) == 50
    tfs = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points]
    np.testing.assert_allclose(tfs, (np.arange(50) + 1) / 50.0, atol=1e-6)
    pos = np.array([p.positions for p in msg.points])
    vel = np.array([p.velocities for p in msg.points])
    np.testing.assert_allclose(vel[1:], np.diff(pos, axis=0) * 50.0, atol=1e-6)
    stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
    assert abs(time.time() - stamp) < 5.0  # a real ROS time, not zero


def test_diagnostics_report_rates_latency_and_state(graph):
    robot, _, _ = graph
    wait_for(
        lambda: robot.diag_values("inference") and robot.diag_values("executor"), 10, "diagnostics"
    )
    inf = robot.diag_values("inference")
    ex = robot.diag_values("executor")
    inputs = robot.diag_values("inputs")
    assert float(inf["latency_p50_ms"]) > 0 and inf["mode"] == "efficient"
    assert ex["state"] == "running" and ex["estop"] == "false"
    assert 12.0 <= float(inputs["cam_high_hz"]) <= 18.0
    assert 80.0 <= float(inputs["joint_states_hz"]) <= 120.0


def _commands_between(robot, t0, t1):
    return [np.array(m.position) for t, m in robot.since("joint_command", t0) if t <= t1]


def test_estop_freezes_within_one_control_period_and_holds_until_released(graph):
    robot, _, _ = graph
    robot.estop_pub.publish(Bool(data=True))
    t_engage = time.monotonic()
    time.sleep(1.0)
    # allow one period plus DDS delivery for the e-stop to take effect, then nothing moves
    after = _commands_between(robot, t_engage + 0.04, t_engage + 1.0)
    assert len(after) > 30
    assert max(np.abs(a - after[0]).max() for a in after) == 0.0
    wait_for(lambda: robot.diag_values("executor")["estop"] == "true", 3, "e-stop diagnostic")
    robot.estop_pub.publish(Bool(data=False))
    t_release = time.monotonic()
    time.sleep(1.5)
    moving = _commands_between(robot, t_release + 0.3, t_release + 1.5)
    assert max(np.abs(a - moving[0]).max() for a in moving) > 0.0


def test_a_camera_that_stops_holds_the_arm_within_200_ms_and_is_reported(graph):
    robot, _, _ = graph
    robot.cameras["cam_wrist"] = False
    t_stop = time.monotonic()
    time.sleep(1.0)
    late = _commands_between(robot, t_stop + 0.2, t_stop + 1.0)
    assert len(late) > 30
    assert max(np.abs(a - late[0]).max() for a in late) == 0.0
    wait_for(lambda: robot.diag_values("inputs")["_level"] in ("2", "3"), 3, "stale camera")
    assert "cam_wrist" in robot.diag_values("inputs")["_message"]
    assert robot.diag_values("executor")["state"] == "watchdog_hold"
    robot.cameras["cam_wrist"] = True
    wait_for(lambda: robot.diag_values("executor")["state"] == "running", 5, "recovery")


def test_bad_inputs_crash_nothing_and_are_reported(graph):
    robot, proc, _ = graph
    robot.encoding["cam_high"] = "rgba8"  # unsupported encoding
    time.sleep(0.6)
    wait_for(
        lambda: "image.encoding" in robot.diag_values("inputs")["_message"],
        3,
        "encoding diagnostic",
    )
    robot.encoding["cam_high"] = "rgb8"
    robot.size["cam_high"] = (320, 100)  # odd size: resized, not refused
    robot.state_names = [*PIPER.joint_names[:5], "elbow_extra", "gripper"]  # joint6 missing
    time.sleep(0.6)
    wait_for(
        lambda: "missing joints" in robot.diag_values("inputs")["_message"],
        3,
        "joint name diagnostic",
    )
    robot.state_names = list(PIPER.joint_names)
    with robot.lock:
        saved = robot.positions.copy()
        robot.positions[2] = np.nan  # NaN joint value
    time.sleep(0.5)
    with robot.lock:
        robot.positions = saved
    bad = JointTrajectory()  # a NaN chunk from somewhere else
    bad.header.stamp = robot.get_clock().now().to_msg()
    bad.joint_names = list(PIPER.joint_names)
    point = JointTrajectoryPoint()
    point.positions = array.array("d", [float("nan")] * 7)
    point.time_from_start.nanosec = 20_000_000
    bad.points = [point]
    robot.chunk_pub.publish(bad)
    unknown = JointTrajectory()
    unknown.header.stamp = bad.header.stamp
    unknown.joint_names = ["shoulder", *PIPER.joint_names[1:]]
    unknown.points = [point]
    robot.chunk_pub.publish(unknown)
    time.sleep(0.5)
    robot.size["cam_high"] = (640, 480)
    assert alive(proc)
    wait_for(
        lambda: int(robot.diag_values("executor")["chunks_rejected"]) >= 2,
        3,
        "rejected chunks counted",
    )
    t0 = time.monotonic()
    wait_for(lambda: len(robot.since("action_chunk", t0)) >= 5, 10, "chunks again")
    cmds = _commands_between(robot, t0, time.monotonic())
    assert all(np.all(np.isfinite(c)) for c in cmds)


def _set_param(robot, node, name, value):
    client = robot.create_client(SetParameters, f"{node}/set_parameters")
    assert client.wait_for_service(timeout_sec=5)
    req = SetParameters.Request()
    req.parameters = [
        Parameter(
            name=name, value=ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)
        )
    ]
    future = client.call_async(req)
    wait_for(future.done, 5, f"set {name}")
    robot.destroy_client(client)
    return future.result().results[0]


def test_mode_switches_at_run_time_without_restart(graph):
    robot, proc, _ = graph
    assert not _set_param(robot, "/piper/vla", "mode", "turbo").successful
    assert _set_param(robot, "/piper/vla", "mode", "standard").successful
    t0 = time.monotonic()
    wait_for(
        lambda: robot.diag_values("inference")["effective_mode"] == "standard", 10, "standard mode"
    )
    wait_for(lambda: len(robot.since("value", t0)) > 3, 10, "value estimates")
    assert np.isfinite(robot.since("value", t0)[-1][1].data)
    assert _set_param(robot, "/piper/vla", "mode", "efficient").successful
    wait_for(
        lambda: robot.diag_values("inference")["effective_mode"] == "efficient",
        10,
        "efficient mode",
    )
    assert alive(proc)


def _consecutive_steps(samples):
    """Per-joint command steps between consecutive control periods (by header stamp)."""
    stamps = np.array([m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for _, m in samples])
    pos = np.stack([np.array(m.position) for _, m in samples])
    order = np.argsort(stamps)
    stamps, pos = stamps[order], pos[order]
    consecutive = np.diff(stamps) < 1.5 / 50.0
    return np.abs(np.diff(pos, axis=0))[consecutive]


def test_takeover_and_hand_back_through_the_documented_topics(graph):
    """HILR: an outside process takes over on intervention/engage, streams teleop commands,
    hands back; no command step at either boundary exceeds velocity limit x period, and the
    episode recorded meanwhile carries the intervention."""
    from sensor_msgs.msg import JointState
    from std_msgs.msg import String

    from tests.ros.fake_robot import LATCHED, RELIABLE

    robot, proc, _ = graph
    engage = robot.create_publisher(Bool, "intervention/engage", LATCHED)
    events = robot.create_publisher(String, "episode/event", RELIABLE)
    teleop = robot.create_publisher(JointState, "teleop/joint_command", 10)
    wait_for(
        lambda: events.get_subscription_count() > 0 and engage.get_subscription_count() > 0,
        10,
        "recorder and intervention subscribed",
    )
    events.publish(String(data="start"))
    wait_for(lambda: robot.diag_values("recorder")["recording"] == "true", 5, "recording")
    time.sleep(1.5)
    target = np.clip(
        MID + np.array([0.4, 0.3, -0.3, 0.2, 0.2, -0.3, 0.02]), PIPER.lower, PIPER.upper
    )
    t_engage = time.monotonic()
    engage.publish(Bool(data=True))
    end = t_engage + 2.5
    while time.monotonic() < end:  # the operator's arm, streaming at 50 Hz
        msg = JointState(name=list(PIPER.joint_names), position=list(target))
        msg.header.stamp = robot.get_clock().now().to_msg()
        teleop.publish(msg)
        time.sleep(0.02)
    t_release = time.monotonic()
    engage.publish(Bool(data=False))
    time.sleep(2.0)
    events.publish(String(data="success"))
    time.sleep(1.5)
    assert alive(proc)

    window = robot.since("joint_command", t_engage - 1.0)
    steps = _consecutive_steps(window)
    limit = PIPER.max_velocity / 50.0
    assert np.all(steps <= limit + 1e-6), (steps.max(axis=0), limit)
    during = [np.array(m.position) for t, m in window if t_engage + 2.0 <= t <= t_release]
    assert np.abs(during[-1] - target).max() < 0.05  # the arm went to the operator's command
    after = [np.array(m.position) for t, m in window if t >= t_release + 1.5]
    assert np.abs(after[-1] - after[0]).max() > 0  # and the policy moves it again
    ex = robot.diag_values("executor")
    assert int(ex["takeovers"]) >= 1 and ex["takeover"] == "false"

    # the recorded episode
    from gigabrain_runtime.hilr.episodes import read_episode
    from gigabrain_runtime.hilr.recording import read_sidecar

    (episode,) = [d for d in robot.record_dir.iterdir() if d.is_dir()]
    info = read_sidecar(episode)
    assert info.outcome == "success" and info.status == "complete"
    assert len(info.interventions) == 1
    iv = info.interventions[0]
    assert abs((iv["end_s"] - iv["start_s"]) - (t_release - t_engage)) < 0.4
    data = read_episode(episode)
    flags = [bool(m.data) for _, m in data["/piper/intervention/active"]]
    assert True in flags and flags[-1] is False  # latched state: on, then off
    on = next(t for t, m in data["/piper/intervention/active"] if m.data)
    off = next(t for t, m in data["/piper/intervention/active"] if t > on and not m.data)
    assert abs((off - on) * 1e-9 - (t_release - t_engage)) < 0.4
    cmds = data["/piper/joint_command"]
    rec_steps = np.abs(np.diff(np.stack([np.asarray(m.position) for _, m in cmds]), axis=0))
    assert np.all(rec_steps.max(axis=0) <= 2 * limit + 1e-6)  # smoothed commands were recorded
    assert len(data["/piper/joint_states"]) > 100 and len(data["/piper/action_chunk"]) > 10
    assert len(data["/piper/cameras/cam_high/image_raw"]) > 20
    robot.episode_dir = episode


def test_episode_tools_and_lerobot_export_round_trip(graph, tmp_path):
    import json

    import cv2
    import pyarrow.parquet as pq

    robot, _, _ = graph
    episode = robot.episode_dir

    def cli(*args):
        out = subprocess.run(
            [sys.executable, "-m", "gigabrain_runtime", "bag", *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    listing = cli("list", str(robot.record_dir))
    assert episode.name in listing and "success" in listing
    cli("label", str(episode), "failure")
    assert '"label": "failure"' in cli("info", str(episode))
    cli("plot", str(episode), "--out", str(tmp_path / "plot.png"))
    assert cv2.imread(str(tmp_path / "plot.png")) is not None
    out = tmp_path / "dataset"
    cli("export", str(robot.record_dir), "--format", "lerobot", "--out", str(out), "--fps", "25")
    info = json.loads((out / "meta/info.json").read_text())
    table = pq.read_table(out / "data/chunk-000/file-000.parquet").to_pydict()
    n = len(table["index"])
    assert info["total_frames"] == n and info["total_episodes"] == 1 and info["fps"] == 25
    assert {"observation.state", "action", "intervention", "timestamp"} <= set(table)
    assert len(table["action"][0]) == 7
    frames_in_takeover = sum(table["intervention"])
    assert 40 <= frames_in_takeover <= 85  # ~2.5 s at 25 fps
    cap = cv2.VideoCapture(str(out / "videos/observation.images.cam_high/chunk-000/file-000.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == n
    episodes = pq.read_table(out / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert episodes[0]["outcome"] == "failure" and episodes[0]["num_interventions"] == 1


def test_a_full_disk_stops_recording_and_never_disturbs_control(graph):
    from rcl_interfaces.msg import ParameterType
    from std_msgs.msg import String

    from tests.ros.fake_robot import RELIABLE

    robot, proc, _ = graph
    events = robot.create_publisher(String, "episode/event", RELIABLE)
    wait_for(lambda: events.get_subscription_count() > 0, 10, "recorder subscribed")
    events.publish(String(data="start"))
    wait_for(lambda: robot.diag_values("recorder")["recording"] == "true", 5, "recording")
    client = robot.create_client(SetParameters, "/piper/recorder/set_parameters")
    assert client.wait_for_service(timeout_sec=5)
    req = SetParameters.Request()
    req.parameters = [
        Parameter(
            name="min_free_mb",
            value=ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=1e12),
        )
    ]  # a quota nobody can meet
    t0 = time.monotonic()
    future = client.call_async(req)
    wait_for(future.done, 5, "set quota")
    wait_for(lambda: robot.diag_values("recorder")["_level"] == "2", 5, "recorder error")
    assert "recording stopped" in robot.diag_values("recorder")["_message"]
    time.sleep(2.0)
    assert 47.5 <= stamp_rate(robot.since("joint_command", t0)) <= 52.5  # control unaffected
    assert robot.diag_values("executor")["state"] == "running"
    assert alive(proc)
