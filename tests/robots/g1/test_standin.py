"""The fake G1's arm_sdk checker: it passes what the bridge sends and catches each broken rule."""

from __future__ import annotations

import numpy as np
import pytest

from gigabrain_runtime.robots.embodiment import get_embodiment
from gigabrain_runtime.robots.g1 import unitree_hg as hg
from gigabrain_runtime.robots.g1.arm_sdk import ArmSdkBridge, ArmSdkConfig
from gigabrain_runtime.robots.g1.standin import Q_DEFAULT, ArmSdkChecker

G1 = get_embodiment("g1")
CFG = ArmSdkConfig.load()


def checker() -> ArmSdkChecker:
    return ArmSdkChecker(CFG, G1)


def bridge_stream() -> list[np.ndarray]:
    """What the bridge sends through a ramp-in, an e-stop ramp-out, a ramp-in and a shutdown."""
    bridge = ArmSdkBridge(CFG, G1)
    state = hg.new_low_state()
    state["motor_state"]["q"] = Q_DEFAULT
    hg.fill_crc(state)
    command = Q_DEFAULT[bridge.motors] + 0.1
    out, t = [], 0.0
    for i in range(500):
        t += CFG.period_s
        if i == 150:
            bridge.set_estop(True, t)
        if i == 200:
            bridge.set_estop(False, t)
        if i == 330:
            bridge.request_shutdown()
        bridge.on_lowstate(state, t)
        bridge.on_command(G1.joint_names, command, t)
        c = bridge.step(t)
        if c is not None:
            out.append(bridge.encode(c))
    return out


def test_the_bridges_stream_passes_every_check():
    ch = checker()
    stream = bridge_stream()
    for i, record in enumerate(stream):
        assert ch.check(record, i * CFG.period_s) == []
    s = ch.summary()
    assert s["violations"] == 0 and s["crc_failures"] == 0
    assert s["max_weight_step_up"] == pytest.approx(CFG.max_weight_step_in, rel=1e-5)
    assert s["ramp_in_s"] == pytest.approx(CFG.ramp_in_s, abs=CFG.period_s + 1e-6)
    assert s["final_weight"] == 0.0


def good_message(weight: float = 0.0) -> np.ndarray:
    bridge = ArmSdkBridge(CFG, G1)
    state = hg.new_low_state()
    state["motor_state"]["q"] = Q_DEFAULT
    hg.fill_crc(state)
    bridge.on_lowstate(state, 0.0)
    record = bridge.encode(bridge.step(0.0))
    record["motor_cmd"]["q"][CFG.weight_index] = weight
    hg.fill_crc(record)
    return record


def broken(edit) -> np.ndarray:
    record = good_message()
    edit(record["motor_cmd"])
    hg.fill_crc(record)
    return record


def _bad_crc() -> np.ndarray:
    record = good_message()
    record["crc"] = int(record["crc"]) ^ 0x4
    return record


@pytest.mark.parametrize(
    ("record", "rule"),
    [
        (lambda: _bad_crc(), "bad CRC"),
        (lambda: good_message(1.5), "outside [0, 1]"),
        (lambda: good_message(0.5), "weight jumped up"),
        (lambda: broken(lambda mc: mc["kp"].__setitem__(3, 10.0)), "legs"),
        (lambda: broken(lambda mc: mc["q"].__setitem__(0, 0.1)), "legs"),
        (lambda: broken(lambda mc: mc["kd"].__setitem__(31, 1.0)), "gains on motors nobody"),
        (lambda: broken(lambda mc: mc["kp"].__setitem__(18, 0.0)), "without positive kp"),
        (lambda: broken(lambda mc: mc["q"].__setitem__(18, 3.0)), "left_elbow_joint"),
    ],
)
def test_each_broken_rule_is_caught(record, rule):
    ch = checker()
    found = ch.check(record(), 0.0)
    assert any(rule in f for f in found), found
    assert ch.violation_count == len(found) >= 1


def test_a_sudden_drop_of_the_weight_is_caught():
    ch = checker()
    w = 0.0
    for i in range(60):
        w = min(1.0, w + CFG.max_weight_step_in)
        assert ch.check(good_message(w), i * 0.02) == []
    found = ch.check(good_message(0.0), 1.3)
    assert any("weight jumped down" in f for f in found)


LOCALHOST_DDS = (
    '<CycloneDDS><Domain id="any"><General><Interfaces><NetworkInterface name="lo"/>'
    "</Interfaces><AllowMulticast>false</AllowMulticast></General></Domain></CycloneDDS>"
)


@pytest.mark.ros  # opens a CycloneDDS participant
def test_command_line_runs_for_the_given_time_and_writes_its_report(tmp_path, monkeypatch, capsys):
    pytest.importorskip("cyclonedds")
    import json
    import os

    from gigabrain_runtime.robots.g1.standin import main

    monkeypatch.setenv("CYCLONEDDS_URI", LOCALHOST_DDS)
    domain = 201 + int(os.environ.get("ROS_DOMAIN_ID", "1")) % 30  # above any test's ROS domain
    report = tmp_path / "fake.json"
    args = ["--domain", str(domain), "--seconds", "0.5", "--report", str(report)]
    assert main(args) == 0  # nobody commanded it, so nothing broke a rule
    summary = json.loads(report.read_text())
    assert summary["arm_sdk_messages"] == 0 and summary["lowstate_sent"] > 0
    assert "0 violations" in capsys.readouterr().out
    assert main(["--seconds", "-1"]) == 2
