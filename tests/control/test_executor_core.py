"""Blending, latency compensation, the safety filter and the executor state machine."""

from __future__ import annotations

import numpy as np
import pytest

from gigabrain_runtime.control.blending import crossfade, smoothstep, temporal_ensemble
from gigabrain_runtime.control.chunk import TimedChunk
from gigabrain_runtime.control.executor import ChunkExecutor, ExecState, ExecutorConfig, StopLog
from gigabrain_runtime.control.safety import MotionLimiter, SafetyLimits
from gigabrain_runtime.robots.embodiment import EMBODIMENTS, get_embodiment

PIPER = get_embodiment("piper")
HZ = 50.0
DT = 1.0 / HZ


def ramp_chunk(start, step, t0, h=50, dof=7):
    pos = np.asarray(start, dtype=float)[None] + step * np.arange(1, h + 1)[:, None] * np.ones(dof)
    return TimedChunk(positions=pos, t0_s=t0, dt_s=DT)


def mid():
    return (PIPER.lower + PIPER.upper) / 2


# ---- chunk timing / latency compensation ---------------------------------------------------------
def test_point_i_is_due_at_t0_plus_i_plus_one_periods():
    c = ramp_chunk(np.zeros(7), 0.01, t0=10.0)
    np.testing.assert_allclose(c.sample(10.0 + DT), c.positions[0])
    np.testing.assert_allclose(c.sample(10.0 + 5 * DT), c.positions[4])
    np.testing.assert_allclose(c.sample(10.0 + 5.5 * DT), (c.positions[4] + c.positions[5]) / 2)


def test_points_whose_time_has_passed_are_skipped():
    """A chunk that arrives 120 ms late starts from the point due now, not from point 0."""
    c = ramp_chunk(np.zeros(7), 0.01, t0=0.0)
    late = 0.12
    assert c.remaining(late) == 50 - 6
    np.testing.assert_allclose(c.sample(late), c.positions[5])


def test_nan_in_a_chunk_is_rejected_naming_point_and_joint():
    pos = np.zeros((50, 7))
    pos[3, 2] = np.nan
    with pytest.raises(
        ValueError, match=r"chunk.positions: non-finite value nan at point 3, joint index 2"
    ):
        TimedChunk(positions=pos, t0_s=0.0, dt_s=DT)


# ---- blending ------------------------------------------------------------------------------------
def test_crossfade_is_continuous_at_both_ends_of_the_window():
    old = TimedChunk(positions=np.zeros((50, 7)), t0_s=0.0, dt_s=DT)
    new = TimedChunk(positions=np.ones((50, 7)), t0_s=0.0, dt_s=DT)
    start, window = 0.2, 0.2
    np.testing.assert_allclose(crossfade(old, new, start, start, window), np.zeros(7))
    np.testing.assert_allclose(crossfade(old, new, start + window, start, window), np.ones(7))
    half = crossfade(old, new, start + window / 2, start, window)
    np.testing.assert_allclose(half, 0.5 * np.ones(7))
    # smoothstep has zero slope at the ends: tiny steps right after the window opens
    eps = 1e-3
    assert smoothstep(eps) < 1e-5


def test_temporal_ensemble_weights_the_newest_chunk_by_k():
    a = TimedChunk(positions=np.zeros((50, 1)), t0_s=0.0, dt_s=DT)
    b = TimedChunk(positions=np.ones((50, 1)), t0_s=0.0, dt_s=DT)
    w_new, w_old = 1.0, np.exp(-1.0)
    np.testing.assert_allclose(temporal_ensemble([a, b], 0.1, k=1.0), [w_new / (w_new + w_old)])
    np.testing.assert_allclose(temporal_ensemble([a, b], 0.1, k=0.0), [0.5])


# ---- safety filter -------------------------------------------------------------------------------
def limiter(dt=DT):
    lim = MotionLimiter(SafetyLimits.from_embodiment(PIPER), dt)
    lim.reset(mid())
    return lim


