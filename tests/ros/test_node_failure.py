"""A node whose worker thread dies does not live on as a zombie: the control or inference loop of
a node is a worker thread, and a node spinning without it would keep answering on /diagnostics
while nothing drives the robot. The node logs the failure as FATAL with its traceback and its
process exits 1 (after the node's own shutdown), which the launcher reports."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
from builtin_interfaces.msg import Duration
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from gigabrain_runtime.robots.embodiment import get_embodiment
from tests.helpers import dds_domain
from tests.ros.fake_robot import FakeRobot
from tests.ros.harness import ROOT, graph, stamp_s, wait_for

NODE = textwrap.dedent(
    """
    from rclpy.node import Node
    from gigabrain_runtime.ros.node_utils import WorkerThreads, run_node, worker_thread

    class Broken(WorkerThreads, Node):
        def __init__(self):
            super().__init__("broken")
            self._threads = [worker_thread(self, self._loop, "control")]

        def _loop(self):
            raise RuntimeError("joint 3 went missing")

        def shutdown(self):
            print("shutdown ran", flush=True)

    raise SystemExit(run_node(Broken, []))
    """
)


def test_a_failed_worker_thread_ends_its_node_with_exit_code_1_and_the_reason():
    env = dict(os.environ, ROS_DOMAIN_ID=str(dds_domain(90)))
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    out = subprocess.run(
        [sys.executable, "-c", NODE], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    assert "shutdown ran" in out.stdout  # the node's own shutdown still ran (braking, say)
    assert "error: control thread: RuntimeError('joint 3 went missing')" in out.stderr
    logged = out.stdout + out.stderr
    assert "FATAL" in logged and "control thread failed, stopping the node" in logged
    assert "Traceback" in logged  # where it failed, for the bug report


LATE = textwrap.dedent(
    """
    import os, signal, threading
    from rclpy.node import Node
    from gigabrain_runtime.ros.node_utils import WorkerThreads, run_node, worker_thread

    class Late(WorkerThreads, Node):
        def __init__(self):
            super().__init__("late")
            self.stopping = threading.Event()
            self._threads = [worker_thread(self, self._loop, "control")]
            self.create_timer(0.2, lambda: os.kill(os.getpid(), signal.SIGTERM))

        def _loop(self):
            self.stopping.wait()
            raise RuntimeError("publisher already destroyed")

        def shutdown(self):
            self.stopping.set()
            self._threads[0].join()

    raise SystemExit(run_node(Late, []))
    """
)


def test_a_worker_that_fails_while_its_node_shuts_down_is_not_a_failed_run():
    """A loop that meets what shutdown already closed (SIGTERM, a clean stop) is logged, but the
    process exits 0: the launcher must not report a crash for a clean stop."""
    env = dict(os.environ, ROS_DOMAIN_ID=str(dds_domain(91)))
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    out = subprocess.run(
        [sys.executable, "-c", LATE], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, (out.returncode, out.stdout, out.stderr)
    assert "control thread ended during shutdown" in out.stdout + out.stderr
    assert "FATAL" not in out.stdout + out.stderr


# the executor node as launched, its core's step made to raise once joint1 moves at 1 rad/s: a
# bug in the control loop while the arm is in motion
FAILING_EXECUTOR = textwrap.dedent(
    """
    import numpy as np
    from gigabrain_runtime.control.executor import ChunkExecutor
    from gigabrain_runtime.ros import executor_node

    step = ChunkExecutor.step

    def failing_step(self, t):
        if abs(self.limiter.velocity[0]) >= 1.0:
            raise RuntimeError("joint 3 went missing")
        return step(self, t)

    ChunkExecutor.step = failing_step
    raise SystemExit(executor_node.main(["--ros-args", "-p", "robot:=piper"]))
    """
)


def test_an_executor_whose_control_loop_fails_mid_motion_brakes_to_rest_then_exits_1(tmp_path):
    """A command stream that stops dead leaves a moving arm to its driver's last target (an
    abrupt stop). When the control loop raises, the executor brakes on from the motion within
    the joint accelerations to a command at rest, then fails as any node does (exit 1, FATAL)."""
    piper = get_embodiment("piper")
    start = (piper.lower + piper.upper) / 2
    start[0] = -1.5
    log = tmp_path / "executor.log"
    with graph() as g:
        robot = FakeRobot("", (), piper.joint_names, state_hz=100.0, positions=start)
        g.spin(robot, on_close=robot.stop)  # its publishing threads end before it is destroyed
        proc = subprocess.Popen(
            [sys.executable, "-c", FAILING_EXECUTOR],
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "ROS_DOMAIN_ID": str(g.domain)},
        )
        g.procs.append(proc)
        robot.wait_count("joint_command", 5, timeout=60, log=log)  # holding at the start pose
        # joint1 ramps 3 rad over 2 s (the limiter accelerates it at 5 rad/s^2)
        chunk = JointTrajectory(joint_names=list(piper.joint_names))
        chunk.header.stamp = robot.get_clock().now().to_msg()
        for k in range(1, 101):
            q = start.copy()
            q[0] += 0.03 * k
            ns = k * 20_000_000
            chunk.points.append(
                JointTrajectoryPoint(
                    positions=q.tolist(),
                    time_from_start=Duration(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000),
                )
            )
        robot.chunk_pub.publish(chunk)
        assert proc.wait(timeout=60) == 1, log.read_text()[-3000:]
        logged = log.read_text()
        assert "control loop failed: braked to rest within the joint limits" in logged, logged
        assert "FATAL" in logged and "joint 3 went missing" in logged
        # the reliable stream's last messages reach the observer after the process is gone
        wait_for(
            lambda: len({tuple(m.position) for m in robot.msgs("joint_command")[-5:]}) == 1,
            10,
            "the resting command at the end of the stream",
        )
        msgs = sorted(robot.msgs("joint_command"), key=stamp_s)
    q = np.array([m.position[0] for m in msgs])
    stamps = np.array([stamp_s(m) for m in msgs])
    period = 1.0 / 50.0
    vel = np.diff(q) / period
    assert np.max(vel) >= 1.0 - 5.0 * period  # it was moving when the loop failed
    consecutive = np.diff(stamps) < 1.5 * period
    both = consecutive[:-1] & consecutive[1:]
    acc = np.abs(np.diff(vel))[both] / period
    assert both.sum() >= 20, both.sum()
    # braking on from the motion, never harder than the joint allows (a dead stop from 1 rad/s
    # would be 50 rad/s^2): by the commands' stamps, and command to command
    assert np.all(acc <= piper.max_acceleration[0] + 1e-6), acc.max()
    assert np.all(np.abs(np.diff(q, n=2)) <= piper.max_acceleration[0] * period**2 + 1e-9)
    peak = int(np.argmax(vel))
    assert np.all(vel[peak:] > -1e-9) and q[-1] > q[peak + 1]  # it went on, slowing down
    assert vel[-1] == 0.0  # and came to rest
