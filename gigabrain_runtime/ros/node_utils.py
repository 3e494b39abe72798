"""Process plumbing shared by the nodes: spin, clean shutdown, /diagnostics publishing."""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.duration import Duration
from rclpy.exceptions import ParameterException
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from gigabrain_runtime.diagnostics.stats import Status
from gigabrain_runtime.inference.tensorrt_backend import TensorRTUnavailable
from gigabrain_runtime.ros import qos
from gigabrain_runtime.ros.convert import to_diagnostic


class DiagnosticsPublisher:
    """Publishes ``collect()`` on /diagnostics at ``hz`` from a node timer."""

    def __init__(self, node: Node, collect: Callable[[], list[Status]], hz: float = 1.0) -> None:
        self._node = node
        self._collect = collect
        self._pub = node.create_publisher(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
        self._hardware_id = node.get_fully_qualified_name()
        self._timer = node.create_timer(1.0 / hz, self.publish)

    def publish(self) -> None:
        msg = DiagnosticArray()
        msg.header.stamp = self._node.get_clock().now().to_msg()
        prefix = self._node.get_fully_qualified_name().lstrip("/")
        statuses = []
        for s in self._collect():
            s.name = f"{prefix}: {s.name}"
            statuses.append(to_diagnostic(s, self._hardware_id))
        msg.status = statuses
        self._pub.publish(msg)


def publish_or_stop(node: Node, publish: Callable[[], None]) -> bool:
    """Run ``publish()`` from a worker thread. False when the node's context has gone away under
    it (shutdown raced the publish): the caller's loop should end quietly. Any other failure is
    raised."""
    try:
        publish()
    except Exception:
        if node.context.ok():
            raise
        return False
    return True


# on shutdown, how long a node's last reliable messages may take to be acknowledged
ACK_TIMEOUT_S = 0.5


def wait_for_acks(node: Node, publishers: Sequence) -> None:
    """On shutdown, before the process ends: let each reliable publisher's last messages be
    acknowledged by its subscribers (at most ``ACK_TIMEOUT_S`` each), not lost in flight."""
    if node.context.ok():
        for pub in publishers:
            pub.wait_for_all_acked(Duration(seconds=ACK_TIMEOUT_S))


def worker_thread(node: Node, target: Callable[[], None], name: str) -> threading.Thread:
    """A daemon thread running ``target`` for ``node``; if ``target`` raises while the node's
    context is valid, the node fails: FATAL in its log with the traceback, and ``run_node``
    ends the process with exit code 1 (its ``shutdown()`` runs first) rather than leave a node
    whose control or inference loop is dead spinning and reporting on /diagnostics."""

    def run() -> None:
        try:
            target()
        except Exception as exc:
            if not node.context.ok():
                return  # the context went away under the loop
            if getattr(node, _STOPPING, False):
                # run_node is shutting the node down: a loop outliving its join can meet
                # what shutdown already closed; said, but not a failure of the run
                node.get_logger().error(f"{name} thread ended during shutdown: {exc!r}")
                return
            node.get_logger().fatal(
                f"{name} thread failed, stopping the node: {exc!r}\n{traceback.format_exc()}"
            )
            failures = node.__dict__.setdefault(_FAILURES, [])
            failures.append(f"{name} thread: {exc!r}")

    return threading.Thread(target=run, name=name, daemon=True)


# attributes run_node and worker_thread keep on a node: why its worker threads failed (the
# spin ends when there is one), and that its shutdown has begun
_FAILURES, _STOPPING = "_gigabrain_worker_failures", "_gigabrain_stopping"


class WorkerThreads:
    """Mixin for nodes with real-time worker threads in ``self._threads``: ``run_node`` calls
    ``start()`` once start-up (and its garbage) is behind us; ``join_workers()`` on shutdown."""

    _threads: list

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def join_workers(self, timeout_s: float = 2.0) -> None:
        for t in self._threads:
            if t.is_alive():
                t.join(timeout=timeout_s)


def make_thread_realtime(node: Node, priority: int, what: str) -> None:
    """Best effort, for the calling thread: short GIL hand-offs, and SCHED_FIFO at ``priority``
    (0: off), so a busy 2-core machine does not delay a real-time loop. Logs the outcome."""
    sys.setswitchinterval(0.001)
    if not priority:
        return
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        node.get_logger().info(f"{what} thread at SCHED_FIFO priority {priority}")
    except (PermissionError, OSError, AttributeError) as exc:
        node.get_logger().info(
            f"{what} thread without real-time priority ({exc}); "
            "grant rtprio (limits.conf) for lower jitter"
        )


FASTDDS_PROFILE = Path(__file__).resolve().parent / "config" / "fastdds.xml"


def use_project_dds_profile(env: dict[str, str] | None = None) -> None:
    """Point Fast DDS at the project's profile (large shared-memory segment and socket buffers
    for camera frames) unless the user chose one. Must run before the first participant."""
    target = os.environ if env is None else env
    target.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(FASTDDS_PROFILE))


