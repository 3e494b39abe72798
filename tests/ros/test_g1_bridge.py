"""The G1 loop end to end: fake G1 (CycloneDDS) <-> g1_bridge <-> executor (ROS 2), real DDS.

The fake G1 runs in this process on a CycloneDDS domain of its own, loopback only; g1_bridge and
the executor run as the processes a user starts (``gigabrain-runtime node ...``) in /g1. Ramps
are shortened to 0.5 s to keep the module quick. The tests run in order, each leaving the loop
engaged (weight 1) for the next, and the last one stops the bridge.
"""

from __future__ import annotations

import array
import os
import signal
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("cyclonedds")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Bool  # noqa: E402
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint  # noqa: E402

from gigabrain_runtime.robots.embodiment import get_embodiment  # noqa: E402
from gigabrain_runtime.robots.g1.arm_sdk import ArmSdkConfig  # noqa: E402
from gigabrain_runtime.robots.g1.standin import FakeG1, FakeG1Config, format_summary  # noqa: E402
from tests.ros.fake_robot import LATCHED, OBSERVER, RELIABLE  # noqa: E402
from tests.ros.harness import ROOT, Graph, Inbox, median_period, wait_for  # noqa: E402

G1 = get_embodiment("g1")
RAMP_S = 0.5
# CycloneDDS on loopback only, unicast discovery: nothing leaves this machine
LOCALHOST_DDS = (
    '<CycloneDDS><Domain id="any"><General><Interfaces><NetworkInterface name="lo"/>'
    "</Interfaces><AllowMulticast>false</AllowMulticast></General><Discovery><Peers>"
    '<Peer address="127.0.0.1"/></Peers><ParticipantIndex>auto</ParticipantIndex>'
    "<MaxAutoParticipantIndex>30</MaxAutoParticipantIndex></Discovery></Domain></CycloneDDS>"
)


class Observer(Node, Inbox):
    """What a user's tools see on /g1: joint states, diagnostics; and the e-stop button."""

    def __init__(self) -> None:
        Node.__init__(self, "g1_observer", namespace="/g1")
        Inbox.__init__(self)
        self.create_subscription(
            JointState, "joint_states", self._rec("joint_states"), qos_profile_sensor_data
        )
        self.create_subscription(
            DiagnosticArray, "/diagnostics", self._rec("diagnostics"), OBSERVER
        )
        self.estop = self.create_publisher(Bool, "estop", LATCHED)
        self.chunks = self.create_publisher(JointTrajectory, "action_chunk", RELIABLE)
        self.commands = self.create_publisher(JointState, "joint_command", RELIABLE)

    @property
    def states(self) -> list[JointState]:
        return self.msgs("joint_states")

    def bridge(self, since: float, where=lambda d: True) -> dict[str, str]:  # noqa: ANN001
        """A g1_bridge diagnostic sent after ``since`` that satisfies ``where``."""
        return self.diag("g1_bridge", since=since, where=where)

    def chunk(self, target: np.ndarray) -> JointTrajectory:
        msg = JointTrajectory()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.joint_names = list(G1.joint_names)
        points = []
        for i in range(50):
            p = JointTrajectoryPoint()
            p.positions = array.array("d", target)
            p.time_from_start.nanosec = int((i + 1) * 20_000_000) % 1_000_000_000
            p.time_from_start.sec = ((i + 1) * 20) // 1000
            points.append(p)
        msg.points = points
        return msg


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    base = tmp_path_factory.mktemp("g1")
    g = Graph()
    dds_domain = 100 + g.domain  # the robot's DDS domain: never one a ROS test uses
    old_uri = os.environ.get("CYCLONEDDS_URI")
    os.environ["CYCLONEDDS_URI"] = LOCALHOST_DDS
    interface = replace(ArmSdkConfig.load(), ramp_in_s=RAMP_S, ramp_out_s=RAMP_S)
    fake = FakeG1(FakeG1Config(domain_id=dds_domain, corrupt_crc_every=100), interface=interface)
    fake.start()
    bridge_log, executor_log = base / "bridge.log", base / "executor.log"
    try:
        bridge = g.launch(
            ["node", "g1_bridge", "--ros-args", "-r", "__ns:=/g1",
             "-p", f"dds_domain:={dds_domain}",
             "-p", f"ramp_in_s:={RAMP_S}", "-p", f"ramp_out_s:={RAMP_S}"],
            bridge_log,
        )  # fmt: skip
        executor = g.launch(
            ["node", "executor", "--ros-args", "-r", "__ns:=/g1", "-p", "robot:=g1"], executor_log
        )
        observer = g.spin(Observer())
        wait_for(lambda: fake.weight >= 1.0, 60, "the arm_sdk weight to reach 1", bridge_log)
        yield SimpleNamespace(
            fake=fake, bridge=bridge, executor=executor, observer=observer, log=bridge_log
        )
    finally:
        print(format_summary(fake.summary()))
        g.close()
        fake.stop()
        if old_uri is None:
            os.environ.pop("CYCLONEDDS_URI", None)
        else:
            os.environ["CYCLONEDDS_URI"] = old_uri


