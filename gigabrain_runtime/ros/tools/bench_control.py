"""Control-period jitter with inference running: the runtime's arrangement against a naive loop.

* naive (what the reference clients do): one rclpy timer at ``control_hz``; every
  ``control_hz / inference_hz``-th tick runs inference inside the callback, then commands.
* runtime: the executor's arrangement - a control thread paced by deadlines on the monotonic
  clock, inference on its own thread at ``inference_hz`` handing chunks over under a lock.

Both run in this one process with the same backend, observation and executor core, one after
the other, so the ratio compares arrangements on the same machine in the same minute. (The
real graph is stricter still: vla and executor are separate processes and share no GIL.)
Reported per arrangement: control-period jitter |period - 1/control_hz| between successive
command *publications* (what the robot receives; p50, p99, max), periods more than half a period
off, and observation-to-chunk latency (p50, p99).
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import JointState

from gigabrain_runtime.bench import synthetic_observation
from gigabrain_runtime.control.chunk import TimedChunk
from gigabrain_runtime.control.executor import ChunkExecutor, ExecutorConfig
from gigabrain_runtime.inference.base import Backend
from gigabrain_runtime.pacing import DeadlinePacer
from gigabrain_runtime.robots.embodiment import get_embodiment
from gigabrain_runtime.ros import qos
from gigabrain_runtime.ros.convert import joint_command


def _stats(periods: list[float], nominal: float, latencies: list[float]) -> dict[str, Any]:
    dev = np.abs(np.asarray(periods) - nominal) * 1e3
    lat = np.asarray(latencies) * 1e3
    return {
        "ticks": len(periods) + 1,
        "jitter_p50_ms": float(np.percentile(dev, 50)),
        "jitter_p99_ms": float(np.percentile(dev, 99)),
        "jitter_max_ms": float(dev.max()),
        "late_periods": int((dev > nominal * 1e3 * 0.5).sum()),
        "obs_to_chunk_p50_ms": float(np.percentile(lat, 50)) if lat.size else float("nan"),
        "obs_to_chunk_p99_ms": float(np.percentile(lat, 99)) if lat.size else float("nan"),
        "chunks": int(lat.size),
    }


class _Bench(Node):
    def __init__(self, backend: Backend, robot: str, control_hz: float, inference_hz: float):
        super().__init__("bench_control")
        self.backend = backend
        self.obs = synthetic_observation(backend, robot)
        self.emb = get_embodiment(robot)
        self.control_hz = control_hz
        self.inference_hz = inference_hz
        self.pub = self.create_publisher(JointState, "bench/joint_command", qos.COMMAND)
        self.core = ChunkExecutor(
            self.emb,
            ExecutorConfig(control_hz=control_hz, max_open_loop_s=10.0, state_timeout_s=10.0),
        )
        self.lock = threading.Lock()

    def _now(self) -> float:
        return time.monotonic()

    def _feed(self, chunk_actions: np.ndarray, t_obs: float) -> None:
        chunk = TimedChunk(positions=chunk_actions, t0_s=t_obs, dt_s=1.0 / self.control_hz)
        with self.lock:
            self.core.on_joint_state(self.obs.state, self._now())
            self.core.on_chunk(chunk, self._now())

    def _command(self) -> float:
        """Step the executor core and publish; returns the monotonic time of the publish (what
        the robot sees as the command period)."""
        now = self._now()
        with self.lock:
            self.core.on_joint_state(self.obs.state, now)
            result = self.core.step(now)
        if result.command is not None:
            self.pub.publish(
                joint_command(result.command, self.emb.joint_names, self.get_clock().now().to_msg())
            )
        return time.monotonic()

    def infer(self) -> tuple[np.ndarray, float]:
        t_obs = self._now()
        obs = dataclasses.replace(self.obs)  # a fresh observation object each time
        chunk = self.backend.infer(obs)
        return chunk.actions, t_obs

    # ---- naive: inference inside the timer callback ------------------------------------------
    def run_naive(self, seconds: float) -> dict[str, Any]:
        ticks: list[float] = []
        latencies: list[float] = []
        every = max(1, round(self.control_hz / self.inference_hz))
        count = [0]

        def callback() -> None:
            if count[0] % every == 0:
                actions, t_obs = self.infer()
                latencies.append(self._now() - t_obs)
                self._feed(actions, t_obs)
            count[0] += 1
            ticks.append(self._command())

        timer = self.create_timer(1.0 / self.control_hz, callback)
        executor = SingleThreadedExecutor()
        executor.add_node(self)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        executor.remove_node(self)
        self.destroy_timer(timer)
        return _stats(list(np.diff(ticks)), 1.0 / self.control_hz, latencies)

    # ---- runtime: paced control thread + inference thread -------------------------------------
    def run_runtime(self, seconds: float) -> dict[str, Any]:
        pacer = DeadlinePacer(1.0 / self.control_hz, history=100_000)
        latencies: list[float] = []
        publishes: list[float] = []
        running = [True]

        def control() -> None:
            while running[0]:
                pacer.wait()
                publishes.append(self._command())

        def inference() -> None:
            inf_pacer = DeadlinePacer(1.0 / self.inference_hz)
            while running[0]:
                inf_pacer.wait()
                actions, t_obs = self.infer()
                latencies.append(self._now() - t_obs)
                self._feed(actions, t_obs)

        threads = [
            threading.Thread(target=control, daemon=True),
            threading.Thread(target=inference, daemon=True),
        ]
        for t in threads:
            t.start()
        executor = SingleThreadedExecutor()
        executor.add_node(self)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        running[0] = False
        for t in threads:
            t.join(timeout=2.0)
        executor.remove_node(self)
        stats = _stats(list(np.diff(publishes)), 1.0 / self.control_hz, latencies)
        stats["deadline_misses"] = pacer.misses
        return stats


def run(
    backend: Backend,
    *,
    robot: str,
    control_hz: float,
    inference_hz: float,
    seconds: float,
    json_path: str | None,
) -> dict[str, Any]:
    import gc

    from gigabrain_runtime.ros.node_utils import use_project_dds_profile

    use_project_dds_profile()
    rclpy.init()
    try:
        node = _Bench(backend, robot, control_hz, inference_hz)
        for _ in range(5):
            node.infer()  # warm up
        gc.collect()
        gc.freeze()
        report = {
            "robot": robot,
            "control_hz": control_hz,
            "inference_hz": inference_hz,
            "seconds_each": seconds,
            "backend": backend.name,
            "naive": node.run_naive(seconds),
            "runtime": node.run_runtime(seconds),
        }
        node.destroy_node()
    finally:
        rclpy.try_shutdown()
    n, r = report["naive"], report["runtime"]
    report["jitter_p99_ratio_naive_over_runtime"] = n["jitter_p99_ms"] / max(
        r["jitter_p99_ms"], 1e-9
    )
    head = (
        f"{'arrangement':<10} {'jitter p50':>11} {'p99':>8} {'max':>8} {'late':>6} "
        f"{'obs->chunk p50':>15} {'p99':>8}"
    )
    print(head)
    print("-" * len(head))
    for name in ("naive", "runtime"):
        s = report[name]
        print(
            f"{name:<10} {s['jitter_p50_ms']:9.3f}ms {s['jitter_p99_ms']:6.3f}ms "
            f"{s['jitter_max_ms']:6.3f}ms {s['late_periods']:6d} "
            f"{s['obs_to_chunk_p50_ms']:13.2f}ms {s['obs_to_chunk_p99_ms']:6.2f}ms"
        )
    print(
        f"control-period jitter p99: naive / runtime = "
        f"{report['jitter_p99_ratio_naive_over_runtime']:.1f}x "
        f"({control_hz:g} Hz control, {inference_hz:g} Hz inference, {backend.name})"
    )
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {json_path}")
    return report
