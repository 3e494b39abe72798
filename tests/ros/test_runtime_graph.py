"""The vla + executor graph as an outside ROS 2 process sees it (real DDS on loopback).

One graph is launched for the module through ``gigabrain-runtime launch
launch/runtime.launch.yaml`` - exactly what a user runs - and a fake robot in this process
publishes 640x480 rgb8 cameras at 15 Hz and joint states at 100 Hz. Every change a test makes
to the graph is undone in ``finally``, so one failure does not fail the tests after it. Tests
wait for events (fresh diagnostics, counts of messages) and judge timing by the senders' stamps.
"""

from __future__ import annotations

import array
import re
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Bool, Int32, String  # noqa: E402
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint  # noqa: E402

from gigabrain_runtime.robots.embodiment import get_embodiment  # noqa: E402
from tests.conformance.jtc_rules import Follower, validate_trajectory_msg  # noqa: E402
from tests.ros.fake_robot import LATCHED, RELIABLE, FakeRobot  # noqa: E402
from tests.ros.harness import (  # noqa: E402
    ROOT,
    graph,
    median_period,
    ros_now_s,
    stamp_rate,
    stamp_s,
    wait_for,
)

PIPER = get_embodiment("piper")
MID = (PIPER.lower + PIPER.upper) / 2
CONTROLLER_TOPICS = tuple(c.topic_name for c in PIPER.controllers)
RECORDED: dict[str, object] = {}  # the takeover test's episode, for the episode-tools test


@pytest.fixture(scope="module")
def runtime(tiny_engine, tmp_path_factory):
    base = tmp_path_factory.mktemp("graph")
    log = base / "launch.log"
    record_dir = base / "recordings"
    with graph() as g:
        proc = g.launch(
            [
                "launch",
                str(ROOT / "launch/runtime.launch.yaml"),
                "robot:=piper",
                f"engine:={tiny_engine}",
                f"record_dir:={record_dir}",
                "controller_output:=true",
                # real-time chunking through the whole graph (the demo and the graph
                # evaluation run the default, crossfade)
                "execution:=rtc",
                "inference_hz:=10.0",  # the machinery at a fast rate (the default is 2 Hz)
            ],
            log,
        )
        robot = FakeRobot(
            "/piper",
            PIPER.cameras,
            PIPER.joint_names,
            positions=MID,
            controllers=CONTROLLER_TOPICS,
        )
        robot.create_subscription(
            Int32, "execution/delay_steps", robot._rec("delay_steps"), RELIABLE
        )
        g.spin(robot, on_close=robot.stop)
        robot.wait_count("action_chunk", 5, timeout=90, log=log)
        yield SimpleNamespace(robot=robot, proc=proc, log=log, record_dir=record_dir)


def alive(proc):
    return proc.poll() is None


def _commands_stamped_after(robot, t_ros: float, n: int, timeout: float = 20.0) -> np.ndarray:
    """Wait for ``n`` joint commands the executor stamped at or after ROS time ``t_ros``; their
    positions in stamp order."""

    def got():
        cmds = sorted(
            (stamp_s(m), tuple(m.position))
            for m in robot.msgs("joint_command")
            if stamp_s(m) >= t_ros
        )
        return cmds if len(cmds) >= n else None

    return np.array([q for _, q in wait_for(got, timeout, f"{n} commands")])


def test_chunks_at_inference_hz_and_commands_at_control_hz(runtime):
    robot = runtime.robot
    t0 = time.monotonic()
    chunks = robot.wait_count("action_chunk", 40, since=t0, timeout=60)
    commands = robot.wait_count("joint_command", 250, since=t0, timeout=60)
    assert 0.09 <= median_period([t for t, _ in chunks]) <= 0.11  # inference_hz 10
    stamps = [stamp_s(m) for _, m in commands]
    assert 0.019 <= median_period(stamps) <= 0.021  # control_hz 50, by the executor's stamps
    assert stamp_rate(commands) <= 50.5  # and never faster, over the whole window


