"""The HILR failure monitor: takeover on no progress, a drop or a stall; hand-back after the
correction; the last allowed takeover runs to success."""

from __future__ import annotations

import numpy as np
import pytest

from gigabrain_runtime.hilr.monitor import Action, FailureMonitor, MonitorConfig

CUBE = np.array([0.30, 0.05, 0.02])
BOWL = np.array([0.30, -0.15, 0.0])
DT = 0.1


def _run(monitor: FailureMonitor, t0: float, t1: float, scene) -> list[tuple[float, object]]:  # noqa: ANN001
    """Feed scene(t) -> (joints, grasp, pick, success) from t0 to t1; decisions that acted."""
    out = []
    for t in np.arange(t0, t1, DT):
        joints, grasp, pick, success = scene(float(t))
        d = monitor.update(
            float(t), joints=joints, grasp_point=grasp, pick=pick, place=BOWL, success=success
        )
        if d.action is not Action.NONE:
            out.append((round(float(t), 3), d))
    return out


def _moving(t: float) -> np.ndarray:
    return np.full(6, 0.1 * t)  # 0.1 rad/s on every joint: not stalled


def test_approaching_the_cube_is_progress_and_hovering_is_not() -> None:
    m = FailureMonitor(MonitorConfig(progress_window_s=2.0, stall_s=100.0))
    m.start(0.0, CUBE)

    # closes 2 cm/s on the cube for 5 s, then hovers 10 cm away while the joints wiggle
    def scene(t: float):  # noqa: ANN202
        dist = max(0.10, 0.20 - 0.02 * t)
        return _moving(t), CUBE + [0, 0, dist], CUBE, False

    acted = _run(m, 0.0, 12.0, scene)
    assert acted, "hovering without progress must end in a takeover"
    t, d = acted[0]
    assert d.action is Action.TAKE_OVER and d.reason == "no progress"
    # progress stopped at t = 5 s (distance 0.10 m); the window is 2 s
    assert 6.4 <= t <= 7.6
    assert m.active


def test_a_stalled_arm_is_taken_over() -> None:
    m = FailureMonitor(MonitorConfig(stall_s=1.5, progress_window_s=100.0))
    m.start(0.0, CUBE)
    still = np.zeros(6)
    acted = _run(m, 0.0, 5.0, lambda t: (still, CUBE + [0, 0, 0.2 - 0.01 * t], CUBE, False))
    assert acted[0][1].reason == "stalled"
    assert 1.4 <= acted[0][0] <= 1.8


def test_a_dropped_cube_is_taken_over_but_one_put_in_the_bowl_is_not() -> None:
    def carried_then(down_at: np.ndarray):  # noqa: ANN202
        def scene(t: float):  # noqa: ANN202
            if t < 2.0:
                pick = CUBE + [0, 0, 0.05 * t]  # lifted up to 10 cm
            else:
                pick = np.array([down_at[0], down_at[1], CUBE[2]])  # back on a surface
            return _moving(t), pick, pick, False

        return scene

    m = FailureMonitor(MonitorConfig(stall_s=100.0, progress_window_s=100.0))
    m.start(0.0, CUBE)
    acted = _run(m, 0.0, 3.0, carried_then(CUBE))
    assert [d.reason for _, d in acted] == ["dropped"]
    assert acted[0][0] == pytest.approx(2.0, abs=0.15)

    m = FailureMonitor(MonitorConfig(stall_s=100.0, progress_window_s=100.0))
    m.start(0.0, CUBE)
    assert _run(m, 0.0, 3.0, carried_then(BOWL)) == []


def test_hand_back_once_the_operator_carries_the_cube() -> None:
    cfg = MonitorConfig(stall_s=1.0, progress_window_s=100.0, min_takeover_s=1.0)
    m = FailureMonitor(cfg)
    m.start(0.0, CUBE)
    still = np.zeros(6)

    def scene(t: float):  # noqa: ANN202
        if t < 3.0:  # stalled; the takeover comes at 1 s
            return still, CUBE + [0, 0, 0.1], CUBE, False
        lifted = CUBE + [0, 0, min(0.1, 0.05 * (t - 3.0))]  # the operator lifts from 3 s
        return _moving(t), lifted, lifted, False

    acted = _run(m, 0.0, 6.0, scene)
    assert [d.action for _, d in acted] == [Action.TAKE_OVER, Action.HAND_BACK]
    assert acted[1][1].reason == "object carried"
    # lifted past lift_m (3 cm) at 3.6 s, held handback_lifted_s (0.5 s)
    assert 4.0 <= acted[1][0] <= 4.3
    assert not m.active
    assert len(m.takeovers) == 1 and len(m.handbacks) == 1


def test_the_last_takeover_is_only_handed_back_at_success() -> None:
    cfg = MonitorConfig(
        stall_s=1.0, progress_window_s=100.0, max_interventions=1, max_takeover_s=2.0
    )
    m = FailureMonitor(cfg)
    m.start(0.0, CUBE)
    still = np.zeros(6)

    # stalled, then the operator lifts the cube and, from 8 s, the detector says success
    def scene(t: float):  # noqa: ANN202
        lifted = CUBE + [0, 0, 0.1 if t > 2.0 else 0.0]
        return (still if t < 2.0 else _moving(t)), lifted, lifted, t >= 8.0

    acted = _run(m, 0.0, 9.0, scene)
    assert [d.action for _, d in acted] == [Action.TAKE_OVER, Action.HAND_BACK]
    assert acted[1][1].reason == "task succeeded"
    assert acted[1][0] == pytest.approx(8.0, abs=0.11)


def test_a_failed_correction_is_handed_back_after_max_takeover() -> None:
    cfg = MonitorConfig(stall_s=1.0, progress_window_s=100.0, max_takeover_s=3.0)
    m = FailureMonitor(cfg)
    m.start(0.0, CUBE)
    still = np.zeros(6)
    acted = _run(m, 0.0, 5.0, lambda t: (still, CUBE + [0, 0, 0.1], CUBE, False))
    assert [d.action for _, d in acted] == [Action.TAKE_OVER, Action.HAND_BACK]
    assert acted[1][1].reason == "correction timed out"
    assert acted[1][0] - acted[0][0] == pytest.approx(3.0, abs=0.11)


def test_no_takeover_in_the_grace_period_or_after_success() -> None:
    m = FailureMonitor(MonitorConfig(stall_s=0.5, grace_s=2.0, progress_window_s=100.0))
    m.start(0.0, CUBE)
    still = np.zeros(6)
    acted = _run(m, 0.0, 1.9, lambda t: (still, CUBE, CUBE, False))
    assert acted == []
    acted = _run(m, 1.9, 5.0, lambda t: (still, CUBE, CUBE, True))
    assert acted == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("progress_window_s", 0.0),
        ("stall_s", -1.0),
        ("lift_m", float("nan")),
        ("max_interventions", 0),
    ],
)
def test_bad_config_names_the_field(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"monitor.{field}"):
        MonitorConfig(**{field: value})


def test_bad_input_names_the_argument() -> None:
    m = FailureMonitor()
    with pytest.raises(RuntimeError, match="before start"):
        m.update(0.0, joints=np.zeros(6), grasp_point=CUBE, pick=CUBE, place=BOWL, success=False)
    m.start(0.0, CUBE)
    with pytest.raises(ValueError, match="grasp_point"):
        m.update(
            0.0,
            joints=np.zeros(6),
            grasp_point=np.array([np.nan, 0, 0]),
            pick=CUBE,
            place=BOWL,
            success=False,
        )
