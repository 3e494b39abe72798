"""The action executor's core: from chunks, joint states and e-stop to one safe command per period.

Per control step, in priority order:

1. no joint state yet -> nothing is commanded (the robot keeps its own hold);
2. e-stop latched -> the command freezes this period and stays until the e-stop is released
   (the only stop harder than the joint limits);
3. watchdog (the joint state is older than ``state_timeout_s``, or the policy asked to stop: a
   hold point, or an empty trajectory, because an input is gone or invalid) -> come to rest at
   1 x the joint acceleration limits and hold, never jump;
4. open-loop limit: a chunk is a plan, followed for at most ``max_open_loop_s`` after the
   observation it was computed from (its stamp), never past its last point; when no newer chunk
   has come by then, the arm comes to rest at 1 x the acceleration limits and holds;
5. during an operator takeover: the operator's teleop command, faded in from the policy's last
   command over ``takeover_blend_s`` with a minimum-jerk profile (stale teleop -> hold);
6. otherwise the blended plan at time t (latency compensation: points whose time has passed are
   skipped, because the plan is sampled at the current time), through the motion limiter. After
   a hand-back the policy's next chunk is crossfaded in from where the operator left the arm.

Every command of every branch goes through the motion limiter, so no step anywhere - takeover and
hand-back boundaries included - exceeds the joint's velocity limit x control period.

Time is the ROS clock in seconds, passed in by the caller, so the whole state machine is testable
without a clock.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from enum import Enum

import numpy as np

from gigabrain_runtime.control.blending import (
    EXECUTION_MODES,
    crossfade,
    minimum_jerk,
    temporal_ensemble,
)
from gigabrain_runtime.control.chunk import TimedChunk
from gigabrain_runtime.control.safety import MotionLimiter, SafetyLimits
from gigabrain_runtime.robots.embodiment import LIMIT_MARGIN, Embodiment


@dataclass(frozen=True, kw_only=True)
class ExecutorConfig:
    control_hz: float = 50.0
    execution: str = "crossfade"  # control/blending.py: sync, crossfade, temporal_ensemble, rtc
    execute_steps: int = 30  # sync: points of each chunk executed before the next inference
    blend_s: float = 0.2
    ensemble_k: float = 0.5
    max_open_loop_s: float = 1.0
    state_timeout_s: float = 0.1
    velocity_scale: float = 1.0
    # every stop but the e-stop: x the joint accelerations (<= 0.6 s from max velocity on a
    # PiPER); below 1 brakes more gently
    stop_decel_scale: float = 1.0
    takeover_blend_s: float = 0.3
    teleop_timeout_s: float = 0.2
    # hold-to-run: once a hold source has spoken, a 'running' older than this holds the arm (the
    # console repeats it at 20 Hz; a dead or stalled console holds instead of letting it run)
    hold_timeout_s: float = 0.5
    # measured states further outside the limits than this fraction of a joint's range: refused
    state_limit_margin: float = LIMIT_MARGIN

    def __post_init__(self) -> None:
        if not 1.0 <= self.control_hz <= 500.0:
            raise ValueError(f"control_hz: must be in [1, 500], got {self.control_hz}")
        if self.execution not in EXECUTION_MODES:
            raise ValueError(
                f"execution: unknown {self.execution!r} (known: {', '.join(EXECUTION_MODES)})"
            )
        if not (isinstance(self.execute_steps, int) and self.execute_steps >= 1):
            raise ValueError(f"execute_steps: must be an int >= 1, got {self.execute_steps!r}")
        for name in ("blend_s", "ensemble_k"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0, got {getattr(self, name)}")
        for name in ("max_open_loop_s", "state_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be > 0, got {getattr(self, name)}")
        if not 0.1 <= self.stop_decel_scale <= 1.0:
            raise ValueError(
                f"stop_decel_scale: must be in [0.1, 1] (only an e-stop brakes harder than the "
                f"joint limits), got {self.stop_decel_scale}"
            )
        if not 0.0 < self.velocity_scale <= 1.0:
            raise ValueError(f"velocity_scale: must be in (0, 1], got {self.velocity_scale}")
        if not 0.0 <= self.state_limit_margin <= 1.0:
            raise ValueError(
                f"state_limit_margin: must be in [0, 1], got {self.state_limit_margin}"
            )
        if self.takeover_blend_s < 0:
            raise ValueError(f"takeover_blend_s: must be >= 0, got {self.takeover_blend_s}")
        if self.hold_timeout_s <= 0:
            raise ValueError(f"hold_timeout_s: must be > 0, got {self.hold_timeout_s}")
        if self.teleop_timeout_s <= 0:
            raise ValueError(f"teleop_timeout_s: must be > 0, got {self.teleop_timeout_s}")

    @property
    def period_s(self) -> float:
        return 1.0 / self.control_hz


class ExecState(str, Enum):
    WAITING = "waiting_for_joint_state"
    HOLD = "holding_no_chunk"
    RUNNING = "running"
    TELEOP = "operator_takeover"
    WATCHDOG = "watchdog_hold"
    OPEN_LOOP = "open_loop_limit"
    HELD = "held"  # hold-to-run: the operator let go
    ESTOP = "estop"


@dataclass(frozen=True)
class StepResult:
    command: np.ndarray | None
    state: ExecState
    reason: str = ""
    # following a plan: what the plan asked for at this step, before the motion limiter
    target: np.ndarray | None = None


class StopLog:
    """What the node logs about the stops the executor makes on its own (watchdog, open-loop
    limit): a stop as it begins, with its reason, and ``running again after ...`` when chunks
    are followed again. A state flapping every period logs a stop at most once per
    ``interval_s``; a stop held back that way is logged once the interval has passed if the arm
    is still stopped, and a return to running is logged only after a logged stop, so the last
    line always says what the executor is doing."""

    STOPS = (ExecState.WATCHDOG, ExecState.OPEN_LOOP)

    def __init__(self, interval_s: float = 1.0) -> None:
        self.interval_s = interval_s
        self._logged: ExecState | None = None  # the stop the log last said, not yet resumed
        self._logged_at = -math.inf
        self._pending: tuple[ExecState, str] | None = None  # a stop held back, still on
        self._state = ExecState.WAITING

    def update(self, state: ExecState, reason: str, now: float) -> tuple[tuple[str, str], ...]:
        """(level, line) to log for this control period's state: ``warning`` or ``info``. A
        period with nothing to say returns the empty tuple (no allocation on the control
        thread)."""
        changed, self._state = state is not self._state, state
        if state in self.STOPS:
            if changed:
                self._pending = (state, reason)
            if self._pending is not None and now - self._logged_at >= self.interval_s:
                stop, why = self._pending
                self._logged, self._logged_at, self._pending = stop, now, None
                return (("warning", f"stopping ({stop.value}): {why}"),)
        elif changed:
            self._pending = None
            if state is ExecState.RUNNING and self._logged is not None:
                resumed, self._logged = self._logged, None
                return (("info", f"running again after {resumed.value}"),)
        return ()


class ChunkExecutor:
    _MAX_ENSEMBLE = 8

    def __init__(self, embodiment: Embodiment, config: ExecutorConfig) -> None:
        self.embodiment = embodiment
        self.config = config
        self.limiter = MotionLimiter(
            SafetyLimits.from_embodiment(embodiment, velocity_scale=config.velocity_scale),
            config.period_s,
        )
        self._measured: np.ndarray | None = None
        self._measured_t = -np.inf
        self._chunks: list[TimedChunk] = []
        self._old: TimedChunk | None = None
        self._blend_start = -np.inf
        self._estop = False
        self._stop_reason = ""
        self._shutting_down = False
        self._takeover = False
        self._held = False
        self._hold_t: float | None = None  # the last hold-to-run message (None: no source)
        self._takeover_from: np.ndarray | None = None
        self._takeover_t = -np.inf
        self._teleop: np.ndarray | None = None
        self._teleop_t = -np.inf
        self.takeovers = 0
        self.state = ExecState.WAITING
        self.watchdog_events = 0
        self.open_loop_stops = 0
        self.rejected: Counter[str] = Counter()
        self.accepted_chunks = 0
        # the last accepted chunk's inference delay as executed: control periods of the running
        # plan between its observation and its arrival (rtc's vla freezes this many points);
        # None when it took over from rest
        self.last_delay_steps: int | None = None

    # ---- inputs ------------------------------------------------------------------------------
    def on_joint_state(self, positions: np.ndarray, t: float) -> None:
        """Measured joint positions (embodiment order) at time ``t``. ValueError naming the joint
        (nothing changes: the state ages and the watchdog holds) for a wrong width, a value that
        is not finite, or one beyond the limits by more than ``state_limit_margin``."""
        p = self.embodiment.check_positions(
            positions, field="joint_states", margin=self.config.state_limit_margin
        )
        self._measured, self._measured_t = p, t
        if self.limiter.position is None:
            self.limiter.reset(p)

    def on_chunk(self, chunk: TimedChunk, t: float) -> tuple[bool, str]:
        """Offer a chunk at time ``t``; returns (accepted, reason if not)."""
        if self._shutting_down:
            return self._reject("shutdown", "shutting down: chunk ignored")
        if chunk.positions.shape[1] != self.embodiment.dof:
            return self._reject(
                "joint_count",
                f"chunk has {chunk.positions.shape[1]} joints, expected {self.embodiment.dof}",
            )
        if t >= self._plan_end(chunk):
            return self._reject(
                "stale",
                f"chunk from an observation {t - chunk.t0_s:.3f} s old (open-loop limit "
                f"{self.config.max_open_loop_s:g} s, last point {chunk.end_s - chunk.t0_s:.3f} s)",
            )
        if self._takeover:
            return self._reject("takeover", "operator has control: policy chunk ignored")
        if self._held:
            return self._reject("held", "held (hold-to-run released): policy chunk ignored")
        following = (
            bool(self._chunks) and not self._stop_reason and t < self._plan_end(self._chunks[-1])
        )
        mode = self.config.execution
        dt = self.config.period_s
        self.last_delay_steps = (
            max(0, int(np.floor((t - chunk.t0_s) / dt + 1e-9))) if following else None
        )
        if mode == "sync":
            # the arm waited for this chunk: it starts now, from its first point, and runs
            # execute_steps points; from rest (or the end of the last one) with a crossfade
            n = min(self.config.execute_steps, chunk.horizon)
            chunk = TimedChunk(positions=chunk.positions[:n], t0_s=t - dt, dt_s=dt)
        if mode in ("crossfade", "sync") or (mode == "rtc" and not following):
            # fade from the plan being followed, or - first chunk, after a stop, a hand-back or
            # while coming to rest - from holding the current command
            self._old = self._snapshot_plan(t) if following else self._hold_plan(t)
            self._chunks = [chunk]
            self._blend_start = t
        elif mode == "rtc":
            # the chunk was inpainted to continue the running one: switch on arrival
            self._old, self._chunks = None, [chunk]
        else:
            kept = self._chunks if following else []
            self._chunks = [*kept, chunk][-self._MAX_ENSEMBLE :]
        self._stop_reason = ""
        self.accepted_chunks += 1
        return True, ""

    def _plan_end(self, chunk: TimedChunk) -> float:
        """When following ``chunk`` stops: ``max_open_loop_s`` after its observation, or its
        last point, whichever comes first (sync: its last executed point; the arm waits)."""
        if self.config.execution == "sync":
            return chunk.end_s + 0.5 * self.config.period_s  # its last point is commanded too
        return min(chunk.end_s, chunk.t0_s + self.config.max_open_loop_s)

    def _hold_plan(self, t: float) -> TimedChunk | None:
        """Coming to rest from the current command as a plan: the path braking at
        ``stop_decel_scale`` x the accelerations would take, then holding. A new chunk fades in
        from this, so a chunk arriving while the arm still moves never stops it dead."""
        lim = self.limiter
        if lim.position is None:
            return None
        dt = self.config.period_s
        braking_s = float(
            np.max(np.abs(lim.velocity) / (lim.limits.max_acceleration * self._stop_scale))
        )
        n = max(2, int(np.ceil((braking_s + self.config.blend_s) / dt)) + 2)
        # point k is due k periods from now: k + 1 braking steps
        points = lim.braking_path(n, self._stop_scale)
        return TimedChunk(positions=points, t0_s=t - dt, dt_s=dt)

    # ---- operator takeover -------------------------------------------------------------------
    def set_takeover(self, active: bool, t: float) -> None:
        """Operator takes over (True) or hands back (False) at time ``t``."""
        active = bool(active) and not self._shutting_down
        if active == self._takeover:
            return
        self._takeover = active
        if active:
            self.takeovers += 1
            self._takeover_from = (
                None if self.limiter.position is None else self.limiter.position.copy()
            )
            self._takeover_t = t
            self._chunks, self._old = [], None
        else:
            # the policy resumes from where the operator left the arm: hold until its next
            # chunk, which on_chunk crossfades in from this hold
            self._chunks, self._old = [], None
            self._stop_reason = ""
            if self.state is not ExecState.ESTOP:
                self.state = ExecState.HOLD

    @property
    def takeover(self) -> bool:
        return self._takeover

    def on_hold(self, held: bool, t: float) -> None:
        """A hold-to-run message at ``t`` (held or running). From the first one on, running
        must be repeated within ``hold_timeout_s`` or the arm is held (checked in ``step``)."""
        self._hold_t = t
        self.set_hold(held)

    def set_hold(self, held: bool) -> None:
        """Hold-to-run (the operator's deadman): held, the arm comes to rest within the joint
        limits and the policy's chunks are refused; released, the policy's next chunk fades
        in from the hold, as after a hand-back."""
        held = bool(held)
        if held == self._held:
            return
        self._held = held
        self._chunks, self._old = [], None

    @property
    def held(self) -> bool:
        return self._held

    def on_teleop(self, positions: np.ndarray, t: float) -> None:
        p = np.asarray(positions, dtype=np.float64)
        if p.shape != (self.embodiment.dof,):
            raise ValueError(f"teleop: expected {self.embodiment.dof} positions, got {p.shape}")
        if not np.all(np.isfinite(p)):
            raise ValueError("teleop: non-finite joint value")
        self._teleop, self._teleop_t = p, t

    def _teleop_step(self, t: float) -> StepResult:
        cfg = self.config
        self.state = ExecState.TELEOP
        if t - self._measured_t > cfg.state_timeout_s:
            return StepResult(
                self.limiter.decelerate(self._stop_scale),
                self.state,
                f"joint state is {t - self._measured_t:.3f} s old",
            )
        if self._teleop is None or t - self._teleop_t > cfg.teleop_timeout_s:
            return StepResult(
                self.limiter.decelerate(self._stop_scale),
                self.state,
                "teleop commands stale: holding",
            )
        start = self._takeover_from if self._takeover_from is not None else self._teleop
        w = minimum_jerk(
            (t - self._takeover_t) / cfg.takeover_blend_s if cfg.takeover_blend_s > 0 else 1.0
        )
        target = (1.0 - w) * start + w * self._teleop
        return StepResult(self.limiter.step(target), self.state, "")

    def stop(self, reason: str) -> None:
        """The policy asks to stop (a hold point or an empty trajectory): come to rest within
        the joint limits and hold until the next chunk."""
        self._chunks = []
        self._old = None
        self._stop_reason = reason

    def shutdown(self) -> None:
        """The runtime is going down: come to rest within the joint limits and hold; chunks and
        teleop are refused from now on. An engaged e-stop stays frozen."""
        self._shutting_down = True
        self._takeover = False
        self.stop("shutting down")

    def brake(self) -> np.ndarray | None:
        """One period of braking toward rest within the joint limits, the limiter alone: the
        last resort of a node whose control loop failed (``step`` is not trusted any more).
        None before the first joint state (nothing was ever commanded); an engaged e-stop stays
        frozen."""
        if self.limiter.position is None:
            return None
        if self._estop:
            return self.limiter.freeze()
        return self.limiter.decelerate(self._stop_scale)

    @property
    def _stop_scale(self) -> float:
        return self.config.stop_decel_scale

    @property
    def at_rest(self) -> bool:
        """True when the last command has zero velocity (or nothing was ever commanded)."""
        return bool(np.all(self.limiter.velocity == 0.0))

    def _reject(self, kind: str, reason: str) -> tuple[bool, str]:
        self.rejected[kind] += 1
        return False, reason

    def set_estop(self, engaged: bool) -> None:
        """Engage (the command freezes this period) or release the e-stop. On release the
        command starts again from the measured state, at rest, and chunks from before are
        dropped: the arm may have been moved meanwhile (by hand; a simulator's reset), and a
        plan made for where it was is not one for where it is."""
        released = self._estop and not engaged
        self._estop = bool(engaged)
        if released and self._measured is not None:
            self.limiter.reset(self._measured)
            self._chunks, self._old = [], None
            self._stop_reason = ""

    @property
    def estop(self) -> bool:
        return self._estop

    # ---- plan --------------------------------------------------------------------------------
    def _plan(self, t: float) -> np.ndarray:
        if self.config.execution == "temporal_ensemble":
            return temporal_ensemble(self._chunks, t, self.config.ensemble_k)
        return crossfade(self._old, self._chunks[-1], t, self._blend_start, self.config.blend_s)

    def _snapshot_plan(self, t: float) -> TimedChunk:
        """The current (possibly mid-blend) plan over the next blend window, frozen as a chunk,
        so a chunk arriving during a blend fades from what was actually being followed."""
        dt = self.config.period_s
        n = max(2, int(np.ceil(self.config.blend_s / dt)) + 2)
        points = np.stack([self._plan(t + i * dt) for i in range(n)])
        return TimedChunk(positions=points, t0_s=t - dt, dt_s=dt)  # point 0 is due at t

    # ---- one control period ------------------------------------------------------------------
    def step(self, t: float) -> StepResult:
        if self._hold_t is not None and t - self._hold_t > self.config.hold_timeout_s:
            self.set_hold(True)  # the hold source went quiet: fail safe
        if self.limiter.position is None:
            self.state = ExecState.WAITING
            return StepResult(None, self.state, "no joint state received yet")
        if self._estop:
            self.state = ExecState.ESTOP
            return StepResult(self.limiter.freeze(), self.state, "e-stop engaged")
        if self._takeover:
            return self._teleop_step(t)
        state, reason = self._watchdog_reason(t)
        if reason:
            if state is not self.state:
                if state is ExecState.WATCHDOG:
                    self.watchdog_events += 1
                elif state is ExecState.OPEN_LOOP:
                    self.open_loop_stops += 1
                self.state = state
            command = self.limiter.decelerate(self._stop_scale)
            return StepResult(command, self.state, reason)
        self.state = ExecState.RUNNING
        target = self._plan(t)
        return StepResult(self.limiter.step(target), self.state, "", target)

    def _watchdog_reason(self, t: float) -> tuple[ExecState, str]:
        """(the state to stop in, why), or (RUNNING, '') to follow the plan."""
        cfg = self.config
        if t - self._measured_t > cfg.state_timeout_s:
            return ExecState.WATCHDOG, f"joint state is {t - self._measured_t:.3f} s old"
        if self._held:
            return ExecState.HELD, "held: the operator released hold-to-run"
        if self._stop_reason:
            return ExecState.WATCHDOG, self._stop_reason
        if not self._chunks:
            return ExecState.HOLD, "no chunk received yet"
        chunk = self._chunks[-1]
        if t >= self._plan_end(chunk):
            if cfg.execution == "sync":
                return ExecState.HOLD, "sync: chunk executed, waiting for the next"
            if chunk.end_s <= chunk.t0_s + cfg.max_open_loop_s:
                why = "the plan ran out"
            else:
                why = f"open-loop limit ({cfg.max_open_loop_s:g} s after its observation)"
            return ExecState.OPEN_LOOP, f"{why} with no newer chunk: coming to rest"
        return ExecState.RUNNING, ""

    @property
    def measured(self) -> np.ndarray | None:
        return None if self._measured is None else self._measured.copy()