def test_a_far_target_is_approached_within_velocity_and_acceleration_limits():
    lim = limiter()
    target = PIPER.upper - 0.01
    prev, prev_v = lim.position.copy(), np.zeros(7)
    for _ in range(400):
        cmd = lim.step(target)
        v = (cmd - prev) / DT
        assert np.all(np.abs(v) <= PIPER.max_velocity + 1e-9)
        assert np.all(np.abs(v - prev_v) <= PIPER.max_acceleration * DT + 1e-9)
        prev, prev_v = cmd, v
    np.testing.assert_allclose(prev, target, atol=1e-6)  # arrives and stays


def test_targets_outside_the_position_limits_are_clamped():
    lim = limiter()
    for _ in range(1000):
        cmd = lim.step(PIPER.upper + 5.0)
    assert np.all(cmd <= PIPER.upper + 1e-12)


def test_nan_target_holds_position():
    lim = limiter()
    before = lim.position.copy()
    np.testing.assert_allclose(lim.step(np.full(7, np.nan)), before)


def test_deceleration_stops_smoothly_and_holds():
    lim = limiter()
    for _ in range(60):
        lim.step(PIPER.upper)
    moving = np.abs(lim.velocity).max()
    assert moving > 0.5
    prev_v = lim.velocity.copy()
    for _ in range(200):
        lim.decelerate(1.0)
        assert np.all(np.abs(lim.velocity - prev_v) <= PIPER.max_acceleration * DT + 1e-9)
        prev_v = lim.velocity.copy()
    assert np.abs(lim.velocity).max() == 0.0
    held = lim.position.copy()
    np.testing.assert_allclose(lim.decelerate(), held)


# ---- executor state machine ----------------------------------------------------------------------
def make_executor(**cfg):
    ex = ChunkExecutor(PIPER, ExecutorConfig(control_hz=HZ, **cfg))
    return ex


def run(ex, t0, t1, state=None):
    out = []
    t = t0
    while t < t1 - 1e-9:
        ex.on_joint_state(state if state is not None else mid(), t)
        out.append(ex.step(t))
        t += DT
    return out, t


def test_no_command_before_the_first_joint_state_then_hold():
    ex = make_executor()
    assert ex.step(0.0).command is None and ex.step(0.0).state is ExecState.WAITING
    ex.on_joint_state(mid(), 0.0)
    r = ex.step(0.0)
    assert r.state is ExecState.HOLD
    np.testing.assert_allclose(r.command, mid())


def _accelerations(cmds):
    return np.abs(np.diff(np.diff(cmds, axis=0) / DT, axis=0)) / DT


def test_a_chunk_is_followed_for_max_open_loop_s_then_the_arm_comes_to_rest_within_limits():
    """A late frame is not an emergency: the plan is followed up to max_open_loop_s after the
    observation it came from, then the arm decelerates at 1 x its accelerations and holds."""
    ex = make_executor(max_open_loop_s=0.5)
    ex.on_joint_state(mid(), 0.0)
    chunk = ramp_chunk(mid(), 0.04, t0=0.0)  # 2 rad/s for 1 s: longer than the open-loop limit
    ex.on_chunk(chunk, 0.0)
    results, t = run(ex, 0.0, 1.5)
    states = [r.state for r in results]
    assert set(states[:25]) == {ExecState.RUNNING}  # t < 0.5: following the plan
    assert set(states[25:]) == {ExecState.OPEN_LOOP}
    assert "open-loop limit (0.5 s after its observation)" in results[25].reason
    assert ex.open_loop_stops == 1 and ex.watchdog_events == 0
    cmds = np.stack([r.command for r in results])
    assert np.all(np.abs(np.diff(cmds, axis=0)) <= PIPER.max_velocity * DT + 1e-9)
    # at the joints' own accelerations throughout: no brake harder than the limits
    assert np.all(_accelerations(cmds) <= PIPER.max_acceleration + 1e-6)
    # 2 rad/s at 5 rad/s^2: at rest 0.4 s after the limit, 0.4 rad further on
    assert ex.at_rest
    travelled = np.abs(cmds[-1] - cmds[24])
    assert np.all(travelled <= 2.0**2 / (2 * PIPER.max_acceleration) + 2.0 * DT + 1e-9)
    np.testing.assert_allclose(cmds[-1], cmds[-2])


