"""PiPER through the piper_ros driver's own interface: the launch files users run, against a
stand-in with the driver's topic names, types, QoS and 200 Hz rate (real processes, real DDS)."""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Bool  # noqa: E402

from gigabrain_runtime.robots.embodiment import get_embodiment  # noqa: E402
from gigabrain_runtime.robots.piper_ros import DRIVER_JOINTS  # noqa: E402
from tests.ros.fake_robot import LATCHED, OBSERVER, Spinner, fresh_domain  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PIPER = get_embodiment("piper")
DUAL = get_embodiment("piper_dual")


class Observer(Node):
    """Records JointState topics with arrival times, and /diagnostics."""

    def __init__(self, topics: dict[str, str]) -> None:
        super().__init__("observer")
        self.lock = threading.Lock()
        self.got: dict[str, list] = defaultdict(list)
        for key, topic in topics.items():
            qos = (
                OBSERVER
                if "ctrl_single" in topic or "command" in topic
                else qos_profile_sensor_data
            )
            self.create_subscription(JointState, topic, self._rec(key), qos)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._rec("diag"), OBSERVER)

    def _rec(self, key: str):  # noqa: ANN202
        def cb(msg) -> None:  # noqa: ANN001
            with self.lock:
                self.got[key].append((time.monotonic(), msg))

        return cb

    def msgs(self, key: str, since: float = 0.0) -> list:
        with self.lock:
            return [m for t, m in self.got[key] if t >= since]

    def wait_for(self, key: str, n: int, timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if len(self.msgs(key)) >= n:
                return True
            time.sleep(0.1)
        return False

    def diag(self, name_part: str) -> dict[str, str]:
        with self.lock:
            arrays = [m for _, m in self.got["diag"]]
        for arr in reversed(arrays):
            for st in arr.status:
                if name_part in st.name:
                    return {kv.key: kv.value for kv in st.values}
        return {}


def _launch(args: list[str], log: Path, domain: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "gigabrain_runtime", "launch", *args],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        env={**os.environ, "ROS_DOMAIN_ID": str(domain)},
    )


def _stop(proc: subprocess.Popen, timeout_s: float = 20.0) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    return proc.wait(timeout=timeout_s)


def _stamp(msg) -> float:  # noqa: ANN001
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


@pytest.fixture
def graph():
    gc.collect()
    gc.freeze()
    domain = fresh_domain()
    rclpy.init(domain_id=domain)
    nodes: list = []
    procs: list = []
    yield domain, nodes, procs
    for p in procs:
        try:
            _stop(p, timeout_s=15.0)
        except subprocess.TimeoutExpired:
            p.kill()  # its nodes get SIGTERM from the kernel (the launcher's PDEATHSIG)
            p.wait()
    for node, spinner in nodes:
        spinner.stop()
        node.destroy_node()
    rclpy.shutdown()


