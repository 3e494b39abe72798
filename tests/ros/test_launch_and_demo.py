"""Launch files as users write them, and the demo as users run it (real processes, real DDS)."""

from __future__ import annotations

import gc
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from gigabrain_runtime.robots.embodiment import get_embodiment  # noqa: E402
from tests.ros.fake_robot import FakeRobot, Spinner, fresh_domain, rate  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PIPER = get_embodiment("piper")


def test_parameters_remaps_and_namespaces_through_a_launch_file(tiny_engine, tmp_path):
    """A user's own launch file: a custom namespace, a remapped joint-state topic, a params file
    and inline parameters all reach the nodes."""
    params = tmp_path / "vla_params.yaml"
    params.write_text("/**:\n  ros__parameters:\n    inference_hz: 5.0\n")
    launch = tmp_path / "mine.launch.yaml"
    launch.write_text(f"""
launch:
- arg: {{name: ns, default: cell_7}}
- group:
  - push_ros_namespace: {{namespace: "$(var ns)"}}
  - node:
      pkg: gigabrain_runtime
      exec: gigabrain-runtime
      args: "node vla"
      name: policy
      param:
      - {{name: engine, value: "{tiny_engine}"}}
      - from: "{params}"
      remap:
      - {{from: joint_states, to: arm/measured}}
  - node:
      pkg: gigabrain_runtime
      exec: gigabrain-runtime
      args: "node executor"
      name: streamer
      param:
      - {{name: control_hz, value: "25.0"}}
      remap:
      - {{from: joint_states, to: arm/measured}}
      - {{from: joint_command, to: arm/target}}
""")
    log = tmp_path / "launch.log"
    domain = fresh_domain()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gigabrain_runtime", "launch", str(launch), "ns:=lab/cell_3"],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        env={**os.environ, "ROS_DOMAIN_ID": str(domain)},
    )
    gc.collect()
    gc.freeze()
    rclpy.init(domain_id=domain)
    robot = FakeRobot(
        "/lab/cell_3", PIPER.cameras, PIPER.joint_names, positions=(PIPER.lower + PIPER.upper) / 2
    )
    # publish joint states on the remapped topic, listen for commands on the remapped output
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import JointState

    robot._state_pub = robot.create_publisher(JointState, "arm/measured", qos_profile_sensor_data)
    robot.create_subscription(JointState, "arm/target", robot._rec("target"), 50)
    spinner = Spinner(robot)
    try:
        end = time.monotonic() + 90
        # measure only once both measured streams have been discovered and are flowing
        while time.monotonic() < end and (
            len(robot.since("action_chunk", 0)) < 5 or len(robot.since("target", 0)) < 10
        ):
            time.sleep(0.2)
        assert len(robot.since("action_chunk", 0)) >= 5, log.read_text()[-2000:]
        assert len(robot.since("target", 0)) >= 10, log.read_text()[-2000:]
        t0 = time.monotonic()
        time.sleep(3.0)
        t1 = time.monotonic()
        assert 4.0 <= rate(robot.since("action_chunk", t0), t0, t1) <= 6.0  # params file
        assert 22.0 <= rate(robot.since("target", t0), t0, t1) <= 28.0  # inline param
        names = {n for n, _ in robot.get_node_names_and_namespaces()}
        assert {"policy", "streamer"} <= names
        fqns = {f"{ns}/{n}" for n, ns in robot.get_node_names_and_namespaces()}
        assert {"/lab/cell_3/policy", "/lab/cell_3/streamer"} <= fqns
    finally:
        robot.stop()
        spinner.stop()
        robot.destroy_node()
        rclpy.shutdown()
        proc.send_signal(2)
        proc.wait(timeout=15)
    assert proc.returncode == 0


@pytest.mark.parametrize("robot", ["piper"])
def test_demo_runs_the_simulated_robot_under_the_policy(tiny_engine, tmp_path, robot):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "gigabrain_runtime",
            "demo",
            "--robot",
            robot,
            "--duration",
            "14",
            "--takeover-at",
            "2",
            "--takeover-for",
            "3",
            "--engine",
            str(tiny_engine),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=180,
        env={**os.environ, "ROS_DOMAIN_ID": str(fresh_domain())},
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    chunks = int(re.search(r"chunks received\s+(\d+)", text).group(1))
    commands = int(re.search(r"joint commands\s+(\d+)", text).group(1))
    assert chunks >= 20 and commands >= 150
    steps = re.search(r"largest step per joint \[([^\]]+)\] \(limit x period \[([^\]]+)\]", text)
    largest = np.array(steps.group(1).split(), dtype=float)
    limit = np.array(steps.group(2).split(), dtype=float)
    assert np.all(largest <= limit + 1e-4)  # never a jump, end to end
    assert (tmp_path / "logs").is_dir()
    # the demo leaves an episode with a takeover and a hand-back, and bag list shows it
    from gigabrain_runtime.hilr.recording import read_sidecar

    (episode,) = [d for d in (tmp_path / "recordings").iterdir() if d.is_dir()]
    info = read_sidecar(episode)
    assert info.status == "complete" and len(info.interventions) == 1
    assert "end_s" in info.interventions[0]  # handed back
    assert episode.name in text and "operator takeovers     1" in text
