"""Launch files as users write them, and the demo as users run it (real processes, real DDS)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from gigabrain_runtime.robots.embodiment import get_embodiment  # noqa: E402
from tests.ros.fake_robot import FakeRobot  # noqa: E402
from tests.ros.harness import fresh_domain, graph, median_period, stamp_s, wait_for  # noqa: E402

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
    with graph() as g:
        proc = g.launch(["launch", str(launch), "ns:=lab/cell_3"], log)
        robot = FakeRobot(
            "/lab/cell_3",
            PIPER.cameras,
            PIPER.joint_names,
            positions=(PIPER.lower + PIPER.upper) / 2,
        )
        # publish joint states on the remapped topic, listen for commands on the remapped output
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import JointState

        robot._state_pub = robot.create_publisher(
            JointState, "arm/measured", qos_profile_sensor_data
        )
        robot.create_subscription(JointState, "arm/target", robot._rec("target"), 50)
        g.spin(robot, on_close=robot.stop)
        # measure once both streams have been discovered and are flowing
        robot.wait_count("action_chunk", 5, timeout=90, log=log)
        robot.wait_count("target", 10, timeout=30, log=log)
        t0 = time.monotonic()
        chunks = robot.wait_count("action_chunk", 15, since=t0, log=log)
        targets = robot.wait_count("target", 50, since=t0, log=log)
        assert 0.18 <= median_period([t for t, _ in chunks]) <= 0.22  # params file: 5 Hz
        assert 0.036 <= median_period([stamp_s(m) for _, m in targets]) <= 0.044  # inline: 25 Hz
        names = {n for n, _ in robot.get_node_names_and_namespaces()}
        assert {"policy", "streamer"} <= names
        fqns = {f"{ns}/{n}" for n, ns in robot.get_node_names_and_namespaces()}
        assert {"/lab/cell_3/policy", "/lab/cell_3/streamer"} <= fqns
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
        timeout=300,  # a bound, not a wait: the demo allows start-up 120 s, then 14 s
        env={**os.environ, "ROS_DOMAIN_ID": str(fresh_domain())},
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    chunks, first = re.search(r"chunks received\s+(\d+) \(first after ([0-9.]+) s\)", text).groups()
    elapsed = float(re.search(r"summary after ([0-9.]+) s", text).group(1))
    commands = int(re.search(r"joint commands\s+(\d+)", text).group(1))
    # 2 Hz once the policy runs (start-up on a busy machine takes what it takes)
    assert int(chunks) / (elapsed - float(first)) >= 1.5 and commands >= 150
    steps = re.search(r"largest step per joint \[([^\]]+)\] \(limit x period \[([^\]]+)\]", text)
    largest = np.array(steps.group(1).split(), dtype=float)
    limit = np.array(steps.group(2).split(), dtype=float)
    assert np.all(largest <= limit + 1e-4)  # never a jump, end to end
    assert (tmp_path / "logs").is_dir()
    # the demo serves the operator console and says where
    port = int(re.search(r"console: http://localhost:(\d+)/", text).group(1))
    assert (
        port > 0
        and "console: http://localhost:"
        in (tmp_path / "logs")
        .joinpath(next(p.name for p in (tmp_path / "logs").iterdir()))
        .read_text()
    )
    # the demo leaves an episode with a takeover and a hand-back, and bag list shows it
    from gigabrain_runtime.hilr.recording import read_sidecar

    (episode,) = [d for d in (tmp_path / "recordings").iterdir() if d.is_dir()]
    info = read_sidecar(episode)
    assert info.status == "complete" and len(info.interventions) == 1
    # the 14 s asked are the episode's, however long the nodes took to start
    assert (info.ended_at_ns - info.started_at_ns) / 1e9 >= 13.0, info
    # the outcome is the task's success detector's: a random-weight policy and a 3 s takeover
    # (the expert needs 6 s) leave the cube outside the bowl
    assert info.outcome == "failure", info
    assert re.search(r"task \(detector\)\s+failure: cube [0-9.]+ cm from the bowl's centre", text)
    assert "end_s" in info.interventions[0]  # handed back
    assert episode.name in text and "operator takeovers     1" in text
    # every recorded image names its camera frame (REP-105 tools need one)
    from gigabrain_runtime.hilr.episodes import read_episode
    from gigabrain_runtime.robots.embodiment import get_embodiment

    emb = get_embodiment(robot)
    data = read_episode(episode)
    for cam in emb.cameras:
        (images,) = [m for t, m in data.items() if t.endswith(f"/cameras/{cam}/image_raw")]
        assert images and {m.header.frame_id for _, m in images} == {emb.frame_id(cam)}


def test_the_launcher_reports_a_dead_node_and_respawns_it_when_asked(tmp_path):
    """A node killed under the launcher is reported as ros2 launch does; one with
    ``respawn: true`` is started again after ``respawn_delay``, one without is not."""
    launch = tmp_path / "respawn.launch.yaml"
    launch.write_text("""
launch:
- node: {pkg: gigabrain_runtime, exec: gigabrain-runtime, args: "node intervention",
         name: kept, respawn: true, respawn_delay: 0.5}
- node: {pkg: gigabrain_runtime, exec: gigabrain-runtime, args: "node intervention",
         name: once}
""")
    log = tmp_path / "launch.log"
    started = re.compile(r"process started with pid \[(\d+)\] \((/\w+)\)")

    def pids() -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for pid, fqn in started.findall(log.read_text() if log.exists() else ""):
            out.setdefault(fqn, []).append(int(pid))
        return out

    with graph() as g:
        proc = g.launch(["launch", str(launch)], log)
        first = wait_for(
            lambda: p if len(p := pids()) == 2 else None, 30, "both nodes started", log
        )
        for fqn in ("/kept", "/once"):
            os.kill(first[fqn][0], 9)
        for fqn in ("/kept", "/once"):
            died = f"process has died [pid {first[fqn][0]}, exit code -9"
            wait_for(lambda d=died: d in log.read_text(), 30, died, log)
        again = wait_for(
            lambda: p if len((p := pids()).get("/kept", [])) == 2 else None,
            30,
            "/kept respawned",
            log,
        )
        assert "respawning /kept in 0.5 s" in log.read_text()
        assert again["/once"] == first["/once"]  # no respawn without respawn: true
        assert proc.poll() is None  # the launcher keeps running what is left
    assert proc.returncode == 0