def test_single_piper_launch_file_against_the_driver_standin(graph, tiny_engine, tmp_path):
    """piper.launch.yaml: enable at start, commands in the driver's conventions at 50 Hz within
    the limits, joints.yaml applied both ways, a leader-arm takeover, bad commands dropped, and
    a braked stop on shutdown."""
    domain, nodes, procs = graph
    joints = tmp_path / "joints.yaml"
    joints.write_text("joints:\n  joint1: {offset: 0.05}\n  joint6: {offset: 0.0, sign: -1}\n")
    report = tmp_path / "standin.json"
    standin = _launch(
        [
            "launch/piper_standin.launch.yaml",
            "leader:=true",
            f"report:={report}",
            f"encoder_calibration:={joints}",  # an arm whose encoders read off by these
        ],
        tmp_path / "standin.log",
        domain,
    )
    procs.append(standin)
    runtime = _launch(
        [
            "launch/piper.launch.yaml",
            f"engine:={tiny_engine}",
            f"record_dir:={tmp_path / 'rec'}",
            f"joints_calibration:={joints}",
        ],
        tmp_path / "runtime.log",
        domain,
    )
    procs.append(runtime)
    obs = Observer(
        {
            "ctrl": "/piper/joint_ctrl_single",
            "state": "/piper/joint_states",
            "leader": "/piper/joint_ctrl",
            "command": "/piper/joint_command",
            "raw": "/piper/joint_states_single",
        }
    )
    nodes.append((obs, Spinner(obs)))
    engage = obs.create_publisher(Bool, "/piper/intervention/engage", LATCHED)
    bad = obs.create_publisher(JointState, "/piper/joint_command", OBSERVER)
    logs = lambda: (tmp_path / "runtime.log").read_text()[-3000:]  # noqa: E731

    assert obs.wait_for("ctrl", 100, 90), logs()
    # every command in the driver's conventions: all seven joints, speed %, gripper effort
    for msg in obs.msgs("ctrl"):
        assert list(msg.name) == list(DRIVER_JOINTS)
        assert len(msg.velocity) == 7 and msg.velocity[6] == 100.0
        assert len(msg.effort) == 7 and msg.effort[6] == 1.0
    # the canonical state is the driver's, under the embodiment's names
    state = obs.msgs("state")[-1]
    assert list(state.name) == list(PIPER.joint_names)
    # joints.yaml, in one place both ways: canonical = sign * (driver - offset)
    assert obs.wait_for("raw", 100, 10), "no joint_states_single seen by the observer"
    raw = {_stamp(m): np.array(m.position) for m in obs.msgs("raw")}
    pairs = [(np.array(m.position), raw[_stamp(m)]) for m in obs.msgs("state") if _stamp(m) in raw]
    assert len(pairs) > 100, (len(obs.msgs("state")), len(raw))
    for canonical, driver in pairs:
        assert canonical[0] == pytest.approx(driver[0] - 0.05)
        assert canonical[5] == pytest.approx(-driver[5])
    commands = {_stamp(m): np.array(m.position) for m in obs.msgs("command")}
    sent = [
        (commands[_stamp(m)], np.array(m.position))
        for m in obs.msgs("ctrl")
        if _stamp(m) in commands
    ]
    assert len(sent) > 50
    for canonical, driver in sent:
        assert driver[0] == pytest.approx(canonical[0] + 0.05)
        assert driver[5] == pytest.approx(-canonical[5])

    # bad input on the command topic never reaches the driver, and is reported
    out_of_limits = JointState(name=list(PIPER.joint_names), position=[9.0] * 7)
    for _ in range(3):
        bad.publish(out_of_limits)
        time.sleep(0.05)

    # operator takeover: the arm follows the leader arm's sweep
    engage.publish(Bool(data=True))
    time.sleep(3.0)
    t_follow = time.monotonic()
    time.sleep(1.5)
    leader = obs.msgs("leader", t_follow)
    ctrl = obs.msgs("ctrl", t_follow)
    assert len(leader) > 100 and len(ctrl) > 50, logs()
    lt = np.array([_stamp(m) for m in leader])
    lq = np.array([m.position[0] for m in leader])
    ct = np.array([_stamp(m) for m in ctrl])
    cq = np.array([m.position[0] for m in ctrl])
    # commands track the leader (it sweeps +-0.3 rad at 0.2 Hz) within one control period's lag
    err = np.abs(cq - np.interp(ct, lt, lq))
    assert np.median(err) < 0.03, (np.median(err), np.max(err))
    moving = np.abs(np.diff(cq)) / np.maximum(np.diff(ct), 1e-3)
    assert np.max(moving) > 0.05  # the arm is moving when the runtime is shut down

    diag = obs.diag("piper_bridge")
    assert int(diag.get("commands_dropped", "0")) >= 3, diag

    assert _stop(runtime) == 0, logs()
    time.sleep(0.5)
    assert _stop(standin) == 0
    audit = json.loads(report.read_text())
    print({k: v for k, v in audit.items() if k != "recent_commands"})
    assert audit["commands_while_disabled"] == 0
    assert [e[1] for e in audit["enable_events"]] == [True]  # enabled once, still enabled
    assert audit["missing_names"] == 0
    assert audit["speed_unset"] == 0 and audit["effort_unset"] == 0
    assert audit["outside_limits"] == 0 and audit["gripper_out_of_range"] == 0
    assert audit["max_velocity_rad_s"] <= PIPER.max_velocity.max() * 1.05
    assert 42.0 <= audit["command_hz"] <= 55.0  # 50 Hz; a loaded 2-core box drops a few
    # safe stop: the stream of commands comes to rest (its last steps are zero) from a moving
    # arm, instead of ending mid-motion
    q = np.array([r[1][:6] for r in audit["recent_commands"]])
    steps = np.max(np.abs(np.diff(q, axis=0)), axis=1)
    assert np.max(steps[-25:-3]) > 1e-3, steps[-25:]  # it was moving (following the leader)
    assert np.all(steps[-2:] == 0.0), steps[-25:]