def test_a_chunk_shorter_than_the_open_loop_limit_is_followed_to_its_last_point():
    ex = make_executor(max_open_loop_s=0.5)
    ex.on_joint_state(mid(), 0.0)
    ex.on_chunk(ramp_chunk(mid(), 0.001, t0=0.0, h=10), 0.0)  # last point due at 0.2 s
    results, _ = run(ex, 0.0, 0.4)
    assert results[8].state is ExecState.RUNNING
    assert results[11].state is ExecState.OPEN_LOOP and "the plan ran out" in results[11].reason


def test_a_chunk_from_an_observation_older_than_the_open_loop_limit_is_refused():
    ex = make_executor(max_open_loop_s=0.5)
    ex.on_joint_state(mid(), 1.0)
    ok, why = ex.on_chunk(ramp_chunk(mid(), 0.001, t0=0.4), 1.0)
    assert not ok and "observation 0.600 s old (open-loop limit 0.5 s" in why
    assert ex.rejected["stale"] == 1


def test_a_new_chunk_while_coming_to_rest_resumes_without_a_jerk():
    ex = make_executor(max_open_loop_s=0.3)
    ex.on_joint_state(mid(), 0.0)
    ex.on_chunk(ramp_chunk(mid(), 0.04, t0=0.0), 0.0)
    results, t = run(ex, 0.0, 0.4)  # coming to rest since 0.3 s
    assert results[-1].state is ExecState.OPEN_LOOP and not ex.at_rest
    ex.on_chunk(ramp_chunk(results[-1].command, -0.02, t0=t), t)  # the other way
    more, _ = run(ex, t, t + 0.8)
    assert more[0].state is ExecState.RUNNING
    cmds = np.stack([r.command for r in results + more])
    assert np.all(_accelerations(cmds) <= PIPER.max_acceleration + 1e-6)


def test_a_policy_stop_brings_the_arm_to_rest_at_the_joint_limits_without_a_jump():
    ex = make_executor()
    ex.on_joint_state(mid(), 0.0)
    ex.on_chunk(ramp_chunk(mid(), 0.04, t0=0.0), 0.0)  # 2 rad/s ramp
    results, t = run(ex, 0.0, 0.45)
    before = [r.command for r in results]
    ex.stop("cam_high: gone")
    results, _ = run(ex, t, t + 0.6)
    cmds = np.stack(before + [r.command for r in results])
    assert results[0].state is ExecState.WATCHDOG and results[0].reason == "cam_high: gone"
    assert np.all(np.abs(np.diff(cmds, axis=0)) <= PIPER.max_velocity * DT + 1e-9)
    assert np.all(_accelerations(cmds) <= PIPER.max_acceleration + 1e-6)
    # ~2 rad/s at 5 rad/s^2 comes to rest in 0.4 s
    assert ex.at_rest
    np.testing.assert_allclose(cmds[-1], cmds[-2])
    ex.on_chunk(ramp_chunk(cmds[-1], 0.0, t0=t + 0.6), t + 0.6)
    assert ex.step(t + 0.61).state is ExecState.RUNNING


def test_no_stop_brakes_harder_than_the_joint_limits():
    with pytest.raises(ValueError, match=r"stop_decel_scale: must be in \[0.1, 1\]"):
        ExecutorConfig(stop_decel_scale=20.0)


