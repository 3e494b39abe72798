"""Assembling one consistent observation from asynchronous camera and joint-state streams.

The newest frame of every camera and the newest joint state are combined only if each is
younger than its age limit and their stamps agree; otherwise the observation is refused with
the reason. A camera's age limit follows the rate its frames actually arrive at: at least two
of its measured frame periods plus ``transport_s`` (never below ``max_image_age_s``, never above
``input_timeout_s``), so a 15 Hz camera whose frames come 0.16 s apart is not "stale" between
two frames. An input older than ``input_timeout_s`` is *gone*: that, not a late frame, is what
makes the vla stop the arm.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

# frame intervals kept per camera for its measured period (the median of these)
PERIOD_WINDOW = 15


@dataclass(frozen=True, kw_only=True)
class SyncConfig:
    stamp_tolerance_s: float = 0.1
    max_image_age_s: float = 0.15
    max_state_age_s: float = 0.1
    transport_s: float = 0.05
    input_timeout_s: float = 0.4

    def __post_init__(self) -> None:
        for name in ("stamp_tolerance_s", "max_image_age_s", "max_state_age_s", "input_timeout_s"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"{name}: must be > 0, got {value}")
        if not (np.isfinite(self.transport_s) and self.transport_s >= 0):
            raise ValueError(f"transport_s: must be >= 0, got {self.transport_s}")
        for name in ("max_image_age_s", "max_state_age_s"):
            if getattr(self, name) > self.input_timeout_s:
                raise ValueError(
                    f"{name}: must be <= input_timeout_s ({self.input_timeout_s}), "
                    f"got {getattr(self, name)}"
                )


@dataclass(frozen=True)
class Assembled:
    images: dict[str, np.ndarray]
    state: np.ndarray
    stamp_s: float  # the joint state's stamp: the observation's time


@dataclass(frozen=True)
class Refused:
    """Why no observation can be formed now. ``late``: an input is older than its age limit but
    not gone (the executor keeps following its plan); otherwise something is missing or
    inconsistent."""

    reason: str
    late: bool = False

    def __str__(self) -> str:
        return self.reason


class ObservationAssembler:
    """Thread-safe latest-value store for cameras and joint state, with each camera's measured
    frame period."""

    def __init__(self, cameras: tuple[str, ...], config: SyncConfig) -> None:
        self.cameras = cameras
        self.config = config
        self._lock = threading.Lock()
        self._images: dict[str, tuple[float, np.ndarray]] = {}
        self._intervals: dict[str, deque[float]] = {c: deque(maxlen=PERIOD_WINDOW) for c in cameras}
        self._state: tuple[float, np.ndarray] | None = None

    def put_image(self, camera: str, stamp_s: float, image: np.ndarray) -> None:
        if camera not in self.cameras:
            raise ValueError(f"camera: unknown {camera!r} (expected: {', '.join(self.cameras)})")
        with self._lock:
            previous = self._images.get(camera)
            if previous is not None and stamp_s > previous[0]:
                self._intervals[camera].append(stamp_s - previous[0])
            self._images[camera] = (stamp_s, image)

    def put_state(self, stamp_s: float, positions: np.ndarray) -> None:
        with self._lock:
            self._state = (stamp_s, positions)

    def last_state(self) -> np.ndarray | None:
        with self._lock:
            return None if self._state is None else np.array(self._state[1], dtype=np.float64)

    def period(self, camera: str) -> float | None:
        """The camera's measured frame period (median of its recent stamp intervals), or None
        before two frames arrived."""
        with self._lock:
            intervals = list(self._intervals[camera])
        return float(np.median(intervals)) if intervals else None

    def age_limits(self) -> dict[str, float]:
        """The age limit of every input: joint states ``max_state_age_s``; a camera two of its
        measured periods plus ``transport_s``, within [``max_image_age_s``,
        ``input_timeout_s``]."""
        cfg = self.config
        out = {}
        for cam in self.cameras:
            period = self.period(cam)
            derived = 0.0 if period is None else 2.0 * period + cfg.transport_s
            out[cam] = float(np.clip(derived, cfg.max_image_age_s, cfg.input_timeout_s))
        out["joint_states"] = cfg.max_state_age_s
        return out

    def ages(self, now_s: float) -> dict[str, float]:
        """Age in seconds of the newest sample of every input (inf if none yet)."""
        with self._lock:
            out = {
                c: now_s - self._images[c][0] if c in self._images else float("inf")
                for c in self.cameras
            }
            out["joint_states"] = now_s - self._state[0] if self._state else float("inf")
        return out

    def gone(self, now_s: float) -> dict[str, float]:
        """Inputs received once whose newest sample is older than ``input_timeout_s``: age."""
        limit = self.config.input_timeout_s
        return {name: age for name, age in self.ages(now_s).items() if limit < age < float("inf")}

    def assemble(self, now_s: float) -> Assembled | Refused:
        """The observation, or why none can be formed now."""
        cfg = self.config
        limits = self.age_limits()
        with self._lock:
            images = dict(self._images)
            state = self._state
        if state is None:
            return Refused("no joint state received")
        missing = [c for c in self.cameras if c not in images]
        if missing:
            return Refused(f"no image yet from {', '.join(missing)}")
        for name, stamp in [("joint_states", state[0])] + [(c, images[c][0]) for c in self.cameras]:
            age = now_s - stamp
            if age > limits[name]:
                what = "joint state" if name == "joint_states" else f"{name} image"
                return Refused(
                    f"{what} is {age:.3f} s old (limit {limits[name]:.3f} s)",
                    late=age <= cfg.input_timeout_s,
                )
        stamps = [state[0]] + [images[c][0] for c in self.cameras]
        spread = max(stamps) - min(stamps)
        # a camera may lag the joint state by as much as its own age limit
        tolerance = max(cfg.stamp_tolerance_s, *(limits[c] for c in self.cameras))
        if spread > tolerance:
            return Refused(f"input stamps spread {spread:.3f} s (tolerance {tolerance:.3f} s)")
        return Assembled(
            images={c: images[c][1] for c in self.cameras}, state=state[1], stamp_s=state[0]
        )
