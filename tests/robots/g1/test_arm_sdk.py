"""The arm_sdk bridge core: joint mapping as data, the blend-weight ramp, holding on every loss."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import yaml

from gigabrain_runtime.robots.embodiment import get_embodiment
from gigabrain_runtime.robots.g1 import unitree_hg as hg
from gigabrain_runtime.robots.g1.arm_sdk import (
    FINAL_ZERO_MESSAGES,
    ArmSdkBridge,
    ArmSdkConfig,
    BridgeState,
    WeightRamp,
    default_interface_path,
)
from gigabrain_runtime.robots.joint_calibration import JointCalibration

G1 = get_embodiment("g1")
CFG = ArmSdkConfig.load()
PERIOD = CFG.period_s
MID = (G1.lower + G1.upper) / 2


def lowstate(q_joints: np.ndarray, motors: np.ndarray, *, tick: int = 0) -> np.ndarray:
    rec = hg.new_low_state()
    rec["motor_state"]["q"][motors] = q_joints
    rec["motor_state"]["dq"][motors] = 0.1
    rec["motor_state"]["tau_est"][motors] = 2.0
    rec["tick"] = tick
    hg.fill_crc(rec)
    return rec


class Rig:
    """Drives a bridge the way the node does: 500 Hz states, 50 Hz commands and ticks."""

    def __init__(self, cfg: ArmSdkConfig = CFG, calibration: JointCalibration | None = None):
        self.bridge = ArmSdkBridge(cfg, G1, calibration)
        self.t = 0.0
        self.measured = MID.copy()  # driver frame, embodiment order
        self.command = MID.copy()  # canonical
        self.send_states = True
        self.send_commands = True
        self.delivered = None  # the last measured position the bridge received

    def tick(self):
        self.t += PERIOD
        if self.send_states:
            self.bridge.on_lowstate(lowstate(self.measured, self.bridge.motors), self.t)
            self.delivered = self.measured.copy()
        if self.send_commands:
            assert self.bridge.on_command(G1.joint_names, self.command, self.t) == ""
        return self.bridge.step(self.t)

    def run(self, n):
        return [self.tick() for _ in range(n)]


def ramp_in(rig: Rig):
    out = rig.run(int(round(CFG.ramp_in_s / PERIOD)) + 2)
    assert rig.bridge.weight == 1.0 and rig.bridge.state is BridgeState.ACTIVE
    return out


# ---- the mapping, as data ---------------------------------------------------------------------
def test_packaged_mapping_puts_each_joint_on_its_unitree_motor():
    bridge = ArmSdkBridge(CFG, G1)
    motor = dict(zip(G1.joint_names, bridge.motors.tolist()))
    assert [motor[n] for n in G1.joint_names[:3]] == [12, 13, 14]  # waist yaw, roll, pitch
    left = [n for n in G1.joint_names if n.startswith("left_")]
    right = [n for n in G1.joint_names if n.startswith("right_")]
    order = ["shoulder_pitch", "shoulder_roll", "shoulder_yaw", "elbow", "wrist_roll",
             "wrist_pitch", "wrist_yaw"]  # fmt: skip
    assert [motor[f"left_{j}_joint"] for j in order] == list(range(15, 22))
    assert [motor[f"right_{j}_joint"] for j in order] == list(range(22, 29))
    assert len(left) == len(right) == 7
    assert CFG.weight_index == 29 and CFG.protected_motors == tuple(range(12))
    assert CFG.command_hz == 50.0 and CFG.ramp_in_s == CFG.ramp_out_s == 2.0
    assert set(CFG.kp) == {60.0} and set(CFG.kd) == {1.5}


def test_mapping_file_is_not_an_embodiment():
    # robots/data/*.yaml are loaded as embodiments; the interface file must live elsewhere
    assert default_interface_path().parent.name == "interfaces"


def _data():
    return yaml.safe_load(default_interface_path().read_text())


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["joints"]["waist_roll_joint"].update(motor=12), "share a motor"),
        (lambda d: d["joints"]["waist_roll_joint"].update(motor=29), "weight slot"),
        (lambda d: d["joints"]["waist_roll_joint"].update(motor=3), "protected motor"),
        (lambda d: d["joints"]["waist_roll_joint"].update(motor=35), r"waist_roll_joint\.motor"),
        (lambda d: d["joints"]["waist_roll_joint"].update(group="hip"), "not a gains group"),
        (lambda d: d["gains"]["wrist"].update(kp=-1.0), "kp"),
        (lambda d: d.update(ramp_in_s=0), "ramp_in_s"),
        (lambda d: d.update(command_timeout_s=0.001), "command_timeout_s"),
        (lambda d: d.update(wieght_index=29), "unknown fields"),
    ],
)
def test_bad_mapping_files_are_errors_naming_the_field(edit, message):
    data = _data()
    edit(data)
    with pytest.raises(ValueError, match=message):
        ArmSdkConfig.from_dict(data, source="g1_arm_sdk.yaml")


def test_mapping_must_cover_exactly_the_embodiments_joints():
    data = _data()
    del data["joints"]["left_wrist_yaw_joint"]
    with pytest.raises(ValueError, match="missing \\['left_wrist_yaw_joint'\\]"):
        ArmSdkBridge(ArmSdkConfig.from_dict(data), G1)


# ---- the weight ramp --------------------------------------------------------------------------
def test_weight_ramp_slope_and_late_ticks():
    ramp = WeightRamp(ramp_in_s=2.0, ramp_out_s=1.0, period_s=0.02)
    steps = [ramp.step(1.0, 0.02) for _ in range(100)]
    assert steps[-1] == pytest.approx(1.0) and steps[-2] < 1.0  # exactly ramp_in_s
    assert np.allclose(np.diff([0.0, *steps]), 0.01)
    ramp.step(0.0, 0.1)  # a tick 5 periods late still moves one period's worth
    assert ramp.weight == pytest.approx(1.0 - 0.02)


def test_nothing_is_sent_before_the_first_lowstate():
    rig = Rig()
    rig.send_states = False
    assert rig.run(10) == [None] * 10
    assert rig.bridge.state is BridgeState.WAITING


def test_weight_ramps_in_at_the_configured_slope_to_the_command():
    rig = Rig()
    rig.command = MID + 0.1
    out = ramp_in(rig)
    weights = np.array([c.weight for c in out])
    assert weights[0] == pytest.approx(CFG.max_weight_step_in)  # from 0, one step per tick
    assert np.all(np.diff(weights) <= CFG.max_weight_step_in + 1e-12)
    assert np.allclose(out[-1].q, rig.command)
    record = rig.bridge.encode(out[-1])
    assert hg.check_crc(record)
    mc = record["motor_cmd"]
    assert mc["q"][29] == 1.0
    assert np.allclose(mc["q"][rig.bridge.motors], rig.command)


def test_encoded_message_commands_only_the_mapped_motors():
    rig = Rig()
    record = rig.bridge.encode(ramp_in(rig)[-1])
    mc = record["motor_cmd"]
    legs = mc[:12]
    assert all(np.all(legs[f] == 0) for f in legs.dtype.names)
    others = np.setdiff1d(np.arange(35), rig.bridge.motors)
    assert np.all(mc["kp"][others] == 0) and np.all(mc["kd"][others] == 0)
    assert np.all(mc["kp"][rig.bridge.motors] == 60.0) and np.all(
        mc["kd"][rig.bridge.motors] == 1.5
    )
    assert np.all(mc["dq"] == 0) and np.all(mc["tau"] == 0)


LOSSES = {
    "estop": lambda rig: rig.bridge.set_estop(True, rig.t),
    "command": lambda rig: setattr(rig, "send_commands", False),
    "state": lambda rig: setattr(rig, "send_states", False),
    "shutdown": lambda rig: rig.bridge.request_shutdown(),
}


@pytest.mark.parametrize("loss", list(LOSSES))
def test_every_loss_ramps_out_holding_the_measured_position(loss):
    rig = Rig()
    rig.command = MID + 0.2
    ramp_in(rig)
    rig.measured = MID + 0.15  # the arm lags its command
    rig.tick()
    LOSSES[loss](rig)
    out, snapshot = [], None
    for _ in range(int((CFG.ramp_out_s + CFG.command_timeout_s) / PERIOD) + 10):
        rig.measured = rig.measured + 0.001  # the arm keeps moving under Unitree's controller
        rig.command = rig.command + 0.001
        c = rig.tick()
        if c is None:
            break
        if c.reason and snapshot is None:
            snapshot = rig.delivered.copy()  # what the bridge knew at the moment of loss
        out.append(c)
    weights = np.array([1.0] + [c.weight for c in out])
    # (the command and state timeouts pass before the ramp starts)
    assert np.all(np.diff(weights) <= 0)
    assert np.all(-np.diff(weights) <= CFG.max_weight_step_out + 1e-12)
    assert weights[-1] == 0.0
    ramping = [c for c in out if c.state is BridgeState.RAMPING_OUT]
    assert len(ramping) == int(round(CFG.ramp_out_s / PERIOD)) - 1
    held = np.array([c.q for c in ramping])
    # the snapshot taken at the moment of loss, never the stale command nor a moving target
    assert np.allclose(held, snapshot, atol=1e-9)
    assert not np.allclose(held[0], rig.command, atol=0.05)
    assert rig.bridge.losses[loss] == 1


def test_e_stop_needs_a_fresh_command_after_release_and_ramps_from_the_current_weight():
    rig = Rig()
    ramp_in(rig)
    rig.bridge.set_estop(True, rig.t)
    rig.send_commands = False  # nothing new arrives: the last command predates the release
    rig.run(20)
    w = rig.bridge.weight
    assert 0.0 < w < 1.0
    rig.bridge.set_estop(False, rig.t)
    rig.run(5)
    assert rig.bridge.weight < w  # still ramping out: no fresh command yet
    w = rig.bridge.weight
    rig.send_commands = True
    c = rig.tick()
    assert c.reason == "" and c.weight == pytest.approx(w + CFG.max_weight_step_in)


def test_command_loss_then_recovery_ramps_in_from_where_the_weight_is():
    rig = Rig()
    ramp_in(rig)
    rig.send_commands = False
    rig.run(int(CFG.command_timeout_s / PERIOD) + 30)
    w = rig.bridge.weight
    assert 0.0 < w < 1.0 and "joint_command" in rig.bridge.reason
    rig.send_commands = True
    weights = [c.weight for c in rig.run(10)]
    assert weights[0] == pytest.approx(w + CFG.max_weight_step_in)
    assert np.all(np.diff(weights) > 0)


def test_at_weight_zero_messages_keep_flowing_and_follow_the_measured_position():
    rig = Rig()
    rig.send_commands = False
    out = rig.run(5)
    assert all(c.weight == 0.0 and c.state is BridgeState.IDLE for c in out)
    rig.measured = MID + 0.05
    assert np.allclose(rig.tick().q, MID + 0.05)


def test_shutdown_sends_weight_zero_a_few_times_then_stops():
    rig = Rig()
    ramp_in(rig)
    rig.bridge.request_shutdown()
    out = []
    while (c := rig.tick()) is not None:
        out.append(c)
        assert len(out) < 500
    zeros = [c for c in out if c.weight == 0.0]
    assert len(zeros) == FINAL_ZERO_MESSAGES
    assert rig.bridge.finished and rig.bridge.state is BridgeState.RELEASED
    assert rig.tick() is None


def test_shutdown_before_any_lowstate_finishes_at_once():
    rig = Rig()
    rig.bridge.request_shutdown()
    rig.send_states = False
    assert rig.tick() is None and rig.bridge.finished


def test_calibration_is_applied_both_ways():
    offsets = np.linspace(-0.05, 0.05, G1.dof)
    signs = np.where(np.arange(G1.dof) % 2 == 0, 1.0, -1.0)
    cal = JointCalibration(joint_names=G1.joint_names, offsets=offsets, signs=signs)
    bridge = ArmSdkBridge(CFG, G1, cal)
    raw = MID + 0.02
    reading = bridge.on_lowstate(lowstate(raw, bridge.motors), 0.0)
    assert np.allclose(reading.position, signs * (raw - offsets), atol=1e-6)
    assert np.allclose(reading.velocity, signs * 0.1, atol=1e-6)
    assert np.allclose(reading.effort, signs * 2.0, atol=1e-6)
    canonical = np.clip(MID + 0.1, G1.lower, G1.upper)
    t = 0.0
    for _ in range(3):
        t += PERIOD
        bridge.on_lowstate(lowstate(raw, bridge.motors), t)
        assert bridge.on_command(G1.joint_names, canonical, t) == ""
        c = bridge.step(t)
    record = bridge.encode(c)
    sent = record["motor_cmd"]["q"][bridge.motors].astype(np.float64)
    assert np.allclose(sent, signs * canonical + offsets, atol=1e-6)


def test_commands_in_any_joint_order_land_on_the_right_motor():
    bridge = ArmSdkBridge(CFG, G1)
    names = list(reversed(G1.joint_names))
    values = np.clip(np.linspace(-0.3, 0.3, G1.dof), G1.lower, G1.upper)
    assert bridge.on_command(names, values, 0.0) == ""
    assert bridge.on_lowstate(lowstate(MID, bridge.motors), 0.0) is not None
    c = bridge.step(0.0)
    assert c.reason == ""
    by_name = dict(zip(names, values))
    assert np.allclose(c.q, [by_name[n] for n in G1.joint_names])


@pytest.mark.parametrize(
    ("kind", "mutate"),
    [
        ("names", lambda n, p: (n[:-1], p[:-1])),
        ("names", lambda n, p: ([*n[:-1], "left_knee_joint"], p)),
        ("names", lambda n, p: (n, p[:-1])),
        ("non_finite", lambda n, p: (n, np.where(np.arange(len(p)) == 4, np.nan, p))),
        ("limits", lambda n, p: (n, np.where(np.arange(len(p)) == 6, 3.0, p))),  # left elbow
    ],
)
def test_invalid_commands_are_dropped_counted_and_the_last_good_one_held(kind, mutate):
    rig = Rig()
    rig.command = MID + 0.05
    ramp_in(rig)
    good = rig.bridge.encode(rig.tick())["motor_cmd"]["q"][rig.bridge.motors].copy()
    names, pos = mutate(list(G1.joint_names), MID - 0.3)
    why = rig.bridge.on_command(names, pos, rig.t)
    assert why and why == rig.bridge.last_invalid
    assert rig.bridge.invalid[kind] == 1
    rig.send_commands = False
    c = rig.bridge.step(rig.t + PERIOD)
    assert np.allclose(c.q, good, atol=1e-6) and c.weight == 1.0


def test_commands_just_beyond_a_limit_are_clipped_not_dropped():
    bridge = ArmSdkBridge(CFG, G1)
    pos = MID.copy()
    pos[6] = G1.upper[6] + 0.5 * CFG.limit_tolerance_rad
    assert bridge.on_command(G1.joint_names, pos, 0.0) == ""
    bridge.on_lowstate(lowstate(MID, bridge.motors), 0.0)
    assert bridge.step(0.0).q[6] == G1.upper[6]


def test_lowstate_with_a_bad_crc_is_dropped_and_counted():
    bridge = ArmSdkBridge(CFG, G1)
    rec = lowstate(MID, bridge.motors)
    rec["crc"] = int(rec["crc"]) ^ 0x10
    assert bridge.on_lowstate(rec, 0.0) is None
    assert bridge.crc_failures == 1 and bridge.step(0.0) is None  # still nothing measured
    relaxed = ArmSdkBridge(CFG, G1, check_state_crc=False)
    assert relaxed.on_lowstate(rec, 0.0) is not None and relaxed.crc_failures == 1


def test_faster_ramps_from_parameters():
    cfg = replace(CFG, ramp_in_s=0.5, ramp_out_s=0.25)
    assert cfg.max_weight_step_in == pytest.approx(0.04)
    assert cfg.max_weight_step_out == pytest.approx(0.08)
    with pytest.raises(ValueError, match="ramp_out_s"):
        replace(CFG, ramp_out_s=-1.0)
