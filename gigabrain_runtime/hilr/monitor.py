"""When the operator should take over a human-in-the-loop rollout, and when to hand back.

The :class:`FailureMonitor` watches what a person beside the robot watches - where the gripper
is, where the object to pick is, whether the arm moves - and raises a takeover on one of three
failures (GigaBrain-0.5M*'s HILR: the operator intervenes when the policy is about to fail):

* **no progress**: for ``progress_window_s`` nothing got better - the gripper came no closer to
  the object by ``progress_m`` while it lay on the table, or, while it was carried, it came no
  closer to where it goes by ``progress_m`` (and it was not lifted in that time);
* **dropped**: the object had been lifted ``lift_m`` above where it rested and is back down
  (within ``drop_m`` of its resting height) outside the place radius;
* **stalled**: no joint moved faster than ``stall_speed_rad_s`` for ``stall_s``.

During a takeover the operator corrects; the monitor hands back once the object has been
carried (lifted) for ``handback_lifted_s`` after at least ``min_takeover_s``, once the task
succeeded, or after ``max_takeover_s`` (the correction failed: the policy gets another try). The
``max_interventions``-th takeover is not handed back before success: the operator finishes.

Pure and clocked by its caller: ``update(t, ...)`` with the caller's time in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import Enum

import numpy as np


@dataclass(frozen=True, kw_only=True)
class MonitorConfig:
    progress_window_s: float = 4.0
    progress_m: float = 0.01
    lift_m: float = 0.03
    drop_m: float = 0.01
    place_radius_m: float = 0.045
    stall_speed_rad_s: float = 0.02
    stall_s: float = 2.0
    grace_s: float = 1.0  # after the start and after each hand-back: no takeover yet
    min_takeover_s: float = 1.0
    handback_lifted_s: float = 0.5
    max_takeover_s: float = 8.0
    max_interventions: int = 2

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "max_interventions":
                if not isinstance(value, int) or value < 1:
                    raise ValueError(
                        f"monitor.max_interventions: must be an integer >= 1, got {value!r}"
                    )
            elif not isinstance(value, (int, float)) or not value > 0 or not np.isfinite(value):
                raise ValueError(f"monitor.{f.name}: must be a finite number > 0, got {value!r}")
        if self.min_takeover_s > self.max_takeover_s:
            raise ValueError(
                f"monitor.min_takeover_s ({self.min_takeover_s}) exceeds max_takeover_s "
                f"({self.max_takeover_s})"
            )


class Action(Enum):
    NONE = "none"
    TAKE_OVER = "take_over"
    HAND_BACK = "hand_back"


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str = ""


_NONE = Decision(Action.NONE)


def _finite(name: str, value: np.ndarray, size: int | None = None) -> np.ndarray:
    a = np.asarray(value, dtype=np.float64)
    if size is not None and a.shape != (size,):
        raise ValueError(f"{name}: expected shape ({size},), got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: contains NaN or inf: {a.tolist()}")
    return a


class FailureMonitor:
    """One episode's takeover decisions (see the module docstring)."""

    def __init__(self, config: MonitorConfig | None = None) -> None:
        self.config = config or MonitorConfig()
        self.takeovers: list[tuple[float, str]] = []  # (time, reason)
        self.handbacks: list[tuple[float, str]] = []
        self._rest_z: float | None = None
        self._active = False
        self._since = 0.0  # start of the current phase (policy or takeover)
        self._lifted_since: float | None = None
        self._was_lifted = False
        self._best: float | None = None  # best distance of the current progress measure
        self._best_t = 0.0
        self._carrying = False
        self._moving_t = 0.0
        self._last_q: np.ndarray | None = None
        self._last_t: float | None = None

    @property
    def active(self) -> bool:
        """Whether the operator has control."""
        return self._active

    def start(self, t: float, pick: np.ndarray) -> None:
        """A new episode at time ``t``, the object to pick resting at ``pick`` (x, y, z)."""
        self.__init__(self.config)  # type: ignore[misc]
        self._rest_z = float(_finite("pick", pick, 3)[2])
        self._since = self._best_t = self._moving_t = t

    def update(
        self,
        t: float,
        *,
        joints: np.ndarray,
        grasp_point: np.ndarray,
        pick: np.ndarray,
        place: np.ndarray,
        success: bool,
    ) -> Decision:
        """One look at the scene: the arm's joints (rad), the gripper's grasp point, the
        object to pick and the place (x, y, z, m), and the task detector's verdict."""
        if self._rest_z is None:
            raise RuntimeError("FailureMonitor.update before start()")
        c = self.config
        q = _finite("joints", joints)
        g = _finite("grasp_point", grasp_point, 3)
        p = _finite("pick", pick, 3)
        dest = _finite("place", place, 3)
        lifted = p[2] > self._rest_z + c.lift_m
        self._lifted_since = (self._lifted_since or t) if lifted else None
        if self._last_q is not None and self._last_t is not None and t > self._last_t:
            speed = float(np.max(np.abs(q - self._last_q))) / (t - self._last_t)
            if speed > c.stall_speed_rad_s:
                self._moving_t = t
        self._last_q, self._last_t = q, t
        if self._active:
            return self._while_taken_over(t, success)
        dropped = (
            self._was_lifted
            and p[2] < self._rest_z + c.drop_m
            and float(np.hypot(*(p[:2] - dest[:2]))) > c.place_radius_m
        )
        self._was_lifted = self._was_lifted or lifted
        if dropped:
            self._was_lifted = False
        self._track_progress(t, g, p, dest, lifted)
        if success or t - self._since < c.grace_s:
            return _NONE
        if dropped:
            return self._take_over(t, "dropped")
        if t - self._moving_t >= c.stall_s:
            return self._take_over(t, "stalled")
        if t - self._best_t >= c.progress_window_s:
            return self._take_over(t, "no progress")
        return _NONE

    def _track_progress(
        self, t: float, g: np.ndarray, p: np.ndarray, dest: np.ndarray, lifted: bool
    ) -> None:
        if lifted != self._carrying:  # lifting (or putting down) is progress in itself
            self._carrying = lifted
            self._best = None
        d = float(np.hypot(*(p[:2] - dest[:2]))) if lifted else float(np.linalg.norm(g - p))
        if self._best is None or d < self._best - self.config.progress_m:
            self._best, self._best_t = d, t

    def _take_over(self, t: float, reason: str) -> Decision:
        self._active = True
        self._since = t
        self.takeovers.append((t, reason))
        return Decision(Action.TAKE_OVER, reason)

    def _while_taken_over(self, t: float, success: bool) -> Decision:
        c = self.config
        held = t - self._since
        last = len(self.takeovers) >= c.max_interventions
        reason = ""
        if success:
            reason = "task succeeded"
        elif not last and held >= c.min_takeover_s:
            if self._lifted_since is not None and t - self._lifted_since >= c.handback_lifted_s:
                reason = "object carried"
            elif held >= c.max_takeover_s:
                reason = "correction timed out"
        if not reason:
            return _NONE
        self._active = False
        self._since = self._best_t = self._moving_t = t
        self._best = None
        self._was_lifted = self._lifted_since is not None
        self.handbacks.append((t, reason))
        return Decision(Action.HAND_BACK, reason)