def test_g1_launch_file_starts_the_bridge_beside_the_runtime():
    from gigabrain_runtime.launching.launch_file import load_launch
    from gigabrain_runtime.launching.runner import node_command

    nodes = load_launch(ROOT / "launch/g1.launch.yaml", {"network_interface": "eth0"})
    assert [n.fqn for n in nodes] == [
        f"/g1/{n}" for n in ("g1_bridge", "vla", "executor", "intervention", "recorder")
    ]
    assert nodes[0].params["network_interface"] == "eth0" and nodes[0].params["dds_domain"] == 0
    for n in nodes:
        node_command(n, Path("/tmp"))  # every node resolves to a runnable command


def since(fake, t0):
    return [(t, w, q) for t, w, q in fake.trace() if t >= t0]


def assert_no_violations(fake):
    s = fake.summary()
    assert s["violations"] == 0 and s["crc_failures"] == 0, s["first_violations"]


def _at_zero(fake, t0) -> bool:
    """The weight has reached 0, and the trace holds the message that says so."""
    trace = since(fake, t0)
    return fake.weight == 0.0 and bool(trace) and trace[-1][1] == 0.0


def assert_ramped_out_holding(fake, t0):
    """From t0: the weight fell to 0 no faster than the ramp allows, holding one position."""
    trace = since(fake, t0)
    weights = np.array([w for _, w, _ in trace])
    assert weights[-1] == 0.0
    ramping = [(t, w, q) for t, w, q in trace if 0.0 < w < 1.0]
    assert ramping, "the weight never passed through (0, 1)"
    held = np.array([q for _, _, q in ramping])
    assert np.allclose(held, held[0], atol=1e-6)
    start = next(t for t, w, _ in trace if w < 1.0)
    end = next(t for t, w, _ in trace if w == 0.0)
    assert end - start >= 0.9 * RAMP_S  # the slope bound, seen end to end
    assert_no_violations(fake)


def test_arm_sdk_streams_at_50_hz_and_ramps_in_at_the_configured_slope(loop):
    fake = loop.fake
    t0 = time.monotonic()
    trace = wait_for(lambda: got if len(got := since(fake, t0)) >= 100 else None, 20, "arm_sdk")
    assert 0.018 <= median_period([t for t, _, _ in trace]) <= 0.022  # 50 Hz
    s = fake.summary()
    assert s["ramp_in_s"] >= 0.9 * RAMP_S
    assert s["max_weight_step_up"] <= s["allowed_weight_step_up"]
    assert_no_violations(fake)
    d = loop.observer.bridge(since=t0)
    assert d["state"] == "active" and float(d["weight"]) == 1.0
    assert d["arm_sdk_subscribers"] == "1"  # the fake robot's reader