def test_chunk_message_layout(runtime):
    _, msg = runtime.robot.since("action_chunk", 0)[-1]
    assert list(msg.joint_names) == list(PIPER.joint_names)
    assert len(msg.points) == 50
    tfs = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points]
    np.testing.assert_allclose(tfs, (np.arange(50) + 1) / 50.0, atol=1e-6)
    pos = np.array([p.positions for p in msg.points])
    vel = np.array([p.velocities for p in msg.points])
    np.testing.assert_allclose(vel[1:], np.diff(pos, axis=0) * 50.0, atol=1e-6)
    assert abs(time.time() - stamp_s(msg)) < 5.0  # a real ROS time, not zero


def test_diagnostics_report_rates_latency_and_state(runtime):
    robot, t0 = runtime.robot, time.monotonic()
    inf = robot.diag("inference", since=t0)
    assert float(inf["latency_p50_ms"]) > 0 and inf["mode"] == "efficient"
    ex = robot.diag("executor", since=t0)
    assert ex["state"] == "running" and ex["estop"] == "false"
    # the input rates the vla measures: 15 Hz cameras, 100 Hz joint states
    robot.diag(
        "inputs",
        since=t0,
        where=lambda d: (
            12.0 <= float(d["cam_high_hz"]) <= 18.0 and 80.0 <= float(d["joint_states_hz"]) <= 120.0
        ),
        timeout=20,
    )


def test_rtc_guides_chunks_by_the_delay_the_executor_measured(runtime):
    """The executor reports, per chunk taking over a running plan, the control periods that
    plan ran between the chunk's observation and its arrival; the vla guides every chunk after
    the first by the last one, with the delay taken from those reports."""
    robot, t0 = runtime.robot, time.monotonic()
    delays = [m.data for _, m in robot.wait_count("delay_steps", 10, since=t0)]
    # control periods of 20 ms the plan ran: never negative, and never past the open-loop limit
    # (1 s: an older chunk is refused). How many, within that, is the machine's load.
    assert all(0 <= d <= 50 for d in delays), delays
    inf = robot.diag(
        "inference", since=t0, where=lambda d: int(d["delays_measured"]) >= 5, timeout=20
    )
    assert inf["execution"] == "rtc"
    assert int(inf["guided_chunks"]) >= int(inf["chunks"]) - 5 > 0
    # the vla freezes the largest of its last few reports, which may predate t0 on a busy
    # machine (reports come once per chunk): compared with every report this observer got
    assert int(inf["delay_steps"]) <= max(m.data for m in robot.msgs("delay_steps"))


def test_estop_freezes_within_one_control_period_and_holds_until_released(runtime):
    robot = runtime.robot
    engaged = ros_now_s(robot)
    robot.estop_pub.publish(Bool(data=True))
    try:
        # one control period (20 ms) plus delivery of the e-stop; then nothing moves
        frozen = _commands_stamped_after(robot, engaged + 0.06, 40)
        assert np.abs(frozen - frozen[0]).max() == 0.0
        robot.diag("executor", since=time.monotonic(), where=lambda d: d["estop"] == "true")
    finally:
        released = ros_now_s(robot)
        robot.estop_pub.publish(Bool(data=False))
    wait_for(
        lambda: np.abs(np.diff(_commands_stamped_after(robot, released, 2), axis=0)).max() > 0,
        20,
        "the arm to move again after the release",
    )


def _stamped(samples) -> tuple[np.ndarray, np.ndarray]:
    """(stamps, positions) of joint commands, in stamp order."""
    stamps = np.array([stamp_s(m) for _, m in samples])
    pos = np.stack([np.array(m.position) for _, m in samples])
    order = np.argsort(stamps)
    return stamps[order], pos[order]


