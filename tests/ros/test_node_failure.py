"""A node whose worker thread dies does not live on as a zombie: the control or inference loop of
a node is a worker thread, and a node spinning without it would keep answering on /diagnostics
while nothing drives the robot. The node logs the failure as FATAL with its traceback and its
process exits 1 (after the node's own shutdown), which the launcher reports."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from tests.helpers import dds_domain

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
