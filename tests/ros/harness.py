"""What every graph test shares: one way to wait, processes that are always stopped, one rclpy
context per graph, and an inbox of what arrived that tests wait on.

Graph tests run on busy machines (CI, a laptop building something else). They wait for events
(a count of messages, a diagnostic sent *after* a change) and never for a fixed time; the
timeouts only bound how long a failure takes to report. Rates are read from the senders' own
stamps or from the median period, which a descheduled observer does not distort.
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from tests.helpers import dds_domain

ROOT = Path(__file__).resolve().parents[2]
_DOMAIN_OFFSET = [0]
# exceptions that ended an observer's spin thread: after one, nothing more arrives, and every
# wait that times out says why instead of only that it timed out
SPIN_ERRORS: list[str] = []


def fresh_domain() -> int:
    """A DDS domain of its own for one graph (and its child processes), so processes from
    another test can never be discovered by this one."""
    _DOMAIN_OFFSET[0] += 1
    return dds_domain(_DOMAIN_OFFSET[0])


def wait_for(
    predicate: Callable[[], Any], timeout: float, what: str, log: Path | None = None
) -> Any:
    """Poll ``predicate`` until it returns something truthy and return that. ``timeout`` bounds
    a failure; a passing test waits exactly as long as the event takes."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= end:
            tail = f"\n--- {log} ---\n{Path(log).read_text()[-3000:]}" if log else ""
            dead = f"; an observer stopped receiving: {SPIN_ERRORS}" if SPIN_ERRORS else ""
            raise AssertionError(f"timed out after {timeout} s waiting for {what}{dead}{tail}")
        time.sleep(0.02)


def stamp_s(msg: Any) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def ros_now_s(node: Node) -> float:
    """The node's ROS time in seconds: comparable with the stamps other processes send."""
    return node.get_clock().now().nanoseconds * 1e-9


def median_period(times: list[float] | np.ndarray) -> float:
    """The typical period of a stream: stalls and bursts move the tails, not the median."""
    t = np.sort(np.asarray(times, dtype=float))
    return float(np.median(np.diff(t)))


def stamp_rate(samples: list) -> float:
    """Messages per second by their header stamps (when they were sent)."""
    stamps = sorted(stamp_s(m) for _, m in samples)
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