def test_a_camera_that_stops_ends_in_a_smooth_stop_and_an_error_naming_it(runtime):
    """One camera stops: no chunk from its stale frames; the arm follows at most
    max_open_loop_s of its plan and comes to rest within its velocity and acceleration
    limits (no brake harder than the joints); an ERROR names the camera once it has been gone
    input_timeout_s (0.4 s); motion resumes when its frames return."""
    robot = runtime.robot
    t0 = time.monotonic()
    robot.cameras["cam_wrist"] = False
    stopped = ros_now_s(robot)  # no cam_wrist frame is stamped after this
    try:

        def first_error():
            gone = [d for d in robot.statuses("inputs", t0) if "cam_wrist: gone" in d["_message"]]
            return gone[0] if gone else None

        inputs = wait_for(first_error, 10, "an ERROR naming cam_wrist")
        assert inputs["_level"] == "2"
        age = float(re.search(r"cam_wrist: gone \(nothing for ([0-9.]+) s", inputs["_message"])[1])
        assert 0.4 <= age < 0.5, inputs["_message"]  # reported as it happened, not a second on
        rest = _commands_stamped_after(robot, stopped + 1.3, 25)
        assert np.abs(rest - rest[0]).max() == 0.0  # at rest and holding
        executor = robot.diag("executor", since=t0, where=lambda d: d["state"] != "running")
        assert executor["state"] in ("watchdog_hold", "open_loop_limit"), executor
        chunks = [m for _, m in robot.since("action_chunk", t0) if len(m.points) > 1]
        late = [stamp_s(m) - stopped for m in chunks if stamp_s(m) > stopped + 0.4]
        assert late == [], late  # nothing computed after cam_wrist's frames aged out
        samples = [
            (t, m)
            for t, m in robot.since("joint_command", t0 - 1.0)
            if stopped - 0.3 <= stamp_s(m) <= stopped + 1.3
        ]
    finally:
        robot.cameras["cam_wrist"] = True
    stamps, pos = _stamped(samples)
    period = 1.0 / 50.0  # the executor computes each command one control period on
    vel = np.diff(pos, axis=0) / period
    # accelerations over three commands of consecutive periods (by stamp: the observer may
    # miss some on a busy machine)
    consecutive = np.diff(stamps) < 1.5 * period
    triple = consecutive[:-1] & consecutive[1:]
    acc = np.abs(np.diff(vel, axis=0))[triple] / period
    assert triple.sum() >= 30, triple.sum()
    assert np.all(acc <= PIPER.max_acceleration + 1e-6), acc.max(axis=0)
    moving_until = stamps[np.nonzero(np.any(np.abs(vel) > 0, axis=1))[0].max() + 1]
    assert moving_until <= stopped + 0.5 + 0.65  # open loop, then <= 3 rad/s at 5 rad/s^2
    robot.diag("executor", since=time.monotonic(), where=lambda d: d["state"] == "running")