def test_shutdown_brakes_to_rest_at_the_joint_accelerations_and_refuses_new_work():
    ex = make_executor()
    ex.on_joint_state(mid(), 0.0)
    ex.on_chunk(ramp_chunk(mid(), 0.04, t0=0.0), 0.0)  # 2 rad/s ramp
    results, t = run(ex, 0.0, 0.3)
    assert not ex.at_rest
    ex.shutdown()
    assert ex.on_chunk(ramp_chunk(results[-1].command, 0.04, t0=t), t) == (
        False,
        "shutting down: chunk ignored",
    )
    ex.set_takeover(True, t)
    assert not ex.takeover
    results2, _ = run(ex, t, t + 0.8)
    cmds = np.stack([results[-1].command] + [r.command for r in results2])
    vel = np.diff(cmds, axis=0) / DT
    acc = np.abs(np.diff(vel, axis=0))
    # gentle: at most the joints' own accelerations, never a jump
    assert np.all(acc <= PIPER.max_acceleration * DT + 1e-9)
    assert ex.at_rest  # 2 rad/s at 5 rad/s^2: at rest after 0.4 s
    np.testing.assert_allclose(cmds[-1], cmds[-2])


def test_brake_alone_comes_to_rest_within_the_joint_accelerations():
    """The node's last resort when its control loop raised: ``brake`` (the limiter alone, no
    plan) continues from the moving command and decelerates at no more than the joints'
    accelerations to a command that holds; before any joint state there is nothing to brake,
    and an engaged e-stop stays frozen."""
    assert make_executor().brake() is None
    ex = make_executor()
    ex.on_joint_state(mid(), 0.0)
    ex.on_chunk(ramp_chunk(mid(), 0.04, t0=0.0), 0.0)  # 2 rad/s ramp
    results, _ = run(ex, 0.0, 0.3)
    assert not ex.at_rest
    cmds = np.stack([results[-2].command, results[-1].command] + [ex.brake() for _ in range(40)])
    acc = np.abs(np.diff(cmds, n=2, axis=0))
    assert np.all(acc <= PIPER.max_acceleration * DT * DT + 1e-9)
    assert np.max(np.abs(cmds[2] - cmds[1])) > 0.02  # it went on from the motion, no dead stop
    assert ex.at_rest
    np.testing.assert_allclose(cmds[-1], cmds[-2])

    ex = make_executor()
    ex.on_joint_state(mid(), 0.0)
    ex.on_chunk(ramp_chunk(mid(), 0.04, t0=0.0), 0.0)
    results, _ = run(ex, 0.0, 0.3)
    ex.set_estop(True)
    np.testing.assert_allclose(ex.brake(), results[-1].command)


def test_stale_joint_state_triggers_the_watchdog():
    ex = make_executor(state_timeout_s=0.1)
    ex.on_joint_state(mid(), 0.0)
    ex.on_chunk(ramp_chunk(mid(), 0.001, t0=0.0), 0.0)
    assert ex.step(0.05).state is ExecState.RUNNING
    r = ex.step(0.2)
    assert r.state is ExecState.WATCHDOG and "joint state" in r.reason


def test_estop_freezes_within_one_period_and_latches_until_released():
    ex = make_executor()
    ex.on_joint_state(mid(), 0.0)
    ex.on_chunk(ramp_chunk(mid(), 0.002, t0=0.0), 0.0)
    run(ex, 0.0, 0.3)
    ex.set_estop(True)
    frozen = ex.step(0.3).command
    for k in range(1, 20):
        ex.on_joint_state(mid(), 0.3 + k * DT)
        ex.on_chunk(ramp_chunk(mid(), 0.002, t0=0.3 + k * DT), 0.3 + k * DT)
        r = ex.step(0.3 + k * DT)
        assert r.state is ExecState.ESTOP
        np.testing.assert_allclose(r.command, frozen)
    ex.set_estop(False)
    ex.on_joint_state(mid(), 0.7)
    ex.on_chunk(ramp_chunk(frozen, 0.002, t0=0.7), 0.7)
    assert ex.step(0.72).state is ExecState.RUNNING