def run_node(factory: Callable[[], Node], argv: Sequence[str] | None = None) -> int:
    """rclpy.init, build the node, spin a single-threaded executor until Ctrl-C/SIGTERM, then
    call the node's ``shutdown()`` (which stops its worker threads) and clean up.

    rclpy's own signal handler invalidates the context on the first SIGINT, after which nothing
    can be published. We install ours instead: a signal only ends the spin, so ``shutdown()``
    can still publish - the executor brakes to a stop, the robot bridges hand over safely -
    before the context goes away.
    """
    use_project_dds_profile()
    rclpy.init(
        args=list(argv) if argv is not None else sys.argv,
        signal_handler_options=SignalHandlerOptions.NO,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:  # noqa: ARG001
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    node = None
    executor = None
    failed: list[str] = []
    try:
        node = factory()
        # Everything allocated during start-up (modules, models, sessions) is long-lived: move
        # it out of the cyclic collector's reach, so a full collection never pauses the control
        # or inference threads for the time it takes to walk that heap.
        gc.collect()
        gc.freeze()
        start = getattr(node, "start", None)
        if start is not None:
            start()
        executor = make_executor()
        executor.add_node(node)
        while not stop.is_set() and node.context.ok() and not getattr(node, _FAILURES, None):
            executor.spin_once(timeout_sec=0.1)  # wakes up to notice a signal or a failure
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ValueError, ParameterException, FileNotFoundError, TensorRTUnavailable) as exc:
        # bad parameters or files, an engine this machine cannot run: one line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if node is not None:
            setattr(node, _STOPPING, True)  # (first: a failure from here on is shutdown's)
            failed = list(getattr(node, _FAILURES, ()))  # what ended the spin
            shutdown = getattr(node, "shutdown", None)
            if shutdown is not None:
                _shutdown_while_spinning(node, shutdown, executor)
            node.destroy_node()
        rclpy.try_shutdown()
    if failed:
        print(f"error: {'; '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def make_executor() -> Executor:
    """The executor every node spins: rclpy's EventsExecutor (its dispatch is C++), unless
    ``GIGABRAIN_EXECUTOR=single`` asks for the SingleThreadedExecutor. Measured with
    ``gigabrain-runtime bench-flood`` (1 kHz of joint states into the sim graph, 2 cores): the
    SingleThreadedExecutor's per-message Python dispatch took a third of a core per node and
    raised command jitter p99 from 1.6-3.6 ms to 18-19 ms; with the EventsExecutor 0.70 ->
    1.25 ms."""
    choice = os.environ.get("GIGABRAIN_EXECUTOR", "events")
    if choice == "single":
        return SingleThreadedExecutor()
    if choice != "events":
        raise ValueError(f"GIGABRAIN_EXECUTOR: expected events or single, got {choice!r}")
    from rclpy.experimental import EventsExecutor

    return EventsExecutor()


def _shutdown_while_spinning(
    node: Node, shutdown: Callable[[], None], executor: Executor | None
) -> None:
    """Run the node's ``shutdown()`` while its callbacks keep being served, so a node can wait
    for messages on the way out (a bridge forwarding the executor's braking commands)."""
    if executor is None or not node.context.ok():
        shutdown()
        return
    worker = threading.Thread(target=shutdown, name="shutdown", daemon=True)
    worker.start()
    while worker.is_alive():
        executor.spin_once(timeout_sec=0.02)