class Inbox:
    """Messages received per key with their arrival (monotonic) times, safe across threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: dict[str, list] = defaultdict(list)

    def _rec(self, key: str) -> Callable[[Any], None]:
        def cb(msg: Any) -> None:
            with self.lock:
                self.received[key].append((time.monotonic(), msg))

        return cb

    def since(self, key: str, t0: float = 0.0) -> list:
        """(arrival time, message) pairs of ``key`` that arrived at or after ``t0``."""
        with self.lock:
            return [(t, m) for t, m in self.received[key] if t >= t0]

    def msgs(self, key: str, t0: float = 0.0) -> list:
        return [m for _, m in self.since(key, t0)]

    def wait_count(
        self,
        key: str,
        n: int,
        *,
        since: float = 0.0,
        timeout: float = 30.0,
        log: Path | None = None,
    ) -> list:
        """Wait until ``n`` messages of ``key`` have arrived since ``since``; return them."""
        return wait_for(
            lambda: got if len(got := self.since(key, since)) >= n else None,
            timeout,
            f"{n} messages on {key}",
            log,
        )

    def statuses(self, name_part: str, t0: float = 0.0) -> list[dict[str, str]]:
        """Every /diagnostics status whose name contains ``name_part`` that arrived since t0,
        oldest first, as a dict of its values plus ``_level``, ``_message`` and ``_name``."""
        out = []
        for _, arr in self.since("diagnostics", t0):
            for st in arr.status:
                if name_part in st.name:
                    d = {kv.key: kv.value for kv in st.values}
                    d["_level"] = str(st.level[0] if isinstance(st.level, bytes) else st.level)
                    d["_message"] = st.message
                    d["_name"] = st.name
                    out.append(d)
        return out

    def diag(
        self,
        name_part: str,
        *,
        since: float,
        where: Callable[[dict[str, str]], bool] = lambda d: True,
        timeout: float = 10.0,
        log: Path | None = None,
    ) -> dict[str, str]:
        """Wait for a status of ``name_part`` sent after ``since`` (a monotonic time in this
        process) that satisfies ``where``; return it. Never the last one from before."""

        def find() -> dict[str, str] | None:
            for d in reversed(self.statuses(name_part, since)):
                if where(d):
                    return d
            return None

        try:
            return wait_for(find, timeout, f"a fresh '{name_part}' diagnostic", log)
        except AssertionError as err:
            seen = self.statuses(name_part, since)
            raise AssertionError(f"{err}; last seen: {seen[-1] if seen else None}") from None


class Spinner:
    """One node spun on a thread of its own. Entities of a spinning node are created freely but
    never destroyed from another thread (rclpy's executor may already hold one it chose as ready:
    ros2/rclpy#1355, #1284); to drop one, put it on a node of its own and ``Graph.unspin`` it."""

    def __init__(self, node: Node) -> None:
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(node)
        self.thread = threading.Thread(target=self._spin, args=(node.get_name(),), daemon=True)
        self.thread.start()

    def _spin(self, name: str) -> None:
        try:
            self.executor.spin()
        except Exception as err:  # ExternalShutdownException and the like end it quietly
            if rclpy.ok():
                SPIN_ERRORS.append(f"{name}: {type(err).__name__}: {err}")
                raise

    def stop(self) -> None:
        self.executor.shutdown()
        self.thread.join(timeout=2)


def start(args: list[str], log: Path, domain: int) -> subprocess.Popen:
    """``gigabrain-runtime <args>`` as a user runs it, its output in ``log``."""
    return subprocess.Popen(
        [sys.executable, "-m", "gigabrain_runtime", *args],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        env={**os.environ, "ROS_DOMAIN_ID": str(domain)},
    )


def stop(proc: subprocess.Popen, timeout_s: float = 20.0) -> int:
    """Ctrl-C, as a user stops it; its exit status."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGCONT)  # a test may have paused it
        proc.send_signal(signal.SIGINT)
    return proc.wait(timeout=timeout_s)


class Graph:
    """One test graph: a DDS domain of its own, this process's rclpy context in it, the
    processes started in it and the nodes spun here. Everything is stopped by ``close``."""

    def __init__(self, domain: int | None = None) -> None:
        self.domain = fresh_domain() if domain is None else domain
        self.procs: list[subprocess.Popen] = []
        self._nodes: list[tuple[Node, Spinner, Callable[[], None] | None]] = []
        gc.collect()
        gc.freeze()  # an observer must not pause for seconds-long GC walks of torch's heap
        rclpy.init(domain_id=self.domain)

    def launch(self, args: list[str], log: Path) -> subprocess.Popen:
        proc = start(args, log, self.domain)
        self.procs.append(proc)
        return proc

    def spin(self, node: Node, on_close: Callable[[], None] | None = None) -> Node:
        self._nodes.append((node, Spinner(node), on_close))
        return node

    def unspin(self, node: Node) -> None:
        """Stop spinning ``node`` and destroy it (with every subscription it holds) once its
        executor has stopped: the safe way to make an entity go away mid-test."""
        for i, (n, spinner, on_close) in enumerate(self._nodes):
            if n is node:
                del self._nodes[i]
                if on_close is not None:
                    on_close()
                spinner.stop()
                node.destroy_node()
                return
        raise ValueError(f"node {node.get_name()!r} is not spun by this graph")

    def close(self) -> None:
        for proc in self.procs:
            try:
                stop(proc, timeout_s=15.0)
            except subprocess.TimeoutExpired:
                proc.kill()  # its nodes get SIGTERM from the kernel (the launcher's PDEATHSIG)
                proc.wait()
        for node, spinner, on_close in self._nodes:
            if on_close is not None:
                on_close()
            spinner.stop()
            node.destroy_node()
        rclpy.shutdown()


@contextmanager
def graph(domain: int | None = None) -> Iterator[Graph]:
    g = Graph(domain)
    try:
        yield g
    finally:
        g.close()