def test_release_starts_from_where_the_arm_is_not_from_the_frozen_command():
    """Moved while the e-stop held it (by hand; the simulator's reset): on release the command
    starts at the measured pose, at rest, and the chunk from before the e-stop is gone."""
    ex = make_executor()
    ex.on_joint_state(mid(), 0.0)
    ex.on_chunk(ramp_chunk(mid(), 0.002, t0=0.0), 0.0)
    run(ex, 0.0, 0.3)
    ex.set_estop(True)
    ex.step(0.3)
    moved = mid() + np.r_[[0.3] * 6, 0.01]
    ex.on_joint_state(moved, 0.5)
    ex.set_estop(False)
    r = ex.step(0.52)
    assert r.state is ExecState.HOLD  # no plan for the new pose yet
    np.testing.assert_allclose(r.command, moved)
    ex.on_chunk(ramp_chunk(moved, 0.0005, t0=0.52), 0.52)
    results, _ = run(ex, 0.54, 0.8, state=moved)
    cmds = np.stack([r.command for r in results])
    assert results[-1].state is ExecState.RUNNING
    assert np.all(np.abs(cmds - moved) < 0.1)  # it stays with the arm


def test_chunks_with_the_wrong_joint_count_or_already_over_are_rejected():
    ex = make_executor()
    ok, why = ex.on_chunk(TimedChunk(positions=np.zeros((50, 6)), t0_s=0.0, dt_s=DT), 0.0)
    assert not ok and "6 joints, expected 7" in why
    ok, why = ex.on_chunk(ramp_chunk(mid(), 0.0, t0=0.0), 5.0)
    assert not ok and "observation 5.000 s old" in why
    assert dict(ex.rejected) == {"joint_count": 1, "stale": 1}


@pytest.mark.parametrize("mode", ["crossfade", "temporal_ensemble", "rtc", "sync"])
def test_a_new_chunk_far_from_the_old_one_never_causes_a_step(mode):
    ex = make_executor(execution=mode, blend_s=0.2)
    ex.on_joint_state(mid(), 0.0)
    ex.on_chunk(ramp_chunk(mid(), 0.0, t0=0.0), 0.0)
    run(ex, 0.0, 0.3)
    ex.on_chunk(ramp_chunk(mid() + 0.4, 0.0, t0=0.3), 0.3)  # 0.4 rad away
    results, _ = run(ex, 0.3, 1.0)
    cmds = np.stack([r.command for r in results])
    assert np.all(np.abs(np.diff(cmds, axis=0)) <= PIPER.max_velocity * DT + 1e-9)


def test_crossfade_during_a_blend_starts_from_the_plan_being_followed():
    ex = make_executor(blend_s=0.4)
    ex.on_joint_state(mid(), 0.0)
    ex.on_chunk(ramp_chunk(mid(), 0.0, t0=0.0), 0.0)
    ex.on_chunk(ramp_chunk(mid() + 0.2, 0.0, t0=0.1), 0.1)
    plan_before = ex._plan(0.2)
    ex.on_chunk(ramp_chunk(mid() - 0.2, 0.0, t0=0.2), 0.2)
    np.testing.assert_allclose(ex._plan(0.2), plan_before, atol=1e-9)


@pytest.mark.parametrize("name", list(EMBODIMENTS))
def test_every_embodiment_holds_at_its_measured_position(name):
    emb = EMBODIMENTS.get(name)
    ex = ChunkExecutor(emb, ExecutorConfig())
    p = (emb.lower + emb.upper) / 2
    ex.on_joint_state(p, 0.0)
    np.testing.assert_allclose(ex.step(0.0).command, p)


def test_invalid_config_names_the_field():
    with pytest.raises(ValueError, match="execution"):
        ExecutorConfig(execution="average")
    with pytest.raises(ValueError, match="control_hz"):
        ExecutorConfig(control_hz=0.0)


def test_nan_joint_state_is_refused_naming_the_joint():
    ex = make_executor()
    with pytest.raises(ValueError, match="joint_states: joint2 is not finite"):
        ex.on_joint_state(np.array([0, np.nan, 0, 0, 0, 0, 0.0]), 0.0)