def test_controller_trajectories_pass_jtc_validation_and_the_stop_is_honoured(runtime):
    """controller_output: every trajectory the vla sends the arm and gripper controllers is
    one joint_trajectory_controller accepts with its default (jazzy/kilted) parameters; when an
    input goes, the last one brings the controller's reference to rest within the joint
    limits (a stop JTC honours, not an empty trajectory it would refuse)."""
    robot = runtime.robot
    t0 = time.monotonic()
    for topic in CONTROLLER_TOPICS:
        robot.wait_count(topic, 20, since=t0, timeout=60)

    # a stop is the braking path (at most 0.6 s of points at 50 Hz), a chunk is the rest of
    # 50 points plus its tail
    def stop_of(topic: str, after: float):
        got = [(t, m) for t, m in robot.since(topic, after) if len(m.points) <= 31]
        return got[0] if got else None

    robot.cameras["cam_wrist"] = False
    off = time.monotonic()
    try:
        stops = {
            t: wait_for(lambda t=t: stop_of(t, off), 10, f"the stop on {t}")
            for t in CONTROLLER_TOPICS
        }
    finally:
        robot.cameras["cam_wrist"] = True
    for spec in PIPER.controllers:
        stop_at, stop = stops[spec.topic_name]
        received = [(t, m) for t, m in robot.since(spec.topic_name, 0) if t <= stop_at]
        assert received[-1][1] is stop  # nothing after the stop while the camera was gone
        joints = spec.output_names
        refused = [
            (i, err)
            for i, (_, m) in enumerate(received)
            if (err := validate_trajectory_msg(m, joints, now_s=time.time())) is not None
        ]
        assert refused == [], refused[:3]
        assert all(stamp_s(m) == 0.0 for _, m in received)  # "start now" on the controller
        # replay what this controller would do with them, in arrival order
        jtc = Follower(joints)
        state = None
        samples = []
        arrivals = [t for t, _ in received if t >= t0]
        msgs = [m for t, m in received if t >= t0]
        end = arrivals[-1] + 1.0
        k = 0
        for t in np.arange(arrivals[0], end, 0.005):
            while k < len(msgs) and arrivals[k] <= t:
                if state is None:
                    state = (np.array(msgs[k].points[0].positions), np.zeros(len(joints)))
                assert jtc.receive(msgs[k], arrivals[k], state)
                k += 1
            state = jtc.sample(t)
            samples.append((t, *state))
        # the stop itself: no joint decelerates harder than its limit (in the controller's
        # units), and it ends at rest
        vel = np.array([p.velocities for p in stop.points])
        times = np.array(
            [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in stop.points]
        )
        limits = PIPER.max_acceleration[[PIPER.joint_names.index(j) for j in spec.joints]]
        acc = np.abs(np.diff(vel, axis=0)) / np.diff(times)[:, None]
        assert np.all(acc <= limits * spec.output_scale * (1 + 1e-6)), acc.max(axis=0)
        assert np.all(vel[-1] == 0.0)
        at_rest = [t for t, _, v in samples if t > arrivals[-1] and np.all(np.abs(v) < 1e-9)]
        assert at_rest and at_rest[0] - arrivals[-1] <= 0.7, "the stop did not bring it to rest"
    robot.diag("executor", since=time.monotonic(), where=lambda d: d["state"] == "running")


def _bad_chunks(robot) -> tuple[JointTrajectory, JointTrajectory]:
    point = JointTrajectoryPoint()
    point.positions = array.array("d", [float("nan")] * 7)
    point.time_from_start.nanosec = 20_000_000
    nan = JointTrajectory()  # a NaN chunk from somewhere else
    nan.header.stamp = robot.get_clock().now().to_msg()
    nan.joint_names = list(PIPER.joint_names)
    nan.points = [point]
    unknown = JointTrajectory()  # a chunk for joints this robot does not have
    unknown.header.stamp = nan.header.stamp
    unknown.joint_names = ["shoulder", *PIPER.joint_names[1:]]
    unknown.points = [point]
    return nan, unknown


def test_bad_inputs_crash_nothing_and_are_reported(runtime):
    robot, proc = runtime.robot, runtime.proc
    try:
        t0 = time.monotonic()
        robot.encoding["cam_high"] = "rgba8"  # unsupported encoding
        robot.diag("inputs", since=t0, where=lambda d: "image.encoding" in d["_message"])
        robot.encoding["cam_high"] = "rgb8"
        robot.size["cam_high"] = (320, 100)  # odd size: resized, not refused
        robot.state_names = [*PIPER.joint_names[:5], "elbow_extra", "gripper"]  # joint6 missing
        t0 = time.monotonic()
        robot.diag("inputs", since=t0, where=lambda d: "missing joints" in d["_message"])
        robot.state_names = list(PIPER.joint_names)
        with robot.lock:
            saved = robot.positions.copy()
            robot.positions[2] = np.nan  # NaN joint value, for 20 joint states
            n = robot.states_published
        wait_for(lambda: robot.states_published >= n + 20, 10, "NaN joint states sent")
        with robot.lock:
            robot.positions = saved
        rejected = int(robot.diag("executor", since=time.monotonic())["chunks_rejected"])
        for chunk in _bad_chunks(robot):
            robot.chunk_pub.publish(chunk)
        robot.diag(
            "executor",
            since=time.monotonic(),
            where=lambda d: int(d["chunks_rejected"]) >= rejected + 2,
        )
    finally:
        robot.encoding["cam_high"] = "rgb8"
        robot.size["cam_high"] = (640, 480)
        robot.state_names = list(PIPER.joint_names)
        with robot.lock:
            robot.positions = np.where(np.isfinite(robot.positions), robot.positions, MID)
    assert alive(proc)
    t0 = time.monotonic()
    robot.wait_count("action_chunk", 5, since=t0, timeout=20)
    cmds = [np.array(m.position) for m in robot.msgs("joint_command", t0)]
    assert cmds and all(np.all(np.isfinite(c)) for c in cmds)


