"""The sim node's task on the graph, as eval and the operator use it: a seeded start,
``task/objects``, ``task/success`` from the detector, ``task/reset``. The test drives the arm
itself, on ``joint_command``, with the scripted expert planned from ``task/objects``."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from geometry_msgs.msg import PoseArray  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Bool, Int32  # noqa: E402

from gigabrain_runtime.robots.embodiment import get_embodiment  # noqa: E402
from gigabrain_runtime.ros.convert import joint_command  # noqa: E402
from gigabrain_runtime.sim.expert import ExpertOperator, pick_and_place  # noqa: E402
from gigabrain_runtime.sim.simulator import Simulator  # noqa: E402
from gigabrain_runtime.sim.task import EpisodeStart  # noqa: E402
from tests.ros.fake_robot import LATCHED, RELIABLE  # noqa: E402
from tests.ros.harness import Inbox, graph, wait_for  # noqa: E402

PIPER = get_embodiment("piper")


class Hand(Node, Inbox):
    def __init__(self) -> None:
        Node.__init__(self, "hand", namespace="/piper")
        Inbox.__init__(self)
        self.create_subscription(Bool, "task/success", self._rec("success"), LATCHED)
        self.create_subscription(
            PoseArray, "task/objects", self._rec("objects"), qos_profile_sensor_data
        )
        self.create_subscription(
            JointState, "joint_states", self._rec("state"), qos_profile_sensor_data
        )
        self.command = self.create_publisher(JointState, "joint_command", RELIABLE)
        self.reset = self.create_publisher(Int32, "task/reset", RELIABLE)


@pytest.fixture(scope="module")
def sim_graph(tmp_path_factory):
    log = tmp_path_factory.mktemp("sim_task") / "sim.log"
    with graph() as g:
        proc = g.launch(
            [
                "node",
                "sim",
                "--ros-args",
                "-r",
                "__ns:=/piper",
                "-p",
                "task_seed:=3",
                "-p",
                "image_size:=64",
                "-p",
                "camera_hz:=5.0",
            ],
            log,
        )
        hand = g.spin(Hand())
        wait_for(
            lambda: hand.since("objects") and hand.since("success"), 60, "the task topics", log
        )
        yield hand, proc, log


def _objects(hand, since: float = 0.0) -> dict[str, tuple[float, float]]:
    _, msg = hand.since("objects", since)[-1]
    return {
        n: (p.position.x, p.position.y) for n, p in zip(("cube", "bowl"), msg.poses, strict=True)
    }


def test_the_expert_driving_the_arm_makes_the_detector_say_success(sim_graph):
    hand, _, log = sim_graph
    assert hand.since("success")[-1][1].data is False  # the cube starts outside the bowl
    objects = _objects(hand)
    local = Simulator(PIPER, image_size=32)  # planning only, as the operator node does
    _, state = hand.since("state")[-1]
    measured = np.array(state.position)
    local.reset(EpisodeStart(seed=-1, objects=objects, arm=measured))
    expert = ExpertOperator(PIPER, pick_and_place(local))
    local.close()
    t0 = time.monotonic()
    expert.start(t0, measured)
    done = threading.Event()

    def drive() -> None:
        while not done.is_set():
            target = expert.command(time.monotonic())
            hand.command.publish(
                joint_command(target, PIPER.joint_names, hand.get_clock().now().to_msg())
            )
            time.sleep(0.02)

    driver = threading.Thread(target=drive, daemon=True)
    driver.start()
    try:
        wait_for(
            lambda: any(m.data for _, m in hand.since("success", t0)), 30, "task/success true", log
        )
    finally:
        done.set()
        driver.join()
    cube = _objects(hand, time.monotonic() - 0.5)["cube"]
    bowl = objects["bowl"]
    assert np.hypot(cube[0] - bowl[0], cube[1] - bowl[1]) < 0.045


def test_task_reset_starts_the_seeded_episode(sim_graph):
    hand, _, log = sim_graph
    t0 = time.monotonic()
    hand.reset.publish(Int32(data=11))
    wait_for(
        lambda: any(m.data is False for _, m in hand.since("success", t0)), 10, "success false", log
    )
    local = Simulator(PIPER, image_size=32)
    expected = local.start_episode(11).objects
    local.close()

    def moved():
        got = hand.since("objects", t0)
        return got and _objects(hand, t0)

    wait_for(moved, 10, "task/objects after the reset", log)
    for name, (x, y) in expected.items():
        assert _objects(hand, t0)[name] == pytest.approx((x, y), abs=1e-3)


def test_a_reset_holds_the_new_pose_until_commands_come_back_to_it(sim_graph):
    """eval resets the task while the executor is e-stopped and still sends its frozen command
    (the previous episode's pose): the arm must start the episode where the seed put it, and
    follow commands again once they start from there (the executor's release)."""
    hand, _, log = sim_graph
    _, state = hand.since("state")[-1]
    frozen = np.array(state.position)
    local = Simulator(PIPER, image_size=32)
    start = local.start_episode(5).arm
    local.close()
    assert np.max(np.abs(frozen - start)) > 0.2  # the last test left the arm elsewhere
    done = threading.Event()
    target = [frozen]

    def executor() -> None:
        while not done.is_set():
            hand.command.publish(
                joint_command(target[0], PIPER.joint_names, hand.get_clock().now().to_msg())
            )
            time.sleep(0.02)

    sender = threading.Thread(target=executor, daemon=True)
    sender.start()
    try:
        t0 = time.monotonic()
        hand.reset.publish(Int32(data=5))
        wait_for(lambda: len(hand.since("state", t0)) >= 60, 20, "states after the reset", log)
        late = np.array([m.position for _, m in hand.since("state", t0)[-20:]])
        np.testing.assert_allclose(late, np.broadcast_to(start, late.shape), atol=0.02)
        moved = start.copy()
        moved[0] += 0.03  # the executor, released, starts from the measured pose and moves on
        target[0] = moved
        t1 = time.monotonic()
        wait_for(
            lambda: any(abs(m.position[0] - moved[0]) < 0.005 for _, m in hand.since("state", t1)),
            20,
            "the arm to follow commands again",
            log,
        )
    finally:
        done.set()
        sender.join()
