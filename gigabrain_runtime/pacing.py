"""Deadline-based pacing on the monotonic clock, with deadline-miss counting.

Sleeping for "the period" accumulates drift and jitter; instead every tick has an absolute
deadline k * period after start. The loop sleeps until shortly before it, then spins the rest
(OS sleep overshoots by ~50-100 us on a loaded machine). A tick that starts after the *next*
deadline is a miss: the schedule skips ahead instead of bursting to catch up.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

import numpy as np


class DeadlinePacer:
    def __init__(
        self,
        period_s: float,
        *,
        spin_s: float = 0.0005,
        history: int = 2000,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if period_s <= 0:
            raise ValueError(f"period_s: must be > 0, got {period_s}")
        self._clock, self._sleep = clock, sleep
        self.period = period_s
        self.spin = spin_s
        self._next: float | None = None
        self._last_tick: float | None = None
        self.misses = 0
        self.ticks = 0
        self.periods: deque[float] = deque(maxlen=history)

    def wait(self) -> float:
        """Block until the next deadline; returns the monotonic time of the tick."""
        now = self._clock()
        if self._next is None:
            self._next = now
        else:
            self._next += self.period
            if now > self._next + self.period:  # missed at least one whole period
                skipped = int((now - self._next) // self.period)
                self.misses += skipped
                self._next += skipped * self.period
            remaining = self._next - now
            if remaining > self.spin:
                self._sleep(remaining - self.spin)
            while self._clock() < self._next:
                pass
        tick = self._clock()
        if self._last_tick is not None:
            self.periods.append(tick - self._last_tick)
        self._last_tick = tick
        self.ticks += 1
        return tick

    def jitter_ms(self, percentile: float = 99.0) -> float:
        """Percentile of |period - nominal| over the recent history, in ms."""
        if not self.periods:
            return float("nan")
        dev = np.abs(np.asarray(self.periods) - self.period)
        return float(np.percentile(dev, percentile) * 1e3)