def test_joint_states_far_outside_the_limits_are_refused_by_vla_and_executor(runtime):
    robot, proc = runtime.robot, runtime.proc
    t0 = time.monotonic()
    logged_before = runtime.log.stat().st_size  # (earlier tests stopped the arm too)
    try:
        with robot.lock:
            robot.follow_commands = False  # a robot whose joint3 reads 50 rad, whatever it is sent
            robot.positions[2] = 50.0
        named = "joint_states: joint3=50.0000 outside"
        vla = robot.diag("inputs", since=t0, where=lambda d: named in d["_message"])
        ex = robot.diag("executor", since=t0, where=lambda d: named in d["_message"])
        assert vla["_level"] == "2" and ex["_level"] == "2"  # ERROR, naming the joint
        t1 = time.monotonic()
        robot.diag("executor", since=t1, where=lambda d: d["state"] == "watchdog_hold")
    finally:
        with robot.lock:
            robot.positions = MID.copy()
            robot.follow_commands = True
    cmds = np.array([m.position for m in robot.msgs("joint_command", t0)])
    assert np.all(cmds >= PIPER.lower - 1e-6) and np.all(cmds <= PIPER.upper + 1e-6)
    assert alive(proc)
    robot.wait_count("action_chunk", 5, since=time.monotonic(), timeout=20)  # running again

    # the stop and the return are in the node's log, with the reason
    def since() -> str:
        return runtime.log.read_bytes()[logged_before:].decode(errors="replace")

    # by whichever saw it first: the executor (its state ages, the bad one refused) or the VLA
    # node (it refuses the state and asks the arm to stop; the executor then stays stopped)
    reasons = ("joint state is", "the policy asked to stop (an input is gone or invalid)")
    wait_for(
        lambda: any(f"stopping (watchdog_hold): {r}" in since() for r in reasons),
        10,
        "the stop logged",
    )
    wait_for(lambda: "running again after" in since(), 10, "the resume logged")


_CLIENTS: dict[tuple[int, str], object] = {}


def _set_param(robot, node, name, value):
    # one client per service for the module's life: destroying one under the spinning
    # executor races it (see harness.Spinner)
    key = (id(robot), node)
    if key not in _CLIENTS:
        _CLIENTS[key] = robot.create_client(SetParameters, f"{node}/set_parameters")
    client = _CLIENTS[key]
    assert client.wait_for_service(timeout_sec=10)
    if isinstance(value, str):
        pv = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)
    else:
        pv = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=float(value))
    req = SetParameters.Request()
    req.parameters = [Parameter(name=name, value=pv)]
    future = client.call_async(req)
    wait_for(future.done, 10, f"set {name}")
    return future.result().results[0]