def test_joint_states_and_commands_reach_the_right_motors(loop):
    fake, obs = loop.fake, loop.observer
    obs.wait_count("joint_states", 10)
    state = obs.states[-1]
    assert list(state.name) == list(G1.joint_names)
    np.testing.assert_allclose(state.position, fake.arm_positions(), atol=0.01)
    start = np.array(state.position)
    moved = {"left_elbow_joint": 0.3, "right_wrist_yaw_joint": -0.2, "waist_yaw_joint": 0.1}
    target = start.copy()
    for name, delta in moved.items():
        target[G1.joint_names.index(name)] += delta

    def reached():
        obs.chunks.publish(obs.chunk(target))
        return np.allclose(fake.arm_positions(), target, atol=0.02)

    wait_for(reached, 15, "the fake G1's motors to reach the chunk's target", loop.log)
    # and the bridge reports them under the same names
    wait_for(
        lambda: np.allclose(obs.states[-1].position, target, atol=0.02), 5, "joint_states to follow"
    )
    assert_no_violations(fake)


def test_invalid_commands_and_corrupt_lowstate_are_dropped_and_reported(loop):
    fake, obs = loop.fake, loop.observer
    short = JointState(name=list(G1.joint_names[:-1]), position=[0.0] * (G1.dof - 1))
    beyond = JointState(name=list(G1.joint_names), position=list(obs.states[-1].position))
    beyond.position[G1.joint_names.index("left_elbow_joint")] = 3.0  # limit 2.09 rad
    t0 = time.monotonic()
    for _ in range(3):
        obs.commands.publish(short)
        obs.commands.publish(beyond)

    def reported(d: dict[str, str]) -> bool:
        return (
            int(d.get("commands_invalid_names", 0)) >= 1
            and int(d.get("commands_invalid_limits", 0)) >= 1
            and int(d.get("lowstate_crc_failures", 0)) >= 1  # the fake corrupts 1 in 100
        )

    d = obs.bridge(since=t0, where=reported)
    assert "left_elbow_joint" in d["last_invalid_command"]
    assert fake.weight == 1.0  # the executor's valid stream kept the arms engaged
    assert_no_violations(fake)  # nothing beyond a limit reached the robot


def test_estop_ramps_out_holding_position_and_release_ramps_back_in(loop):
    fake, obs = loop.fake, loop.observer
    t0 = time.monotonic()
    obs.estop.publish(Bool(data=True))
    try:
        wait_for(lambda: _at_zero(fake, t0), 10, "the e-stop ramp-out", loop.log)
        assert_ramped_out_holding(fake, t0)
        d = obs.bridge(since=t0, where=lambda d: d.get("reason") == "e-stop engaged")
        assert d["ramp_outs_estop"] == "1"
    finally:
        obs.estop.publish(Bool(data=False))
    wait_for(lambda: fake.weight == 1.0, 10, "the ramp back in after release", loop.log)
    assert_no_violations(fake)


def test_losing_the_executor_ramps_out_and_its_return_ramps_back_in(loop):
    fake = loop.fake
    t0 = time.monotonic()
    os.kill(loop.executor.pid, signal.SIGSTOP)  # a hung executor: no more joint_command
    try:
        wait_for(lambda: _at_zero(fake, t0), 10, "the command-loss ramp-out", loop.log)
    finally:
        os.kill(loop.executor.pid, signal.SIGCONT)
    assert_ramped_out_holding(fake, t0)
    wait_for(lambda: fake.weight == 1.0, 15, "the ramp back in once commands return", loop.log)
    assert_no_violations(fake)


def test_sigint_ramps_the_weight_out_before_the_bridge_exits(loop):
    fake = loop.fake
    assert fake.weight == 1.0
    t0 = time.monotonic()
    loop.bridge.send_signal(signal.SIGINT)
    assert loop.bridge.wait(timeout=15) == 0, loop.log.read_text()[-3000:]
    exited = time.monotonic()
    assert_ramped_out_holding(fake, t0)
    n = len(fake.trace())
    time.sleep(0.3)
    assert len(fake.trace()) == n  # silence after the final weight-0 messages
    assert since(fake, t0)[-1][0] <= exited
