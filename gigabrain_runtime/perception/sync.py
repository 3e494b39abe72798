"""Assembling one consistent observation from asynchronous camera and joint-state streams.

The newest frame of every camera and the newest joint state are combined only if each is
younger than its age limit and all their stamps lie within ``stamp_tolerance_s`` of each
other; otherwise the observation is refused with the reason (and the node says so on
/diagnostics). A frame is never reused past ``max_image_age_s``: a camera that stops makes the
policy stop producing chunks, and the executor's watchdog then holds the robot.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, kw_only=True)
class SyncConfig:
    stamp_tolerance_s: float = 0.1
    max_image_age_s: float = 0.15
    max_state_age_s: float = 0.1

    def __post_init__(self) -> None:
        for name in ("stamp_tolerance_s", "max_image_age_s", "max_state_age_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be > 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class Assembled:
    images: dict[str, np.ndarray]
    state: np.ndarray
    stamp_s: float  # the joint state's stamp: the observation's time


class ObservationAssembler:
    """Thread-safe latest-value store for cameras and joint state."""

    def __init__(self, cameras: tuple[str, ...], config: SyncConfig) -> None:
        self.cameras = cameras
        self.config = config
        self._lock = threading.Lock()
        self._images: dict[str, tuple[float, np.ndarray]] = {}
        self._state: tuple[float, np.ndarray] | None = None

    def put_image(self, camera: str, stamp_s: float, image: np.ndarray) -> None:
        if camera not in self.cameras:
            raise ValueError(f"camera: unknown {camera!r} (expected: {', '.join(self.cameras)})")
        with self._lock:
            self._images[camera] = (stamp_s, image)

    def put_state(self, stamp_s: float, positions: np.ndarray) -> None:
        with self._lock:
            self._state = (stamp_s, positions)

    def ages(self, now_s: float) -> dict[str, float]:
        """Age in seconds of the newest sample of every input (inf if none yet)."""
        with self._lock:
            out = {
                c: now_s - self._images[c][0] if c in self._images else float("inf")
                for c in self.cameras
            }
            out["joint_states"] = now_s - self._state[0] if self._state else float("inf")
        return out

    def assemble(self, now_s: float) -> Assembled | str:
        """The observation, or a string saying why none can be formed now."""
        cfg = self.config
        with self._lock:
            images = dict(self._images)
            state = self._state
        if state is None:
            return "no joint state received"
        missing = [c for c in self.cameras if c not in images]
        if missing:
            return f"no image yet from {', '.join(missing)}"
        state_age = now_s - state[0]
        if state_age > cfg.max_state_age_s:
            return f"joint state is {state_age:.3f} s old (limit {cfg.max_state_age_s} s)"
        for cam in self.cameras:
            age = now_s - images[cam][0]
            if age > cfg.max_image_age_s:
                return f"{cam} image is {age:.3f} s old (limit {cfg.max_image_age_s} s)"
        stamps = [state[0]] + [images[c][0] for c in self.cameras]
        spread = max(stamps) - min(stamps)
        if spread > cfg.stamp_tolerance_s:
            return f"input stamps spread {spread:.3f} s (tolerance {cfg.stamp_tolerance_s} s)"
        return Assembled(
            images={c: images[c][1] for c in self.cameras}, state=state[1], stamp_s=state[0]
        )