def test_mode_switches_at_run_time_without_restart(runtime):
    robot, proc = runtime.robot, runtime.proc
    assert not _set_param(robot, "/piper/vla", "mode", "turbo").successful
    try:
        t0 = time.monotonic()
        assert _set_param(robot, "/piper/vla", "mode", "standard").successful
        robot.diag("inference", since=t0, where=lambda d: d["effective_mode"] == "standard")
        values = robot.wait_count("value", 4, since=t0, timeout=20)
        assert np.isfinite(values[-1][1].data)
    finally:
        t1 = time.monotonic()
        assert _set_param(robot, "/piper/vla", "mode", "efficient").successful
    robot.diag("inference", since=t1, where=lambda d: d["effective_mode"] == "efficient")
    assert alive(proc)


def _consecutive_steps(samples):
    """Per-joint command steps between consecutive control periods (by header stamp)."""
    stamps, pos = _stamped(samples)
    consecutive = np.diff(stamps) < 1.5 / 50.0
    return np.abs(np.diff(pos, axis=0))[consecutive]


def test_takeover_and_hand_back_through_the_documented_topics(runtime):
    """HILR: an outside process takes over on intervention/engage, streams teleop commands
    until the arm is there, hands back; no command step at either boundary exceeds velocity
    limit x period, and the episode recorded meanwhile carries the intervention."""
    from gigabrain_runtime.hilr.episodes import read_episode
    from gigabrain_runtime.hilr.recording import read_sidecar

    robot, proc = runtime.robot, runtime.proc
    engage = robot.create_publisher(Bool, "intervention/engage", LATCHED)
    events = robot.create_publisher(String, "episode/event", RELIABLE)
    teleop = robot.create_publisher(JointState, "teleop/joint_command", 10)
    wait_for(
        lambda: events.get_subscription_count() > 0 and engage.get_subscription_count() > 0,
        10,
        "recorder and intervention subscribed",
    )
    before = {d for d in runtime.record_dir.iterdir()} if runtime.record_dir.exists() else set()
    t0 = time.monotonic()
    events.publish(String(data="start"))
    robot.diag("recorder", since=t0, where=lambda d: d["recording"] == "true")
    robot.wait_count("action_chunk", 10, since=t0)  # the policy's part of the episode
    target = np.clip(
        MID + np.array([0.4, 0.3, -0.3, 0.2, 0.2, -0.3, 0.02]), PIPER.lower, PIPER.upper
    )
    t_engage = time.monotonic()
    engage.publish(Bool(data=True))
    try:
        deadline = t_engage + 30.0
        arrived = None
        # the operator's arm, streaming at 50 Hz until the commands have brought the arm there
        while time.monotonic() < deadline:
            msg = JointState(name=list(PIPER.joint_names), position=list(target))
            msg.header.stamp = robot.get_clock().now().to_msg()
            teleop.publish(msg)
            last = robot.since("joint_command", t_engage)
            if last and np.abs(np.array(last[-1][1].position) - target).max() < 0.05:
                arrived = arrived or time.monotonic()
                if time.monotonic() - arrived > 0.5:  # held there for a while
                    break
            time.sleep(0.02)
        assert arrived, "the arm never reached the operator's command"
    finally:
        t_release = time.monotonic()
        engage.publish(Bool(data=False))
    released = ros_now_s(robot)
    wait_for(
        lambda: (
            np.abs(np.diff(_commands_stamped_after(robot, released + 0.5, 2), axis=0)).max() > 0
        ),
        20,
        "the policy to move the arm again",
    )
    robot.wait_count("joint_command", 50, since=t_release)
    t_end = time.monotonic()
    events.publish(String(data="success"))
    robot.diag("recorder", since=t_end, where=lambda d: d["recording"] == "false")
    assert alive(proc)

    window = robot.since("joint_command", t_engage - 1.0)
    steps = _consecutive_steps(window)
    limit = PIPER.max_velocity / 50.0
    assert np.all(steps <= limit + 1e-6), (steps.max(axis=0), limit)
    ex = robot.diag("executor", since=t_end)
    assert int(ex["takeovers"]) >= 1 and ex["takeover"] == "false"

    # the recorded episode
    (episode,) = [d for d in runtime.record_dir.iterdir() if d.is_dir() and d not in before]
    info = wait_for(
        lambda: info if (info := read_sidecar(episode)).status == "complete" else None,
        20,
        "the episode to be closed",
    )
    assert info.outcome == "success"
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
    # smoothed commands were recorded: consecutive periods (by stamp; a recorder behind on a
    # busy machine may miss some) never step more than the velocity limit allows
    rec_steps = _consecutive_steps(cmds)
    assert len(rec_steps) > 100 and np.all(rec_steps <= limit + 1e-6), rec_steps.max(axis=0)
    assert len(data["/piper/joint_states"]) > 100 and len(data["/piper/action_chunk"]) > 10
    assert len(data["/piper/cameras/cam_high/image_raw"]) > 20
    RECORDED["takeover"] = (episode, t_release - t_engage)