@pytest.mark.parametrize("bad", [50.0, 1e308])
def test_a_state_far_outside_the_limits_is_refused_and_the_arm_holds(bad):
    ex = make_executor(state_timeout_s=0.1)
    ex.on_joint_state(mid(), 0.0)
    ex.on_chunk(ramp_chunk(mid(), 0.001, t0=0.0), 0.0)
    assert ex.step(0.02).state is ExecState.RUNNING
    wild = mid()
    wild[4] = bad
    t = 0.02
    for _ in range(20):  # a stream of wild states: none is taken, the state ages out
        t += DT
        with pytest.raises(ValueError, match=r"joint_states: joint5=.* by more than 0.1 of its"):
            ex.on_joint_state(wild, t)
        r = ex.step(t)
    assert r.state is ExecState.WATCHDOG and "joint state" in r.reason
    assert np.all(np.abs(r.command - mid()) < 0.1)  # nothing was computed from the wild value


def test_a_state_slightly_past_a_limit_is_taken():
    ex = make_executor()
    q = mid()
    q[1] = PIPER.upper[1] + 0.05  # an encoder reading a little past the stop
    ex.on_joint_state(q, 0.0)
    np.testing.assert_array_equal(ex.measured, q)


# ---- operator takeover and hand-back -------------------------------------------------------------
def test_minimum_jerk_profile():
    from gigabrain_runtime.control.blending import minimum_jerk

    assert minimum_jerk(0.0) == 0.0 and minimum_jerk(1.0) == 1.0 and minimum_jerk(0.5) == 0.5
    eps = 1e-3
    assert minimum_jerk(eps) < 1e-8  # zero velocity and acceleration at the start


def test_takeover_and_hand_back_never_step_beyond_the_velocity_limit():
    # the first plan ends 0.5 s after its observation, so the operator's 1.2 s reach his pose
    ex = make_executor(takeover_blend_s=0.3, blend_s=0.2, max_open_loop_s=0.5)
    ex.on_joint_state(mid(), 0.0)
    ex.on_chunk(ramp_chunk(mid(), 0.02, t0=0.0), 0.0)  # policy moving at ~1 rad/s
    cmds = []
    t = 0.0
    operator = mid() - 0.5  # the operator's arm is somewhere else entirely
    for k in range(150):
        t = k * DT
        ex.on_joint_state(mid(), t)
        if k == 40:
            ex.set_takeover(True, t)
        if 40 <= k < 100:
            ex.on_teleop(operator, t)
            ok, why = ex.on_chunk(ramp_chunk(mid(), 0.02, t0=t), t)
            assert not ok and "operator" in why  # the policy is ignored during takeover
        if k == 100:
            ex.set_takeover(False, t)
            assert ex.step(t).state is ExecState.HOLD  # holds where the operator left it
        if k == 110:  # the policy's next chunk, computed from the measured state
            ex.on_chunk(ramp_chunk(cmds[-1] + 0.3, 0.0, t0=t), t)
        r = ex.step(t)
        cmds.append(r.command)
        if 60 <= k < 100:
            assert r.state is ExecState.TELEOP
        if 111 <= k < 130:
            assert r.state is ExecState.RUNNING
    cmds = np.stack(cmds)
    assert np.all(np.abs(np.diff(cmds, axis=0)) <= PIPER.max_velocity * DT + 1e-9)
    np.testing.assert_allclose(cmds[99], np.clip(operator, PIPER.lower, PIPER.upper), atol=1e-6)
    assert ex.takeovers == 1
    # the resumed plan starts at the hold, not at the chunk's first point (0.3 rad away)
    assert np.abs(cmds[111] - cmds[109]).max() <= PIPER.max_velocity.max() * 2 * DT


def test_stale_teleop_during_takeover_holds():
    ex = make_executor(teleop_timeout_s=0.2)
    ex.on_joint_state(mid(), 0.0)
    ex.set_takeover(True, 0.0)
    ex.on_teleop(mid() + 0.1, 0.0)
    ex.step(0.02)
    ex.on_joint_state(mid(), 0.5)
    r = ex.step(0.5)
    assert r.state is ExecState.TELEOP and "stale" in r.reason


