"""Deadline pacing on an injected clock: ticks on an absolute schedule, late ticks counted as
misses and skipped over instead of bursting to catch up."""

from __future__ import annotations

import pytest

from gigabrain_runtime.pacing import DeadlinePacer


class FakeClock:
    """Monotonic time that advances only when slept on or polled (each poll costs 10 us)."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        self.t += 1e-5
        return self.t

    def sleep(self, dt: float) -> None:
        self.t += dt


def test_ticks_follow_the_absolute_schedule_without_drift():
    clock = FakeClock()
    pacer = DeadlinePacer(0.02, clock=clock, sleep=clock.sleep)
    start = pacer.wait()
    for k in range(1, 501):
        clock.t += 0.003  # the loop's own work
        tick = pacer.wait()
        assert tick - start == pytest.approx(k * 0.02, abs=3e-5)  # no accumulated drift
    assert pacer.misses == 0 and pacer.ticks == 501
    assert pacer.jitter_ms() < 0.05


def test_a_late_tick_counts_the_missed_deadlines_and_skips_ahead():
    clock = FakeClock()
    pacer = DeadlinePacer(0.02, clock=clock, sleep=clock.sleep)
    start = pacer.wait()
    pacer.wait()
    clock.t += 0.075  # a stall of almost four periods
    late = pacer.wait()
    assert pacer.misses == 2
    after = [pacer.wait() for _ in range(3)]
    # the schedule resumes on the original grid, one tick per period: no burst of catch-up ticks
    steps = [b - a for a, b in zip([late, *after], after)]
    assert all(s == pytest.approx(0.02, abs=3e-5) for s in steps[1:])
    assert ((after[-1] - start) / 0.02) == pytest.approx(
        round((after[-1] - start) / 0.02), abs=2e-3
    )


def test_period_must_be_positive():
    with pytest.raises(ValueError, match="period_s: must be > 0, got 0"):
        DeadlinePacer(0)
