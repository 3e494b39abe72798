"""Action chunks on a time axis.

A chunk from the policy is H joint targets; point i is due at ``t0_s + (i + 1) * dt_s`` (the
JointTrajectory convention: header.stamp = t0, time_from_start = (i + 1) / control_hz). Times
are seconds on the ROS clock. Sampling between points interpolates linearly; before the first
point it returns the first point, after the last it returns the last and reports exhaustion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, kw_only=True)
class TimedChunk:
    positions: np.ndarray  # float64 [H, dof]
    t0_s: float  # reference time: point i is due at t0_s + (i + 1) * dt_s
    dt_s: float

    def __post_init__(self) -> None:
        p = np.asarray(self.positions, dtype=np.float64)
        if p.ndim != 2 or p.shape[0] < 1:
            raise ValueError(f"chunk.positions: expected [H, dof] with H >= 1, got {p.shape}")
        if not np.all(np.isfinite(p)):
            bad = np.argwhere(~np.isfinite(p))[0]
            raise ValueError(
                f"chunk.positions: non-finite value {p[tuple(bad)]} at point {bad[0]}, "
                f"joint index {bad[1]}"
            )
        if not (np.isfinite(self.dt_s) and self.dt_s > 0):
            raise ValueError(f"chunk.dt_s: must be > 0, got {self.dt_s}")
        if not np.isfinite(self.t0_s):
            raise ValueError(f"chunk.t0_s: must be finite, got {self.t0_s}")
        object.__setattr__(self, "positions", p)

    @property
    def horizon(self) -> int:
        return int(self.positions.shape[0])

    @property
    def first_due_s(self) -> float:
        return self.t0_s + self.dt_s

    @property
    def end_s(self) -> float:
        """Time the last point is due."""
        return self.t0_s + self.horizon * self.dt_s

    def remaining(self, t: float) -> int:
        """Points still in the future at time ``t`` (latency compensation skips the rest)."""
        passed = int(np.floor((t - self.t0_s) / self.dt_s + 1e-9))
        return int(np.clip(self.horizon - passed, 0, self.horizon))

    def sample(self, t: float) -> np.ndarray:
        """Target at time ``t`` (linear between points, clamped at both ends)."""
        u = (t - self.t0_s) / self.dt_s - 1.0  # fractional point index
        if u <= 0.0:
            return self.positions[0].copy()
        if u >= self.horizon - 1:
            return self.positions[-1].copy()
        i = int(np.floor(u))
        w = u - i
        return (1.0 - w) * self.positions[i] + w * self.positions[i + 1]

    def exhausted(self, t: float) -> bool:
        return t >= self.end_s
