"""Rates, latency percentiles and status levels for /diagnostics (no ROS types here)."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np


class Level(IntEnum):
    """diagnostic_msgs/DiagnosticStatus levels."""

    OK = 0
    WARN = 1
    ERROR = 2
    STALE = 3


@dataclass
class Status:
    name: str
    level: Level = Level.OK
    message: str = "ok"
    values: dict[str, str] = field(default_factory=dict)

    def worse(self, level: Level, message: str) -> None:
        """Raise the level (never lower it); messages of the worst level are joined."""
        if level > self.level:
            self.level, self.message = level, message
        elif level == self.level and level > Level.OK:
            self.message = f"{self.message}; {message}"


class RateMeter:
    """Events per second over a sliding window of arrival times (monotonic seconds)."""

    def __init__(self, window_s: float = 2.0) -> None:
        self.window = window_s
        self._times: deque[float] = deque()
        self._lock = threading.Lock()
        self.count = 0

    def tick(self, t: float) -> None:
        with self._lock:
            self._times.append(t)
            self.count += 1
            self._trim(t)

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window:
            self._times.popleft()

    def rate(self, now: float) -> float:
        with self._lock:
            self._trim(now)
            n = len(self._times)
            if n < 2:
                return 0.0
            span = max(self._times[-1] - self._times[0], 1e-9)
            return (n - 1) / span


class LatencyStats:
    """Percentiles over the most recent samples (ms)."""

    def __init__(self, history: int = 500) -> None:
        self._samples: deque[float] = deque(maxlen=history)
        self._lock = threading.Lock()
        self.count = 0

    def add(self, ms: float) -> None:
        with self._lock:
            self._samples.append(ms)
            self.count += 1

    @property
    def last(self) -> float:
        """The newest sample (ms; nan before any)."""
        with self._lock:
            return self._samples[-1] if self._samples else float("nan")

    def percentile(self, p: float) -> float:
        with self._lock:
            if not self._samples:
                return float("nan")
            return float(np.percentile(np.asarray(self._samples), p))

    def all(self) -> np.ndarray:
        with self._lock:
            return np.asarray(self._samples)