def test_random_plans_and_stops_never_exceed_the_joint_accelerations():
    """Random chunks (half of them asking for up to a joint range beyond the limits, as a
    random-weight engine does), late chunks, policy stops and open-loop ends: every command
    stays within the position limits and changes velocity by at most max acceleration x dt."""
    rng = np.random.default_rng(7)
    span = PIPER.upper - PIPER.lower
    worst = 0.0
    for _ in range(40):
        ex = make_executor()
        cmds = []
        for k in range(300):
            t = k * DT
            ex.on_joint_state(mid(), t)
            if k % 5 == 0 and rng.random() < 0.8:
                if rng.random() < 0.5:
                    actions = rng.uniform(PIPER.lower - span, PIPER.upper + span, (50, 7))
                else:
                    actions = mid() + np.cumsum(rng.normal(0.0, 0.05, (50, 7)), axis=0)
                chunk = TimedChunk(positions=actions, t0_s=t - rng.uniform(0, 0.3), dt_s=DT)
                ex.on_chunk(chunk, t)
            if rng.random() < 0.01:
                ex.stop("policy stop")
            cmds.append(ex.step(t).command)
        cmds = np.stack(cmds)
        assert np.all(cmds >= PIPER.lower) and np.all(cmds <= PIPER.upper)
        worst = max(worst, float((_accelerations(cmds) / PIPER.max_acceleration).max()))
    assert worst <= 1.0 + 1e-9, worst


# ---- execution modes: rtc switches on arrival, sync runs execute_steps and waits -----------
def test_rtc_switches_to_the_new_chunk_on_arrival_and_reports_the_executed_delay():
    ex = make_executor(execution="rtc")
    ex.on_joint_state(mid(), 0.0)
    ex.on_chunk(ramp_chunk(mid(), 0.01, t0=0.0), 0.0)
    assert ex.last_delay_steps is None  # the first chunk takes over from rest
    run(ex, 0.0, 0.3)
    new = ramp_chunk(mid() + 0.1, 0.01, t0=0.1)  # observed at 0.1, arriving at 0.3
    ok, _ = ex.on_chunk(new, 0.3)
    assert ok and ex.last_delay_steps == 10
    results, _ = run(ex, 0.3, 0.4)
    for i, r in enumerate(results):  # the plan is the new chunk itself: no blend
        np.testing.assert_allclose(r.target, new.sample(0.3 + i * DT))
    fade = make_executor(execution="crossfade", blend_s=0.2)
    fade.on_joint_state(mid(), 0.0)
    fade.on_chunk(ramp_chunk(mid(), 0.01, t0=0.0), 0.0)
    run(fade, 0.0, 0.3)
    fade.on_chunk(new, 0.3)
    assert not np.allclose(run(fade, 0.3, 0.32)[0][0].target, new.sample(0.3))


def test_sync_runs_execute_steps_points_from_arrival_then_waits_without_an_open_loop_stop():
    ex = make_executor(execution="sync", execute_steps=10, blend_s=0.0)
    ex.on_joint_state(mid(), 0.0)
    chunk = ramp_chunk(mid(), 0.005, t0=0.0)
    ok, _ = ex.on_chunk(chunk, 0.3)  # computed for 0.3 s while the arm waited
    assert ok
    results, _ = run(ex, 0.3, 0.8)
    running = [r for r in results if r.state is ExecState.RUNNING]
    assert len(running) == 10
    # it starts from the chunk's first point (the arm did not move meanwhile), not at 0.3 s in
    np.testing.assert_allclose(running[0].target, chunk.positions[0])
    np.testing.assert_allclose(running[-1].target, chunk.positions[9])
    assert results[-1].state is ExecState.HOLD and results[-1].reason.startswith("sync:")
    assert ex.open_loop_stops == 0 and ex.watchdog_events == 0