def test_dual_piper_one_policy_split_across_two_drivers(graph, tiny_engine, tmp_path):
    """piper_dual.launch.yaml: one 14-dim policy; each driver gets exactly its arm's half of
    every command, and the canonical state merges both drivers under the prefixed names."""
    domain, nodes, procs = graph
    reports = {side: tmp_path / f"{side}.json" for side in ("left", "right")}
    standins = _launch(
        [
            "launch/piper_dual_standin.launch.yaml",
            f"left_report:={reports['left']}",
            f"right_report:={reports['right']}",
        ],
        tmp_path / "standins.log",
        domain,
    )
    procs.append(standins)
    runtime = _launch(
        ["launch/piper_dual.launch.yaml", f"engine:={tiny_engine}", f"record_dir:={tmp_path}"],
        tmp_path / "runtime.log",
        domain,
    )
    procs.append(runtime)
    obs = Observer(
        {
            "command": "/piper_dual/joint_command",
            "state": "/piper_dual/joint_states",
            "left": "/left/joint_ctrl_single",
            "right": "/right/joint_ctrl_single",
            "left_state": "/left/joint_states_single",
            "right_state": "/right/joint_states_single",
        }
    )
    nodes.append((obs, Spinner(obs)))
    logs = lambda: (tmp_path / "runtime.log").read_text()[-3000:]  # noqa: E731
    assert obs.wait_for("left", 150, 90) and obs.wait_for("right", 150, 30), logs()
    time.sleep(1.0)

    commands = {_stamp(m): np.array(m.position) for m in obs.msgs("command")}
    left_idx = [DUAL.joint_names.index("left_" + j) for j in DRIVER_JOINTS]
    right_idx = [DUAL.joint_names.index("right_" + j) for j in DRIVER_JOINTS]
    matched = 0
    for side, idx in (("left", left_idx), ("right", right_idx)):
        for msg in obs.msgs(side):
            cmd = commands.get(_stamp(msg))
            if cmd is None:
                continue
            np.testing.assert_allclose(np.array(msg.position), cmd[idx], atol=1e-12)
            matched += 1
    assert matched >= 200

    def apart() -> list:
        """Merged states in which the two arms' halves differ (they start at the same pose
        and part once the policy moves them; a busy machine delays that)."""
        return [
            m
            for m in obs.msgs("state")
            if tuple(np.array(m.position)[left_idx]) != tuple(np.array(m.position)[right_idx])
        ]

    end = time.monotonic() + 60
    while len(apart()) < 100 and time.monotonic() < end:
        time.sleep(0.2)
    states = apart()
    assert len(states) >= 100, (len(obs.msgs("state")), logs())
    assert list(states[-1].name) == list(DUAL.joint_names)
    left = {tuple(m.position) for m in obs.msgs("left_state")}
    right = {tuple(m.position) for m in obs.msgs("right_state")}
    # every merged state is made of a sample of the left driver and one of the right driver
    # (the arms are apart, so a swap or a mix-up would show)
    found = [
        (
            tuple(np.array(m.position)[left_idx]) in left,
            tuple(np.array(m.position)[right_idx]) in right,
        )
        for m in states
    ]
    assert np.mean([a and b for a, b in found]) > 0.95, found[:10]

    assert _stop(runtime) == 0, logs()
    assert _stop(standins) == 0
    for side, path in reports.items():
        audit = json.loads(path.read_text())
        assert audit["commands"] > 100, side
        assert audit["commands_while_disabled"] == 0, side
        assert audit["outside_limits"] == 0 and audit["missing_names"] == 0, side
        assert 42.0 <= audit["command_hz"] <= 55.0, (side, audit["command_hz"])