def test_episode_tools_and_lerobot_export_round_trip(runtime, tmp_path):
    import json

    import cv2
    import pyarrow.parquet as pq

    assert "takeover" in RECORDED, "the takeover test recorded no episode"
    episode, takeover_s = RECORDED["takeover"]
    record_dir = runtime.record_dir

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

    listing = cli("list", str(record_dir))
    assert episode.name in listing and "success" in listing
    cli("label", str(episode), "failure")
    assert '"label": "failure"' in cli("info", str(episode))
    cli("plot", str(episode), "--out", str(tmp_path / "plot.png"))
    assert cv2.imread(str(tmp_path / "plot.png")) is not None
    out = tmp_path / "dataset"
    cli("export", str(record_dir), "--format", "lerobot", "--out", str(out), "--fps", "25")
    info = json.loads((out / "meta/info.json").read_text())
    table = pq.read_table(out / "data/chunk-000/file-000.parquet").to_pydict()
    n = len(table["index"])
    assert info["total_frames"] == n and info["total_episodes"] == 1 and info["fps"] == 25
    assert {"observation.state", "action", "intervention", "timestamp"} <= set(table)
    assert len(table["action"][0]) == 7
    frames_in_takeover = sum(table["intervention"])
    assert abs(frames_in_takeover - 25 * takeover_s) <= 0.4 * 25 + 2  # as long as it lasted
    import av

    with av.open(str(out / "videos/observation.images.cam_high/chunk-000/file-000.mp4")) as video:
        assert sum(1 for _ in video.decode(video=0)) == n
    assert info["features"]["observation.state"]["names"] == list(PIPER.joint_names)
    episodes = pq.read_table(out / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert episodes[0]["outcome"] == "failure" and episodes[0]["num_interventions"] == 1


def test_a_full_disk_stops_recording_and_never_disturbs_control(runtime):
    robot, proc = runtime.robot, runtime.proc
    events = robot.create_publisher(String, "episode/event", RELIABLE)
    wait_for(lambda: events.get_subscription_count() > 0, 10, "recorder subscribed")
    t0 = time.monotonic()
    events.publish(String(data="start"))
    robot.diag("recorder", since=t0, where=lambda d: d["recording"] == "true")
    try:
        t1, quota_set = time.monotonic(), ros_now_s(robot)
        assert _set_param(robot, "/piper/recorder", "min_free_mb", 1e12).successful  # too much
        err = robot.diag("recorder", since=t1, where=lambda d: d["_level"] == "2")
        assert "recording stopped" in err["_message"]
        # control unaffected: 50 Hz by the executor's stamps, still running the policy
        commands = _commands_stamped_after(robot, quota_set, 100)
        assert np.all(np.isfinite(commands))
        stamps = sorted(stamp_s(m) for m in robot.msgs("joint_command") if stamp_s(m) >= quota_set)
        assert 0.019 <= median_period(stamps) <= 0.021
        robot.diag("executor", since=t1, where=lambda d: d["state"] == "running")
    finally:
        _set_param(robot, "/piper/recorder", "min_free_mb", 200.0)
    assert alive(proc)