def test_hold_to_run_released_brings_the_arm_to_rest_within_limits_and_refuses_chunks():
    """The operator let go of hold-to-run: the arm decelerates within its accelerations (not an
    e-stop's freeze), the policy's chunks are refused while held, and once held again the next
    chunk fades in from the hold."""
    ex = make_executor()
    ex.on_joint_state(mid(), 0.0)
    ex.on_chunk(ramp_chunk(mid(), 0.02, t0=0.0), 0.0)  # 1 rad/s
    before, t = run(ex, 0.0, 0.4)
    ex.set_hold(True)
    accepted, reason = ex.on_chunk(ramp_chunk(mid(), 0.02, t0=t), t)
    assert not accepted and "held" in reason
    held, t = run(ex, t, t + 1.0)
    assert {r.state for r in held} == {ExecState.HELD}
    cmds = np.stack([r.command for r in before + held])
    assert np.all(_accelerations(cmds) <= PIPER.max_acceleration * (1 + 1e-6))
    np.testing.assert_allclose(held[-1].command, held[-2].command)  # at rest
    ex.set_hold(False)
    assert ex.on_chunk(ramp_chunk(held[-1].command, 0.002, t0=t), t)[0]
    resumed, _ = run(ex, t, t + 0.3)
    assert resumed[-1].state is ExecState.RUNNING
    cmds = np.stack([r.command for r in held + resumed])
    assert np.all(_accelerations(cmds) <= PIPER.max_acceleration * (1 + 1e-6))


def test_hold_to_run_fails_safe_when_its_source_goes_quiet():
    """Once a hold source has spoken, 'running' must keep coming: silence (a dead or stalled
    console) holds the arm, and only a new 'running' lets the policy go again."""
    ex = make_executor(hold_timeout_s=0.5)
    ex.on_joint_state(mid(), 0.0)
    ex.on_hold(False, 0.0)
    ex.on_chunk(ramp_chunk(mid(), 0.002, t0=0.0), 0.0)
    results, t = run(ex, 0.0, 0.4)
    assert results[-1].state is ExecState.RUNNING
    results, t = run(ex, t, 1.0)  # no message since 0.0
    assert results[-1].state is ExecState.HELD and ex.held
    ex.on_hold(False, t)
    assert not ex.held and ex.on_chunk(ramp_chunk(results[-1].command, 0.002, t0=t), t)[0]
    assert ex.step(t + 0.02).state is ExecState.RUNNING


def test_the_stop_log_says_each_stop_and_ends_on_what_the_executor_is_doing():
    log = StopLog(interval_s=1.0)
    W, R, OL = ExecState.WATCHDOG, ExecState.RUNNING, ExecState.OPEN_LOOP
    assert log.update(R, "", 0.0) == ()  # running from the start: nothing to say
    assert log.update(W, "joint state is 0.112 s old", 0.1) == (
        ("warning", "stopping (watchdog_hold): joint state is 0.112 s old"),
    )
    assert log.update(W, "joint state is 0.132 s old", 0.12) == ()  # once per stop
    assert log.update(R, "", 0.3) == (("info", "running again after watchdog_hold"),)
    # flapping: a second stop within the interval is held back ...
    assert log.update(OL, "the plan ran out", 0.5) == ()
    # ... and said once the interval has passed if the arm is still stopped
    assert log.update(OL, "the plan ran out", 0.9) == ()
    assert log.update(OL, "the plan ran out", 1.1) == (
        ("warning", "stopping (open_loop_limit): the plan ran out"),
    )
    assert log.update(R, "", 1.2) == (("info", "running again after open_loop_limit"),)
    # a stop held back that ended before it was said: no line, and none for its end
    assert log.update(W, "late", 1.3) == () and log.update(R, "", 1.35) == ()
    # every period of flapping for two seconds: at most one stop (and its end) per interval
    lines = []
    for k in range(100):
        lines += log.update(W if k % 2 else R, "late", 2.5 + 0.02 * k)
    stops = [line for level, line in lines if level == "warning"]
    assert 1 <= len(stops) <= 3 and len(lines) <= 2 * len(stops)
