"""The PiPER bridge core without DDS: merging arms into the canonical state, holding on silence,
gating commands on enabling, refusing bad commands, and knowing when braking has ended."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from gigabrain_runtime.diagnostics.stats import Level
from gigabrain_runtime.params.nodes import PiperBridgeParams
from gigabrain_runtime.robots.piper.bridge import QUIET_S, PiperBridge
from gigabrain_runtime.robots.piper.piper_ros import DRIVER_JOINTS

DUAL = PiperBridgeParams(
    robot="piper_dual", arm_namespaces=("left", "right"), arm_prefixes=("left_", "right_")
)
SINGLE = PiperBridgeParams()
NAMES = list(DRIVER_JOINTS)
LEFT = [0.1, 0.5, -0.4, 0.2, 0.3, -0.1, 0.02]
RIGHT = [-0.2, 0.9, -0.8, -0.3, 0.1, 0.4, 0.06]


def _merged_by_name(bridge: PiperBridge, q: np.ndarray) -> dict[str, float]:
    return dict(zip(bridge.embodiment.joint_names, q.tolist(), strict=True))


def test_arm_zero_paces_the_merged_state_with_the_oldest_stamp():
    b = PiperBridge(DUAL)
    assert b.on_state(1, NAMES, RIGHT, stamp_ns=2_000, now=10.0) is None  # arm 1 only stores
    merged = b.on_state(0, NAMES, LEFT, stamp_ns=3_000, now=10.001)
    assert merged is not None and merged.stamp_ns == 2_000
    by_name = _merged_by_name(b, merged.positions)
    for j, joint in enumerate(DRIVER_JOINTS):
        assert by_name["left_" + joint] == pytest.approx(LEFT[j])
        assert by_name["right_" + joint] == pytest.approx(RIGHT[j])


def test_nothing_is_published_while_one_arm_is_silent():
    b = PiperBridge(DUAL)
    assert b.on_state(0, NAMES, LEFT, 1, now=0.0) is None  # right arm never heard
    b.on_state(1, NAMES, RIGHT, 1, now=0.0)
    assert b.on_state(0, NAMES, LEFT, 2, now=0.05) is not None
    later = 0.05 + DUAL.state_timeout_s + 0.01  # the right arm went quiet
    assert b.on_state(0, NAMES, LEFT, 3, now=later) is None
    s = b.status(later)
    assert s.level == Level.ERROR and "right_driver state" in s.message


def test_the_state_timeout_changes_while_running():
    b = PiperBridge(DUAL)
    b.on_state(1, NAMES, RIGHT, 1, now=0.0)
    assert b.on_state(0, NAMES, LEFT, 2, now=0.5) is None
    b.set_params(replace(DUAL, state_timeout_s=1.0))
    assert b.on_state(0, NAMES, LEFT, 3, now=0.6) is not None


def test_a_malformed_driver_state_is_dropped_and_named():
    b = PiperBridge(replace(SINGLE, enable_on_start=False))
    assert b.on_state(0, NAMES, LEFT, 1, now=0.0) is not None
    assert b.on_state(0, NAMES[:6], LEFT[:6], 2, now=0.01) is None
    s = b.status(0.01)
    assert s.level == Level.WARN and "arm0.joint_states_single" in s.message
    assert "missing joints ['gripper']" in s.message
    assert b.on_state(0, NAMES, LEFT, 3, now=0.02) is not None
    assert b.status(0.02).level == Level.OK  # the error clears with the next good state


def test_leader_frames_whose_stamp_does_not_advance_are_ignored():
    b = PiperBridge(SINGLE)
    assert b.on_leader(0, NAMES, LEFT, stamp_ns=0, now=0.0) is None  # the driver's no-leader frame
    first = b.on_leader(0, NAMES, LEFT, stamp_ns=5, now=0.0)
    assert first is not None and first.stamp_ns == 5
    assert b.on_leader(0, NAMES, RIGHT, stamp_ns=5, now=0.01) is None  # a repeat


def test_commands_wait_for_enable_and_settle_then_reach_each_arm():
    b = PiperBridge(DUAL)
    q = dict(zip(["left_" + n for n in NAMES] + ["right_" + n for n in NAMES], LEFT + RIGHT))
    names, pos = list(q), list(q.values())
    assert b.on_command(names, pos, now=0.0) == []  # no driver enabled yet
    assert b.should_enable(0, 0.0, driver_listening=True)
    # repeated through the settle window (a driver that matches late still gets it) ...
    assert b.should_enable(0, 0.1, driver_listening=True)
    assert not b.should_enable(1, 0.0, driver_listening=False)  # driver not there yet
    assert b.on_command(names, pos, now=0.1) == []  # enabled, not settled
    # ... and never once the arm is commanded (re-enabling resets the driver's gripper)
    assert not b.should_enable(0, DUAL.enable_settle_s, driver_listening=True)
    out = b.on_command(names, pos, now=DUAL.enable_settle_s + 0.01)
    assert [c.arm for c in out] == [0]  # the right arm is still not enabled
    assert out[0].position == pytest.approx(LEFT)
    assert out[0].name == NAMES and out[0].velocity[6] == DUAL.speed_percent
    assert out[0].effort[6] == DUAL.gripper_effort
    b.should_enable(1, 1.0, driver_listening=True)
    out = b.on_command(names, pos, now=1.0 + DUAL.enable_settle_s)
    assert [c.arm for c in out] == [0, 1] and out[1].position == pytest.approx(RIGHT)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"joint2": 3.5}, "joint2=3.5000 outside"),  # beyond the URDF limit
        ({"joint3": float("nan")}, "joint3 is not finite"),
    ],
)
def test_a_bad_command_is_dropped_so_the_arm_holds_and_it_is_named(change, named):
    b = PiperBridge(replace(SINGLE, enable_on_start=False))
    b.on_state(0, NAMES, LEFT, 1, now=0.0)
    good = dict(zip(NAMES, LEFT, strict=True))
    assert len(b.on_command(list(good), list(good.values()), now=0.0)) == 1
    bad = {**good, **change}
    assert b.on_command(list(bad), list(bad.values()), now=0.02) == []
    s = b.status(0.02)
    assert b.commands_dropped == 1 and "joint_command" in s.message and named in s.message
    assert s.level == Level.WARN


def test_a_command_missing_a_joint_is_refused():
    b = PiperBridge(replace(SINGLE, enable_on_start=False))
    b.on_state(0, NAMES, LEFT, 1, now=0.0)
    assert b.on_command(NAMES[:6], LEFT[:6], now=0.0) == []
    assert "missing joints ['gripper']" in b.status(0.0).message


def test_braking_ends_at_rest_or_when_the_stream_goes_quiet_or_the_grace_runs_out():
    """On shutdown the bridge forwards the executor's braking stream until it is at rest (the
    resting command repeated), through a stall of the executor mid-brake (a loaded machine);
    an executor that is gone ends it after QUIET_S, one that never stops after the grace."""
    b = PiperBridge(replace(SINGLE, enable_on_start=False, shutdown_grace_s=1.0))

    def send(joint1: float, t: float) -> None:
        b.on_command(NAMES, [joint1, *LEFT[1:]], now=t)

    for k in range(5):  # braking: each step smaller
        send(0.1 + 0.01 * (5 * k - k * k / 2), 5.0 + 0.02 * k)
    assert not b.braking_done(5.09, shutdown_started=5.0)  # still moving
    assert not b.braking_done(5.08 + 0.3, shutdown_started=5.0)  # a 0.3 s stall mid-brake
    send(0.3, 5.4)
    send(0.3, 5.42)  # at rest: the resting command twice ...
    assert not b.braking_done(5.43, shutdown_started=5.0)
    send(0.3, 5.44)  # ... three times in a row
    assert b.braking_done(5.45, shutdown_started=5.0)

    gone = PiperBridge(replace(SINGLE, enable_on_start=False, shutdown_grace_s=1.0))
    gone.on_command(NAMES, LEFT, now=5.0)
    assert not gone.braking_done(5.0 + QUIET_S - 0.01, shutdown_started=5.0)
    assert gone.braking_done(5.0 + QUIET_S + 0.01, shutdown_started=5.0)

    endless = PiperBridge(replace(SINGLE, enable_on_start=False, shutdown_grace_s=1.0))
    for k in range(200):  # a stream that never comes to rest: the grace period caps the wait
        endless.on_command(NAMES, [0.001 * k, *LEFT[1:]], now=5.0 + 0.01 * k)
        if endless.braking_done(5.0 + 0.01 * k, shutdown_started=5.0):
            break
    assert 0.99 <= 0.01 * k <= 1.01


def test_a_prefix_that_names_no_joint_of_the_embodiment_is_refused():
    with pytest.raises(ValueError, match="arm_prefixes: 'top_' names joint 'top_joint1'"):
        PiperBridge(replace(DUAL, arm_prefixes=("left_", "top_")))


def test_status_waits_for_each_driver_before_enabling():
    b = PiperBridge(DUAL)
    s = b.status(0.0, ["/left/enable_flag", "/right/enable_flag"])
    assert s.level == Level.STALE  # no driver state yet
    assert s.values["left_enabled"] == "false"
    b.on_state(1, NAMES, RIGHT, 1, now=0.0)
    b.on_state(0, NAMES, LEFT, 1, now=0.0)
    s = b.status(0.0, ["/left/enable_flag", "/right/enable_flag"])
    assert s.level == Level.WARN and "/right/enable_flag" in s.message
