"""Command jitter while joint states flood in at 1 kHz, against the same flood on a topic nobody
subscribes to, in one run.

``launch/sim_piper.launch.yaml`` runs (sim + vla + executor + operator, as ``make demo``). A
separate process publishes joint states at ``flood_hz`` - valid messages, or malformed ones (a
missing joint) - alternately onto the runtime's ``joint_states`` (the flood) and onto a topic
nobody subscribes to (the baseline: the same publishing load on the machine), phase by phase.
Jitter is |period - 1/control_hz| between consecutive joint commands by their stamps (the
executor stamps each command as its period starts), p50/p99/max per condition.

    gigabrain-runtime bench-flood [--phase-s 10] [--phases 4] [--malformed] [--out F.json]
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

FLOOD_HZ = 1000.0


def flood(ns: str, joints: list[str], malformed: bool, control_file: str) -> int:
    """The flooding process: publishes joint states at FLOOD_HZ onto the topic named in
    ``control_file`` (re-read every 0.1 s; '' pauses), until the file says 'stop'."""
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import JointState

    from gigabrain_runtime.pacing import DeadlinePacer

    rclpy.init()
    node = rclpy.create_node("flood", namespace=ns)
    pubs = {
        topic: node.create_publisher(JointState, topic, qos_profile_sensor_data)
        for topic in ("joint_states", "flood_unsubscribed")
    }
    names = joints[:-1] if malformed else joints
    mid = [0.0, 1.57, -1.48, 0.0, 0.0, 0.0, 0.04][: len(names)]
    pacer = DeadlinePacer(1.0 / FLOOD_HZ)
    topic, checked = "", 0.0
    while True:
        now = time.monotonic()
        if now - checked > 0.1:
            checked = now
            topic = Path(control_file).read_text().strip()
            if topic == "stop":
                break
        pacer.wait()
        if topic in pubs:
            msg = JointState(name=names, position=mid)
            msg.header.stamp = node.get_clock().now().to_msg()
            pubs[topic].publish(msg)
    node.destroy_node()
    rclpy.shutdown()
    return 0


def _jitter(stamps: list[float], period: float) -> dict[str, float]:
    s = np.sort(np.asarray(stamps))
    dev = np.abs(np.diff(s) - period) * 1e3
    dev = dev[np.diff(s) < 3 * period]  # a period the observer missed is not jitter
    return {
        "commands": int(s.size),
        "jitter_p50_ms": float(np.percentile(dev, 50)),
        "jitter_p99_ms": float(np.percentile(dev, 99)),
        "jitter_max_ms": float(dev.max()),
    }


def run(
    engine: Path,
    *,
    phase_s: float = 10.0,
    phases: int = 4,
    malformed: bool = False,
    out: Path | None = None,
) -> dict[str, Any]:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import JointState

    from gigabrain_runtime.launching.launch_file import load_launch, package_share
    from gigabrain_runtime.launching.runner import LaunchRunner
    from gigabrain_runtime.robots.embodiment import get_embodiment
    from gigabrain_runtime.ros import qos
    from gigabrain_runtime.ros.node_utils import use_project_dds_profile

    emb = get_embodiment("piper")
    launch = package_share("gigabrain_runtime") / "launch" / "sim_piper.launch.yaml"
    nodes = load_launch(launch, {"engine": str(engine), "record_dir": "/tmp/bench-flood-rec"})
    ns = nodes[0].namespace
    use_project_dds_profile()
    log = open(os.devnull, "w")  # noqa: SIM115 - the runner writes to it until stop()
    runner = LaunchRunner(nodes, out=log)
    control = Path(f"/tmp/bench-flood-{os.getpid()}")
    control.write_text("")
    rclpy.init()
    node = rclpy.create_node("bench_flood", namespace=ns)
    lock = threading.Lock()
    stamps: list[float] = []

    def on_command(msg: JointState) -> None:
        with lock:
            stamps.append(msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9)

    node.create_subscription(JointState, "joint_command", on_command, qos.COMMAND)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spin = threading.Thread(target=executor.spin, daemon=True)
    flooder = None
    results: dict[str, list[float]] = {"baseline": [], "flood": []}
    try:
        runner.start()
        spin.start()
        flooder = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gigabrain_runtime.ros.tools.bench_flood",
                "--flood",
                ns,
                ",".join(emb.joint_names),
                "1" if malformed else "0",
                str(control),
            ]
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the graph is up: commands flow
            with lock:
                if len(stamps) > 100:
                    break
            time.sleep(0.2)
        else:
            raise RuntimeError("no joint commands within 120 s")
        for k in range(phases):
            condition = "baseline" if k % 2 == 0 else "flood"
            control.write_text("flood_unsubscribed" if condition == "baseline" else "joint_states")
            time.sleep(1.0)  # settle
            with lock:
                stamps.clear()
            time.sleep(phase_s)
            with lock:
                results[condition] += stamps
            print(f"phase {k + 1}/{phases}: {condition}, {len(stamps)} commands", flush=True)
    finally:
        control.write_text("stop")
        if flooder is not None:
            flooder.wait(timeout=10)
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown()
        runner.stop()
        log.close()
        control.unlink(missing_ok=True)
    period = 1.0 / 50.0
    report = {
        "flood_hz": FLOOD_HZ,
        "malformed": malformed,
        "phase_s": phase_s,
        "baseline": _jitter(results["baseline"], period),
        "flood": _jitter(results["flood"], period),
    }
    report["p99_ratio"] = report["flood"]["jitter_p99_ms"] / report["baseline"]["jitter_p99_ms"]
    for condition in ("baseline", "flood"):
        r = report[condition]
        print(
            f"{condition:8s}: {r['commands']} commands, jitter p50 {r['jitter_p50_ms']:.2f} ms, "
            f"p99 {r['jitter_p99_ms']:.2f} ms, max {r['jitter_max_ms']:.2f} ms"
        )
    print(f"flood / baseline p99: {report['p99_ratio']:.2f}x")
    if out is not None:
        out.write_text(json.dumps(report, indent=1) + "\n")
    return report


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--flood":
        ns, joints, bad, control_file = sys.argv[2:6]
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise SystemExit(flood(ns, joints.split(","), bad == "1", control_file))
    raise SystemExit("use: gigabrain-runtime bench-flood")