def test_dual_piper_runs_an_exported_gigabrain0_checkpoint(graph, gb0_engine, tmp_path):
    """The published checkpoint's path end to end: `export --checkpoint` (the fixture), then
    piper_dual.launch.yaml against the driver stand-ins. The vla runs the engine with the
    official prompt (the live state's bins) and the 14-dim chunks reach both drivers."""
    from trajectory_msgs.msg import JointTrajectory

    domain, nodes, procs = graph
    instruction = "Pick up the Red_Cup and put it in the brown Box"
    standins = _launch(["launch/piper_dual_standin.launch.yaml"], tmp_path / "standins.log", domain)
    procs.append(standins)
    runtime = _launch(
        [
            "launch/piper_dual.launch.yaml",
            f"engine:={gb0_engine}",
            f"instruction:={instruction}",
            "inference_hz:=10.0",
            f"record_dir:={tmp_path}",
        ],
        tmp_path / "runtime.log",
        domain,
    )
    procs.append(runtime)
    obs = Observer({"left": "/left/joint_ctrl_single", "right": "/right/joint_ctrl_single"})
    chunks: list = []
    obs.create_subscription(
        JointTrajectory,
        "/piper_dual/action_chunk",
        lambda m: chunks.append((time.monotonic(), m)),
        OBSERVER,
    )
    nodes.append((obs, Spinner(obs)))
    logs = lambda: (tmp_path / "runtime.log").read_text()[-3000:]  # noqa: E731

    end = time.monotonic() + 120
    while time.monotonic() < end and len([c for c in chunks if c[1].points]) < 40:
        time.sleep(0.2)
    full = [(t, m) for t, m in chunks if m.points]
    assert len(full) >= 40, logs()
    t0, last = full[10][0], full[-1][0]
    print(f"gigabrain-0 engine: {len(full)} chunks, {(len(full) - 11) / (last - t0):.2f} Hz")
    msg = full[-1][1]
    assert list(msg.joint_names) == list(DUAL.joint_names)
    assert len(msg.points) == 50
    # the vla's diagnostics carry the official prompt built from the live state
    since, diag = time.monotonic(), {}
    while not diag and time.monotonic() < since + 15:
        for arr in obs.msgs("diag", since):
            for st in arr.status:
                if st.name.endswith("vla: inference") and st.values:
                    diag = {kv.key: kv.value for kv in st.values}
        time.sleep(0.2)
    assert diag, logs()
    prompt = diag["prompt"]
    assert prompt.startswith("Task: pick up the red cup and put it in the brown box, State: ")
    bins = prompt.split("State: ")[1].rstrip(";\n").split()
    assert len(bins) == 14 and all(-1 <= int(b) <= 255 for b in bins)
    assert diag["variant"] == "gigabrain-0" and diag["embodiment_slot"] == "0"
    assert int(diag["prompt_tokens"]) > 20
    print({k: diag[k] for k in ("chunks_hz", "latency_p50_ms", "deadline_misses")})
    assert obs.wait_for("left", 50, 30) and obs.wait_for("right", 50, 30), logs()
    assert _stop(runtime) == 0, logs()
    assert _stop(standins) == 0


def test_standard_mode_on_an_engine_without_world_model_is_one_error_line(gb0_engine, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "gigabrain_runtime",
            "node",
            "vla",
            "--ros-args",
            "-p",
            f"engine:={gb0_engine}",
            "-p",
            "robot:=piper_dual",
            "-p",
            "mode:=standard",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "ROS_DOMAIN_ID": str(fresh_domain())},
    )
    assert proc.returncode != 0
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "standard" in ln]
    assert lines and "standard needs a world model" in lines[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
