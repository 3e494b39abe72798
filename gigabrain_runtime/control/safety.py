"""The last line before the robot: position, velocity and acceleration limits, NaN rejection.

:class:`MotionLimiter` is a second-order limiter: each control step the command moves toward
the target with a velocity bounded by the joint's max velocity, by the velocity from which it
can still stop at the target in whole periods (the discrete sqrt(2 a d)), and changing by at
most max acceleration x dt. So a target jump - a new
chunk far from the last, a bad prediction - becomes a smooth approach, never a step; a target
that moves back toward the command faster than the joint can brake is passed and returned to
rather than stopped at dead; and the command never leaves the position limits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gigabrain_runtime.robots.embodiment import Embodiment


@dataclass(frozen=True, kw_only=True)
class SafetyLimits:
    lower: np.ndarray
    upper: np.ndarray
    max_velocity: np.ndarray
    max_acceleration: np.ndarray

    @classmethod
    def from_embodiment(cls, emb: Embodiment, *, velocity_scale: float = 1.0) -> SafetyLimits:
        if not 0.0 < velocity_scale <= 1.0:
            raise ValueError(f"velocity_scale: must be in (0, 1], got {velocity_scale}")
        return cls(
            lower=emb.lower,
            upper=emb.upper,
            max_velocity=emb.max_velocity * velocity_scale,
            max_acceleration=emb.max_acceleration,
        )


class MotionLimiter:
    """Stateful limiter: holds the last command and its velocity."""

    def __init__(self, limits: SafetyLimits, dt_s: float) -> None:
        if dt_s <= 0:
            raise ValueError(f"dt_s: must be > 0, got {dt_s}")
        self.limits = limits
        self.dt = dt_s
        self.position: np.ndarray | None = None
        self.velocity = np.zeros_like(limits.lower)
        self.clipped_steps = 0

    def reset(self, position: np.ndarray) -> None:
        """Start from a measured position at rest (clamped into the limits)."""
        self.position = np.clip(
            np.asarray(position, dtype=np.float64), self.limits.lower, self.limits.upper
        )
        self.velocity = np.zeros_like(self.position)

    def step(self, target: np.ndarray) -> np.ndarray:
        """Move one control period toward ``target``; returns the new command."""
        if self.position is None:
            raise RuntimeError("MotionLimiter.step before reset()")
        lim, dt = self.limits, self.dt
        target = np.clip(np.asarray(target, dtype=np.float64), lim.lower, lim.upper)
        if not np.all(np.isfinite(target)):
            target = self.position  # never propagate NaN: hold
        err = target - self.position
        # fastest velocity from which braking at max deceleration, in whole control periods,
        # still stops at the target: v = n a dt with n (n + 1) / 2 a dt^2 <= |err|
        # (one period's a dt^2 of the distance held back, so the last step lands on the target
        # within one period's velocity change)
        a_dt = lim.max_acceleration * dt
        room = np.maximum(np.abs(err) - a_dt * dt, 0.0)
        n = (np.sqrt(1.0 + 8.0 * room / (a_dt * dt)) - 1.0) / 2.0
        v_stop = np.maximum(a_dt * n, np.minimum(np.abs(err) / dt, a_dt))
        v_des = np.clip(err / dt, -lim.max_velocity, lim.max_velocity)
        v_des = np.clip(v_des, -v_stop, v_stop)
        dv = np.clip(v_des - self.velocity, -lim.max_acceleration * dt, lim.max_acceleration * dt)
        v = self.velocity + dv
        step = v * dt
        # land on the target rather than step past it, where that is within this period's
        # velocity change (an arrival overshoots by at most a dt^2); a target that moved toward
        # the command faster than it can brake is passed and come back to, never stopped dead
        land = (np.abs(step) > np.abs(err)) & (
            np.abs(err / dt - self.velocity) <= lim.max_acceleration * dt + 1e-12
        )
        step = np.where(land, err, step)
        v = np.where(land, err / dt, v)
        if np.any(np.abs(target - (self.position + step)) > 1e-9):
            self.clipped_steps += 1
        self.position = np.clip(self.position + step, lim.lower, lim.upper)
        self.velocity = v
        return self.position.copy()

    def _brake(
        self, position: np.ndarray, velocity: np.ndarray, scale: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """One period of braking from (position, velocity) at ``scale`` x max acceleration."""
        lim, dt = self.limits, self.dt
        a = lim.max_acceleration * scale * dt
        velocity = velocity + np.clip(-velocity, -a, a)
        return np.clip(position + velocity * dt, lim.lower, lim.upper), velocity

    def decelerate(self, scale: float = 1.0) -> np.ndarray:
        """One period of braking toward zero velocity at ``scale`` x max acceleration."""
        if self.position is None:
            raise RuntimeError("MotionLimiter.decelerate before reset()")
        self.position, self.velocity = self._brake(self.position, self.velocity, scale)
        return self.position.copy()

    def braking_path(self, periods: int, scale: float = 1.0) -> np.ndarray:
        """The next ``periods`` commands :meth:`decelerate` would give, without giving them."""
        if self.position is None:
            raise RuntimeError("MotionLimiter.braking_path before reset()")
        p, v = self.position, self.velocity
        out = np.empty((periods, p.shape[0]))
        for k in range(periods):
            p, v = self._brake(p, v, scale)
            out[k] = p
        return out

    def freeze(self) -> np.ndarray:
        """E-stop: the command stops where it is, this period."""
        if self.position is None:
            raise RuntimeError("MotionLimiter.freeze before reset()")
        self.velocity = np.zeros_like(self.velocity)
        return self.position.copy()
