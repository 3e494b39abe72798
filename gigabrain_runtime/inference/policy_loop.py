"""The policy loop: every decision the vla node makes, without ROS.

The node only converts messages and publishes; this class decides. Inputs arrive from any
thread (``put_image``, ``put_state``, ``input_error``); the node's inference thread calls
:meth:`PolicyLoop.step` at ``inference_hz``, its world-model thread :meth:`PolicyLoop.world_step`,
its 100 Hz timer :meth:`PolicyLoop.watchdog`, and its diagnostics timer
:meth:`PolicyLoop.statuses`. Time comes from an injected :class:`Clock` (``now_s``: the ROS clock
that stamps messages; ``monotonic``: intervals), so every decision is testable without DDS.

Decisions:

* **freshness**: an observation is formed only from inputs younger than their age limits whose
  stamps agree (perception/sync.py: a camera's limit follows its measured frame rate);
  otherwise no chunk, and the reason is kept for diagnostics. A *late* input (older than its
  limit, younger than ``input_timeout_s``) is not an emergency: no chunk this tick, counted as
  ``late_ticks``, and the executor keeps following the plan it has (up to its
  ``max_open_loop_s``);
* **stop**: when an input is *gone* (nothing for ``input_timeout_s``) or the joint state is
  *invalid* (its last message was refused), :meth:`watchdog` says so once, naming it, and the
  node publishes a hold point (the executor comes to rest within the joint limits) instead of
  letting the plan run;
* **mode**: standard mode runs with the world model's prediction only while it is younger than
  ``max_world_model_age_s``; otherwise the chunk is computed in efficient mode and that is
  reported;
* **at the door**: a joint state further outside the embodiment's limits than
  ``state_limit_margin`` (of each joint's range), or not finite, is refused and named (the
  state then ages like a lost one); a chunk with a non-finite action is never returned
  (counted, ERROR) - the executor keeps its plan or holds;
* **errors**: an observation the backend refuses (a validation ``ValueError`` raised before the
  model runs) is an input problem; anything raised while the model runs is an inference error,
  counted; neither ends the loop.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from gigabrain_runtime.diagnostics.stats import LatencyStats, Level, RateMeter, Status
from gigabrain_runtime.inference.base import Backend
from gigabrain_runtime.inference.preprocessing import InputError, still_chunk
from gigabrain_runtime.inference.types import (
    ActionChunk,
    ActionGuide,
    Mode,
    Observation,
    WorldPrediction,
)
from gigabrain_runtime.perception.sync import Assembled, ObservationAssembler, SyncConfig
from gigabrain_runtime.robots.embodiment import LIMIT_MARGIN, Embodiment, get_embodiment

# the input whose refused message stops the arm at once (a refused frame counts as a missing
# one: its camera is gone after input_timeout_s)
_STATE = "joint_states"


class Clock(Protocol):
    def now_s(self) -> float:
        """Seconds on the clock that stamps messages (ROS time, or sim time)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a monotonic clock, for intervals."""
        ...


class SystemClock:
    """Wall-clock stamps and time.monotonic(): outside ROS (tests pass their own clock)."""

    def now_s(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


@dataclass(frozen=True, kw_only=True)
class PolicyLoopConfig:
    robot: str
    mode: Mode = Mode.EFFICIENT
    instruction: str = ""
    inference_hz: float = 2.0
    control_hz: float = 50.0
    max_world_model_age_s: float = 1.0
    sync: SyncConfig = SyncConfig()
    state_limit_margin: float = LIMIT_MARGIN
    # how the executor takes the chunks over (control/blending.py); the loop's part: sync waits
    # for execute_steps points to run before observing again, rtc guides each chunk by the last
    execution: str = "crossfade"
    execute_steps: int = 30
    # rtc: the delay (control periods) is the largest of the last this-many the executor measured
    delay_window: int = 5
    # a delay the publisher adds after each inference (a slower accelerator, for benchmarks);
    # sync counts it in before observing again
    inject_delay_s: float = 0.0

    def __post_init__(self) -> None:
        from gigabrain_runtime.control.blending import EXECUTION_MODES

        if self.execution not in EXECUTION_MODES:
            raise ValueError(
                f"execution: unknown {self.execution!r} (known: {', '.join(EXECUTION_MODES)})"
            )
        if not (np.isfinite(self.inject_delay_s) and 0.0 <= self.inject_delay_s <= 10.0):
            raise ValueError(f"inject_delay_s: must be in [0, 10], got {self.inject_delay_s!r}")
        for name in ("execute_steps", "delay_window"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                raise ValueError(f"{name}: must be an int >= 1, got {getattr(self, name)!r}")
        object.__setattr__(self, "mode", Mode.parse(self.mode))
        for name in ("inference_hz", "control_hz", "max_world_model_age_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
                raise ValueError(f"{name}: must be a positive number, got {value!r}")
        if not isinstance(self.instruction, str):
            raise ValueError(f"instruction: must be a string, got {self.instruction!r}")
        if not 0.0 <= self.state_limit_margin <= 1.0:
            raise ValueError(
                f"state_limit_margin: must be in [0, 1], got {self.state_limit_margin!r}"
            )


@dataclass(frozen=True)
class PolicyOutput:
    """One published chunk: the chunk, the observation it came from, the inference time."""

    chunk: ActionChunk
    observation: Assembled
    latency_ms: float


@dataclass
class _World:
    prediction: WorldPrediction
    monotonic_s: float


class PolicyLoop:
    def __init__(self, backend: Backend, config: PolicyLoopConfig, clock: Clock) -> None:
        self.backend = backend
        self.config = config
        self.clock = clock
        manifest = backend.manifest
        entry = manifest.embodiment(config.robot)
        self.joint_names = entry.joint_names
        self.cameras = entry.cameras
        cfg = manifest.config
        self.horizon = cfg.action_expert.horizon
        self.has_world_model = cfg.variant.has_world_model
        self.sync = ObservationAssembler(self.cameras, config.sync)
        self.limits = known_limits(config.robot, self.joint_names)
        self._lock = threading.Lock()
        self._mode = config.mode
        self.set_mode(config.mode)
        self._instruction = config.instruction
        self._max_wm_age_s = config.max_world_model_age_s
        self._input_errors: dict[str, str] = {}
        self._rates = {name: RateMeter() for name in (*self.cameras, "joint_states")}
        self._world: _World | None = None
        self._effective_mode = Mode.EFFICIENT
        self._refusal = "starting"
        self._prompt: tuple[str, int] = ("", 0)
        self._stop_sent = False
        self._late = ""
        self.late_ticks = 0
        self.stops = 0
        self._heartbeat = clock.monotonic()
        self.deadline_misses = 0
        self.errors = 0
        self.outputs_refused = 0
        self.latency = LatencyStats()
        self.obs_to_chunk = LatencyStats()
        self.chunk_rate = RateMeter()
        self.world_latency = LatencyStats()
        # execution: the last published chunk (robot units) and its observation stamp; the
        # executor's measured delays; sync: no observation before this time
        self._prev: tuple[np.ndarray, float] | None = None
        self._delays: deque[int] = deque(maxlen=config.delay_window)
        self._sync_until = -np.inf
        self.guided_chunks = 0
        self.last_guide_delay: int | None = None

    # ---- settings (any thread) ---------------------------------------------------------------
    @property
    def mode(self) -> Mode:
        return self._mode

    def set_mode(self, mode: Mode | str) -> None:
        """ValueError (nothing changes) for an unknown mode, or standard without world model."""
        mode = Mode.parse(mode)
        if mode is Mode.STANDARD and not self.has_world_model:
            raise ValueError(
                f"mode: standard needs a world model; this engine "
                f"({self.backend.manifest.config.variant.name}) runs efficient only"
            )
        self._mode = mode

    @property
    def instruction(self) -> str:
        return self._instruction

    def set_instruction(self, text: str) -> None:
        if not isinstance(text, str):
            raise ValueError(f"instruction: must be a string, got {type(text).__name__}")
        self._instruction = text

    def set_max_world_model_age(self, seconds: float) -> None:
        if not (np.isfinite(seconds) and seconds > 0):
            raise ValueError(f"max_world_model_age_s: must be > 0, got {seconds}")
        self._max_wm_age_s = float(seconds)

    # ---- inputs (any thread) -----------------------------------------------------------------
    def put_image(self, camera: str, stamp_s: float, image: np.ndarray) -> None:
        """A camera's frame, already at the model's size (perception/frames.py)."""
        self.sync.put_image(camera, stamp_s, image)
        self.input_error(camera, None)
        self.arrived(camera)

    def put_state(self, stamp_s: float, positions: np.ndarray) -> bool:
        """Joint positions in the robot's joint order. False (and the reason kept, naming the
        joint) for a state that is not finite or beyond the limits by more than the margin."""
        if self.limits is not None:
            try:
                positions = self.limits.check_positions(
                    positions, field="joint_states", margin=self.config.state_limit_margin
                )
            except ValueError as exc:
                self.input_error("joint_states", str(exc).removeprefix("joint_states: "))
                return False
        elif not np.all(np.isfinite(positions)):
            self.input_error("joint_states", f"not finite: {np.asarray(positions).tolist()}")
            return False
        self.sync.put_state(stamp_s, positions)
        self.input_error("joint_states", None)
        return True

    def arrived(self, name: str) -> None:
        """Count a message of input ``name`` as it arrives (a node that coalesces a stream
        calls this per message, so the reported rate is the stream's, not the reads')."""
        self._rates[name].tick(self.clock.monotonic())

    def last_state(self) -> np.ndarray | None:
        """The newest accepted joint positions (the robot's joint order), or None."""
        return self.sync.last_state()

    def input_error(self, name: str, message: str | None) -> None:
        """Record (or, with None, clear) why the last message of input ``name`` was dropped."""
        with self._lock:
            if message is None:
                self._input_errors.pop(name, None)
            else:
                self._input_errors[name] = message

    # ---- the watchdog (100 Hz) ---------------------------------------------------------------
    def stop_reason(self) -> str:
        """Why the arm must stop now, naming the input: one gone (nothing for
        ``input_timeout_s``) or the joint state invalid (its last message refused); '' when
        none is."""
        gone = self.sync.gone(self.clock.now_s())
        timeout = self.config.sync.input_timeout_s
        reasons = [
            f"{name}: gone (nothing for {age:.2f} s, timeout {timeout:g} s)"
            for name, age in gone.items()
        ]
        with self._lock:
            invalid = self._input_errors.get(_STATE)
        if invalid is not None:
            reasons.append(f"{_STATE}: invalid ({invalid})")
        return "; ".join(reasons)

    def watchdog(self) -> str | None:
        """The reason to stop the robot now, once per transition to an input gone or invalid;
        else None. (A late frame only skips a chunk: the executor follows its plan.)"""
        reason = self.stop_reason()
        if not reason:
            self._stop_sent = False
            return None
        if self._stop_sent:
            return None
        self._stop_sent = True
        self.stops += 1
        return reason

    # ---- execution (rtc, sync) ----------------------------------------------------------------
    def observe_delay(self, steps: int) -> None:
        """The executor measured a chunk's delay: control periods of the running plan between
        the chunk's observation and its arrival (``execution/delay_steps``)."""
        if isinstance(steps, (int, np.integer)) and 0 <= steps <= 10 * self.horizon:
            self._delays.append(int(steps))

    def delay_steps(self) -> int:
        """The delay rtc freezes: the largest of the last ``delay_window`` executed delays
        (warm-up falls out of the window), or before any, this loop's own observation-to-chunk
        time in control periods."""
        if self._delays:
            return max(self._delays)
        if self.obs_to_chunk.count:
            return math.ceil(self.obs_to_chunk.last / 1e3 * self.config.control_hz)
        return 0

    def reset_execution(self) -> None:
        """The arm stopped following the last chunk (a stop, an e-stop, a takeover, a reset):
        the next chunk is not guided by it, and sync need not wait for it."""
        self._prev = None
        self._sync_until = -np.inf

    def guide(self, stamp_s: float) -> ActionGuide | None:
        """rtc's guide for a chunk observed at ``stamp_s``: the last chunk on the new chunk's
        time grid, frozen for :meth:`delay_steps` points and fading to 0 where it ends
        (arXiv 2506.07339, eq. 5); None when there is no last chunk still running."""
        if self._prev is None:
            return None
        actions, t0 = self._prev
        h = self.horizon
        shift = int(round((stamp_s - t0) * self.config.control_hz))
        if shift < 0 or shift >= h:
            return None
        d = min(self.delay_steps(), h - shift)
        idx = np.minimum(np.arange(h) + shift, h - 1)
        weights = np.zeros(h)
        weights[:d] = 1.0
        overlap = h - shift  # points of the last chunk still ahead
        i = np.arange(d, overlap)
        if len(i):
            c = (overlap - i) / (overlap - d + 1)
            weights[d:overlap] = c * np.expm1(c) / np.expm1(1.0)
        self.last_guide_delay = d
        return ActionGuide(actions=actions[idx], weights=weights)

    # ---- the inference tick ------------------------------------------------------------------
    def current_world(self) -> WorldPrediction | None:
        world = self._world
        if world is None or self.clock.monotonic() - world.monotonic_s > self._max_wm_age_s:
            return None
        return world.prediction

    def step(self) -> PolicyOutput | None:
        """Assemble, infer, return the chunk to publish; None when there is none this tick (the
        reason is kept for :meth:`statuses`). Never raises for bad inputs or model errors."""
        t0 = self.clock.monotonic()
        self._heartbeat = t0
        if self.config.execution == "sync" and self.clock.now_s() < self._sync_until - 1e-6:
            return None  # the arm is running the last chunk; observe when it is done
        assembled = self.sync.assemble(self.clock.now_s())
        if not isinstance(assembled, Assembled):
            self._refusal = assembled.reason
            if assembled.late:
                self.late_ticks += 1
                self._late = assembled.reason
            return None
        world = self.current_world() if self._mode is Mode.STANDARD else None
        effective = Mode.STANDARD if world is not None else Mode.EFFICIENT
        obs = Observation(
            images=assembled.images,
            state=assembled.state,
            instruction=self._instruction,
            embodiment=self.config.robot,
            world=world,
        )
        guide = self.guide(assembled.stamp_s) if self.config.execution == "rtc" else None
        try:
            chunk = self.backend.infer(obs, mode=effective, guide=guide)
        except InputError as exc:
            self._refusal = f"inference input: {exc}"
            return None
        except Exception as exc:  # noqa: BLE001 - the loop reports and goes on
            self.errors += 1
            self._refusal = f"inference error: {type(exc).__name__}: {exc}"
            return None
        problem = self._check_output(chunk.actions)
        if problem:
            self.outputs_refused += 1
            self._refusal = f"model output refused: {problem}"
            return None
        self._refusal = ""
        self._effective_mode = effective
        self._prev = (np.asarray(chunk.actions, dtype=np.float64), assembled.stamp_s)
        self.guided_chunks += guide is not None
        if self.config.execution == "sync":
            self._sync_until = (
                self.clock.now_s()
                + self.config.inject_delay_s
                + self.config.execute_steps / self.config.control_hz
            )
        self._prompt = (chunk.prompt, chunk.num_tokens)
        t1 = self.clock.monotonic()
        elapsed = t1 - t0
        self.latency.add(elapsed * 1e3)
        self.obs_to_chunk.add((self.clock.now_s() - assembled.stamp_s) * 1e3)
        self.chunk_rate.tick(t1)
        if elapsed > 1.0 / self.config.inference_hz:
            self.deadline_misses += 1
        return PolicyOutput(chunk=chunk, observation=assembled, latency_ms=elapsed * 1e3)

    @staticmethod
    def _check_output(actions: np.ndarray) -> str:
        """Why a chunk's actions must not reach the robot, or ''. Only non-finite values are
        refused here: the executor's limiter clamps targets to the joint limits, and a
        random-weight engine (the tiny preset, the test checkpoints) routinely asks for more
        than a joint's range beyond its limits - a range check needs trained weights."""
        bad = ~np.isfinite(actions)
        if not bad.any():
            return ""
        point, joint = (int(i) for i in np.argwhere(bad)[0])
        return f"{int(bad.sum())} actions are not finite (first: point {point}, joint {joint})"

    @property
    def refusal(self) -> str:
        """Why the last tick published no chunk ('' if it did)."""
        return self._refusal

    # ---- the world-model tick ------------------------------------------------------------------
    def world_step(self) -> bool:
        """In standard mode, predict the future from the current observation with the arm
        holding still (:func:`still_chunk`, as the policy was trained) and keep it for the next
        steps. True when a prediction was made."""
        if self._mode is not Mode.STANDARD or not self.has_world_model:
            return False
        assembled = self.sync.assemble(self.clock.now_s())
        if not isinstance(assembled, Assembled):
            return False
        actions = still_chunk(assembled.state, self.horizon)
        obs = Observation(
            images=assembled.images,
            state=assembled.state,
            instruction=self._instruction,
            embodiment=self.config.robot,
        )
        try:
            prediction = self.backend.predict_world(obs, actions)
        except InputError as exc:
            self.input_error("world_model", str(exc))
            return False
        except Exception as exc:  # noqa: BLE001
            self.errors += 1
            self.input_error("world_model", f"{type(exc).__name__}: {exc}")
            return False
        self.input_error("world_model", None)
        self.world_latency.add(prediction.inference_ms)
        self._world = _World(prediction, self.clock.monotonic())
        return True

    # ---- diagnostics ---------------------------------------------------------------------------
    def statuses(self) -> list[Status]:
        """The ``inputs`` and ``inference`` statuses: an input gone or invalid is an ERROR
        naming it; a late one only counts (``late_ticks``: ticks without a chunk because an
        input was older than its age limit while the executor followed its plan)."""
        now_m = self.clock.monotonic()
        cfg = self.config.sync
        inputs = Status("inputs")
        limits = self.sync.age_limits()
        for name, age in self.sync.ages(self.clock.now_s()).items():
            inputs.values[f"{name}_hz"] = f"{self._rates[name].rate(now_m):.1f}"
            inputs.values[f"{name}_age_s"] = "never" if age == float("inf") else f"{age:.3f}"
            inputs.values[f"{name}_age_limit_s"] = f"{limits[name]:.3f}"
            if age == float("inf"):
                inputs.worse(Level.STALE, f"{name}: nothing received")
            elif age > cfg.input_timeout_s:
                inputs.worse(Level.ERROR, f"{name}: gone (nothing for {age:.2f} s)")
        with self._lock:
            errors = list(self._input_errors.items())
        for name, err in errors:
            inputs.worse(Level.ERROR, f"{name}: {err}")
        inputs.values["late_ticks"] = str(self.late_ticks)
        inputs.values["last_late"] = self._late or "none"
        inputs.values["stops"] = str(self.stops)

        inf = Status("inference")
        world = self._world
        wm_age = now_m - world.monotonic_s if world is not None else float("inf")
        prompt, prompt_tokens = self._prompt
        manifest = self.backend.manifest
        inf.values = {
            "mode": self._mode.value,
            "effective_mode": self._effective_mode.value,
            "backend": self.backend.name,
            "latency_p50_ms": f"{self.latency.percentile(50):.2f}",
            "latency_p99_ms": f"{self.latency.percentile(99):.2f}",
            "obs_to_chunk_p50_ms": f"{self.obs_to_chunk.percentile(50):.2f}",
            "obs_to_chunk_p99_ms": f"{self.obs_to_chunk.percentile(99):.2f}",
            "chunks_hz": f"{self.chunk_rate.rate(now_m):.2f}",
            "chunks": str(self.latency.count),
            "deadline_misses": str(self.deadline_misses),
            "world_model_age_s": "none" if wm_age == float("inf") else f"{wm_age:.2f}",
            "world_model_p50_ms": f"{self.world_latency.percentile(50):.2f}",
            "inference_loop_age_s": f"{now_m - self._heartbeat:.2f}",
            "inference_errors": str(self.errors),
            "outputs_refused": str(self.outputs_refused),
            "state_limits": "checked" if self.limits is not None else "unknown (finiteness only)",
            "model": manifest.preset,
            "variant": manifest.config.variant.name,
            "embodiment_slot": str(manifest.embodiment(self.config.robot).embodiment_id),
            "prompt": prompt,
            "prompt_tokens": str(prompt_tokens),
            "execution": self.config.execution,
            "delay_steps": str(self.delay_steps()),
            "delays_measured": str(len(self._delays)),
            "guided_chunks": str(self.guided_chunks),
        }
        stalled = now_m - self._heartbeat
        if stalled > 5.0 / self.config.inference_hz:
            inf.worse(Level.ERROR, f"inference thread stalled for {stalled:.1f} s")
        if self._refusal.startswith("model output refused"):
            inf.worse(Level.ERROR, f"no chunk: {self._refusal}")
        elif self._refusal == self._late:
            pass  # late frame, plan continued: counted in inputs.late_ticks
        elif self._refusal:
            inf.worse(Level.WARN, f"no chunk: {self._refusal}")
        if self._mode is Mode.STANDARD and self._effective_mode is Mode.EFFICIENT:
            inf.worse(
                Level.WARN,
                "standard mode: world-model prediction missing or older than "
                f"{self._max_wm_age_s:g} s, running efficient",
            )
        return [inputs, inf]


def known_limits(robot: str, joint_names: tuple[str, ...]) -> Embodiment | None:
    """The embodiment whose joint limits check states and outputs: the built-in (or YAML)
    embodiment named like the engine's robot, when its joints are the engine's; else None."""
    try:
        embodiment = get_embodiment(robot)
    except (ValueError, FileNotFoundError):
        return None
    return embodiment if embodiment.joint_names == tuple(joint_names) else None
