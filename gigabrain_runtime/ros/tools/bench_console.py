"""``gigabrain-runtime bench-console``: does an open console cost the control path anything?

Alternates phases of the simulated graph (``launch/sim_<robot>.launch.yaml`` under the shipped
policy, the console node always running): *closed* (no page) and *open* (headless Chromium
showing the console: cameras streaming, state at 10 Hz), each from a fresh launch, ``repeats``
times each. Per phase: the executor's control period from its commands' header stamps (the
sender's clock; p99 of |period - 20 ms| and periods over 1.5 x nominal), the chunk rate (chunks
received / time), the vla's inference latency p50/p99 and deadline misses (its /diagnostics at
the end of the phase), and the frames the page drew. The spread between phases of the same
kind is the measurement noise the open/closed difference is compared with. Optionally a
screenshot of the page.
"""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor

from gigabrain_runtime.console.browser import headless_chromium
from gigabrain_runtime.launching.launch_file import load_launch, package_share
from gigabrain_runtime.launching.runner import LaunchRunner
from gigabrain_runtime.ros.node_utils import use_project_dds_profile
from gigabrain_runtime.ros.tools.demo import INSTRUCTION, Monitor

WARMUP_S = 8.0  # after the first chunk: model warm-up and first camera frames settle


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _frames(driver) -> int:  # noqa: ANN001
    return int(
        driver.execute_script(
            "return Array.from(document.querySelectorAll('.camera img'))"
            ".reduce((n, e) => n + Number(e.dataset.frames || 0), 0)"
        )
        or 0
    )


def _phase(
    robot: str, engine: Path, seconds: float, page: bool, screenshot: Path | None
) -> dict[str, Any]:
    port = _free_port()
    record_dir = Path(tempfile.mkdtemp(prefix="bench-console-"))
    nodes = load_launch(
        package_share("gigabrain_runtime") / "launch" / f"sim_{robot}.launch.yaml",
        {
            "engine": str(engine),
            "record_dir": str(record_dir),
            "console": "true",
            "console_port": str(port),
        },
    )
    log = (Path("logs") / f"bench-console-{time.strftime('%Y%m%d-%H%M%S')}.log").resolve()
    log.parent.mkdir(exist_ok=True)
    runner = LaunchRunner(nodes, out=log.open("w"))
    monitor = Monitor(nodes[0].namespace, INSTRUCTION)
    executor = SingleThreadedExecutor()
    executor.add_node(monitor)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    driver = None
    runner.start()
    try:
        deadline = time.monotonic() + 180
        while monitor.n_chunks < 2:
            if time.monotonic() > deadline or not all(runner.alive().values()):
                raise RuntimeError(f"the graph did not start (see {log})")
            time.sleep(0.2)
        if page:
            driver = headless_chromium(f"http://localhost:{port}/")
        time.sleep(WARMUP_S)
        frames0 = _frames(driver) if driver else 0
        with monitor.lock:
            n0, c0 = len(monitor.command_stamps), monitor.n_chunks
        t0 = time.monotonic()
        time.sleep(seconds)
        with monitor.lock:
            stamps = np.asarray(monitor.command_stamps[n0:])
            chunks = monitor.n_chunks - c0
        elapsed = time.monotonic() - t0
        frames = (_frames(driver) - frames0) if driver else 0
        if driver is not None and screenshot is not None:
            driver.save_screenshot(str(screenshot))
        periods = np.diff(np.sort(stamps))
        nominal = 0.02
        return {
            "page": page,
            "seconds": round(elapsed, 1),
            "commands": int(len(stamps)),
            "period_jitter_p99_ms": round(
                float(np.percentile(np.abs(periods - nominal), 99)) * 1e3, 3
            ),
            "periods_over_1p5x": int(np.sum(periods > 1.5 * nominal)),
            "chunk_hz": round(chunks / elapsed, 3),
            "inference_p50_ms": float(monitor.value("inference", "latency_p50_ms", "nan")),
            "inference_p99_ms": float(monitor.value("inference", "latency_p99_ms", "nan")),
            "inference_deadline_misses": int(monitor.value("inference", "deadline_misses", "0")),
            "executor_deadline_misses": int(monitor.value("executor", "deadline_misses", "0")),
            "page_frames_per_s": round(frames / elapsed, 2),
        }
    finally:
        if driver is not None:
            driver.quit()
        runner.stop()
        executor.shutdown(timeout_sec=2.0)
        spin.join(timeout=2.0)
        monitor.destroy_node()
        shutil.rmtree(record_dir, ignore_errors=True)


def run(
    robot: str,
    engine: Path,
    seconds: float = 40.0,
    repeats: int = 2,
    out: Path | None = None,
    screenshot: Path | None = None,
) -> dict[str, Any]:
    use_project_dds_profile()
    rclpy.init()
    phases = []
    try:
        for r in range(repeats):
            for page in (False, True):
                shot = screenshot if (page and r == repeats - 1) else None
                p = _phase(robot, engine, seconds, page, shot)
                print(
                    f"{'open  ' if page else 'closed'} #{r + 1}: jitter p99 "
                    f"{p['period_jitter_p99_ms']:.3f} ms, periods > 1.5x {p['periods_over_1p5x']}"
                    f", chunks {p['chunk_hz']:.2f} Hz, inference p50/p99 "
                    f"{p['inference_p50_ms']:.1f}/{p['inference_p99_ms']:.1f} ms, page "
                    f"{p['page_frames_per_s']:.1f} frames/s",
                    flush=True,
                )
                phases.append(p)
    finally:
        rclpy.try_shutdown()

    def summary(page: bool) -> dict[str, Any]:
        rows = [p for p in phases if p["page"] is page]
        keys = (
            "period_jitter_p99_ms",
            "periods_over_1p5x",
            "chunk_hz",
            "inference_p50_ms",
            "inference_p99_ms",
        )
        return {
            k: {
                "mean": round(float(np.mean([r[k] for r in rows])), 3),
                "spread": round(float(np.ptp([r[k] for r in rows])), 3),
            }
            for k in keys
        }

    result = {
        "robot": robot,
        "engine": str(engine),
        "seconds_per_phase": seconds,
        "repeats": repeats,
        "phases": phases,
        "closed": summary(False),
        "open": summary(True),
    }
    for k in ("period_jitter_p99_ms", "chunk_hz", "inference_p50_ms"):
        a, b = result["closed"][k], result["open"][k]
        noise = max(a["spread"], b["spread"])
        print(
            f"{k}: closed {a['mean']:.3f}, open {b['mean']:.3f} (difference "
            f"{b['mean'] - a['mean']:+.3f}; spread between repeats of one kind {noise:.3f})"
        )
    if out is not None:
        Path(out).write_text(json.dumps(result, indent=2) + "\n")
    return result
