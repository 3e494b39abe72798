"""Joint positions are checked against the embodiment's limits at every door (measured states,
commands, model outputs); the error names the field, the joint, the value and, in a trajectory,
the point."""

from __future__ import annotations

import numpy as np
import pytest

from gigabrain_runtime.robots.embodiment import LIMIT_MARGIN, get_embodiment

PIPER = get_embodiment("piper")
MID = (PIPER.lower + PIPER.upper) / 2
RANGE = PIPER.upper - PIPER.lower


def test_positions_inside_the_limits_pass_and_come_back_as_float64():
    out = PIPER.check_positions(MID.tolist(), field="joint_states")
    assert out.dtype == np.float64 and np.array_equal(out, MID)


def test_a_command_outside_the_limits_names_the_joint_and_value():
    q = MID.copy()
    q[3] = 2.0
    with pytest.raises(
        ValueError, match=r"joint_command: joint4=2.0000 outside \[-1.7450, 1.7450\]$"
    ):
        PIPER.check_positions(q, field="joint_command")


def test_a_measured_state_may_overshoot_by_the_margin_but_not_more():
    q = MID.copy()
    q[1] = PIPER.upper[1] + 0.9 * LIMIT_MARGIN * RANGE[1]  # an encoder reading past the stop
    PIPER.check_positions(q, field="joint_states", margin=LIMIT_MARGIN)
    q[1] = 50.0  # a unit or wiring fault
    with pytest.raises(
        ValueError, match=r"joint_states: joint2=50.0000 outside .* by more than 0.1 of its range"
    ):
        PIPER.check_positions(q, field="joint_states", margin=LIMIT_MARGIN)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 1e308])
def test_non_finite_and_absurd_values_are_refused(bad):
    q = MID.copy()
    q[0] = bad
    with pytest.raises(ValueError, match="joint_states: joint1"):
        PIPER.check_positions(q, field="joint_states", margin=LIMIT_MARGIN)


def test_a_trajectory_names_the_first_bad_point():
    traj = np.tile(MID, (10, 1))
    traj[6, 2] = np.nan
    traj[8, 0] = 99.0
    with pytest.raises(ValueError, match="action_chunk: point 6 joint3 is not finite"):
        PIPER.check_positions(traj, field="action_chunk", margin=LIMIT_MARGIN)


def test_the_wrong_number_of_joints_is_named():
    with pytest.raises(
        ValueError, match=r"joint_states: expected 7 positions per point, got \(6,\)"
    ):
        PIPER.check_positions(MID[:6], field="joint_states")
