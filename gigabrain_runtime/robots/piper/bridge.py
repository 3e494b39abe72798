"""The PiPER bridge core: canonical joint vectors <-> the values of one or more piper_ros drivers.

Everything piper_bridge decides lives here, without ROS, on an injected clock (``now``,
monotonic seconds) and integer nanosecond stamps, so that it is tested without DDS; the node
(``ros/piper_bridge_node.py``) only turns messages into calls and results into messages.

* **state** (driver -> canonical): each arm's ``joint_states_single`` is kept; arm 0 paces the
  merged stream, the other arms contribute their latest sample. Nothing is published while any
  arm is silent for longer than ``state_timeout_s``, so the runtime's watchdogs hold the robot
  instead of acting on a half-known state. The merged stamp is the oldest arm's.
* **leader** (``joint_ctrl`` -> ``teleop/joint_command``): the same merge, for the leader arms an
  operator moves; a frame whose stamp does not advance is the driver repeating the last one (or
  its stamp-0 frame when no leader is on the bus) and is ignored.
* **commands** (canonical -> driver): validated (names, finite, position limits) before anything
  reaches a driver; a bad one is dropped, so the driver keeps its last target and the arm holds.
  With ``enable_on_start`` an arm is enabled once its driver is discovered, and commanded only
  ``enable_settle_s`` later. ``enable_flag: true`` is repeated on every enable tick of that
  window: discovery is not symmetric, so the bridge may see the driver's subscription before the
  driver has matched the bridge's publisher, and a single flag sent then can arrive late (a
  loaded machine has shown ~0.35 s). Repeating it before the first command costs nothing (the
  driver re-initialises a gripper that has not been commanded yet); it is never sent once the
  arm is commanded.
* **shutdown**: the executor's braking stream keeps flowing until it has come to rest
  (``REST_RUN`` identical commands in a row: the executor sends its resting command five
  times), has been quiet for ``QUIET_S`` (the executor gone), or ``shutdown_grace_s`` has
  passed. Rest is read from the stream, not from a pause in it: on a loaded machine the
  executor's control thread can stall for a few hundred ms mid-brake.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from gigabrain_runtime.diagnostics.stats import Level, RateMeter, Status
from gigabrain_runtime.robots.embodiment import Embodiment, get_embodiment, positions_by_name
from gigabrain_runtime.robots.joint_calibration import JointCalibration
from gigabrain_runtime.robots.piper.piper_ros import (
    ArmSplit,
    PiperDriverConfig,
    driver_positions,
)

QUIET_S = 0.5  # the executor's stream counts as ended after this long without a command
REST_RUN = 3  # ... or once this many identical commands arrived in a row (at rest)


class BridgeSettings(Protocol):
    """What the core reads of its node's parameters (``params.nodes.PiperBridgeParams``, where
    their defaults, ranges and descriptions are written once)."""

    robot: str
    arm_namespaces: tuple[str, ...]
    arm_prefixes: tuple[str, ...]
    speed_percent: int
    gripper_effort: float
    joints_calibration: str
    enable_on_start: bool
    enable_settle_s: float
    state_timeout_s: float
    leader_timeout_s: float
    shutdown_grace_s: float


@dataclass(frozen=True)
class Merged:
    """One canonical joint vector, stamped (ns) with the oldest contributing arm's stamp."""

    positions: np.ndarray
    stamp_ns: int


@dataclass(frozen=True)
class DriverCommand:
    """One ``joint_ctrl_single`` message for arm ``arm``."""

    arm: int
    name: list[str]
    position: list[float]
    velocity: list[float]
    effort: list[float]


class _Arm:
    """What the bridge knows about one driver."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.state: np.ndarray | None = None  # raw driver values [7]
        self.state_stamp_ns = 0
        self.state_at = -math.inf
        self.state_rate = RateMeter()
        self.leader: np.ndarray | None = None
        self.leader_stamp_ns = 0
        self.leader_at = -math.inf
        self.enabled_at: float | None = None
        self.commands_sent = 0


class PiperBridge:
    """One bridge between the embodiment's joint vector and ``len(arm_namespaces)`` drivers."""

    def __init__(self, params: BridgeSettings, embodiment: Embodiment | None = None) -> None:
        self.params = params
        self.embodiment = embodiment or get_embodiment(params.robot)
        self.driver = PiperDriverConfig(
            speed_percent=params.speed_percent, gripper_effort_nm=params.gripper_effort
        )
        self.split = ArmSplit.from_embodiment(self.embodiment, params.arm_prefixes)
        self.calibration = JointCalibration.load(
            params.joints_calibration, self.embodiment.joint_names
        )
        self.arms = [_Arm(ns) for ns in params.arm_namespaces]
        self.errors: dict[str, str] = {}
        self.commands_in = 0
        self.commands_dropped = 0
        self._last_command_at = -math.inf
        self._last_command: np.ndarray | None = None
        self._same_in_a_row = 0
        self._command_rate = RateMeter()

    def set_params(self, params: BridgeSettings) -> None:
        """Take the parameters that may change while running (the timing ones)."""
        self.params = params

    # ---- enable ------------------------------------------------------------------------------
    def should_enable(self, arm: int, now: float, *, driver_listening: bool) -> bool:
        """True when the caller should send ``enable_flag: true`` to ``arm``: from the moment its
        driver first listens on ``enable_flag`` until ``enable_settle_s`` later, when commands
        start flowing to that arm (never after: re-enabling resets the driver's gripper)."""
        a = self.arms[arm]
        if not self.params.enable_on_start:
            return False
        if a.enabled_at is None:
            if not driver_listening:
                return False
            a.enabled_at = now
            return True
        return now - a.enabled_at < self.params.enable_settle_s

    def may_command(self, arm: int, now: float) -> bool:
        if not self.params.enable_on_start:
            return True
        at = self.arms[arm].enabled_at
        return at is not None and now - at >= self.params.enable_settle_s

    # ---- driver -> canonical -----------------------------------------------------------------
    def _driver_values(
        self, arm: int, names: list[str], positions: list[float], field: str
    ) -> np.ndarray | None:
        """The 7 driver values of ``arm``, or None (the reason kept for /diagnostics)."""
        try:
            raw = driver_positions(names, positions, field=field)
        except ValueError as exc:
            self.errors[f"arm{arm}.{field}"] = str(exc)
            return None
        self.errors.pop(f"arm{arm}.{field}", None)
        return raw

    def _canonical(self, per_arm: list[np.ndarray]) -> np.ndarray:
        return self.calibration.to_canonical(self.split.merge(np.stack(per_arm)))

    def on_state(
        self, arm: int, names: list[str], positions: list[float], stamp_ns: int, now: float
    ) -> Merged | None:
        """A driver's ``joint_states_single``; returns the canonical ``joint_states`` to publish
        (when arm 0 paces and every arm is fresh), else None."""
        a = self.arms[arm]
        raw = self._driver_values(arm, names, positions, "joint_states_single")
        if raw is None:
            return None
        a.state, a.state_stamp_ns, a.state_at = raw, stamp_ns, now
        a.state_rate.tick(now)
        if arm != 0:
            return None  # arm 0 paces the merged stream; the others give their latest sample
        timeout = self.params.state_timeout_s
        if any(x.state is None or now - x.state_at > timeout for x in self.arms):
            return None  # one arm is silent: publish nothing, so the runtime's watchdogs hold
        oldest = min(x.state_stamp_ns for x in self.arms)
        return Merged(self._canonical([x.state for x in self.arms]), oldest)

    def on_leader(
        self, arm: int, names: list[str], positions: list[float], stamp_ns: int, now: float
    ) -> Merged | None:
        """A driver's ``joint_ctrl`` (leader arm); returns ``teleop/joint_command`` or None."""
        a = self.arms[arm]
        if stamp_ns <= a.leader_stamp_ns:
            return None  # the driver republishes the last leader frame (stamp 0 without one)
        raw = self._driver_values(arm, names, positions, "joint_ctrl")
        if raw is None:
            return None
        a.leader, a.leader_stamp_ns, a.leader_at = raw, stamp_ns, now
        timeout = self.params.leader_timeout_s
        if arm != 0 or any(x.leader is None or now - x.leader_at > timeout for x in self.arms):
            return None
        return Merged(self._canonical([x.leader for x in self.arms]), stamp_ns)

    # ---- canonical -> driver -----------------------------------------------------------------
    def on_command(
        self, names: list[str], positions: list[float], now: float
    ) -> list[DriverCommand]:
        """A canonical ``joint_command``; returns the driver messages to send (none when it is
        refused - the drivers keep their last targets and the arms hold - or no arm may be
        commanded yet)."""
        self.commands_in += 1
        try:
            p = positions_by_name(
                names, positions, self.embodiment.joint_names, field="joint_command"
            )
            self.embodiment.check_positions(p, field="joint_command")
        except ValueError as exc:
            self.commands_dropped += 1
            self.errors["joint_command"] = str(exc)
            return []
        self.errors.pop("joint_command", None)
        self._last_command_at = now
        same = self._last_command is not None and np.array_equal(p, self._last_command)
        self._same_in_a_row = self._same_in_a_row + 1 if same else 1
        self._last_command = p
        self._command_rate.tick(now)
        per_arm = self.split.split(self.calibration.to_robot(p))
        out = []
        for i, a in enumerate(self.arms):
            if not self.may_command(i, now):
                continue
            out.append(DriverCommand(i, *self.driver.command_fields(per_arm[i])))
            a.commands_sent += 1
        return out

    # ---- shutdown ----------------------------------------------------------------------------
    def braking_done(self, now: float, shutdown_started: float) -> bool:
        """On shutdown: True once the executor's braking stream has come to rest (``REST_RUN``
        identical commands in a row), has been quiet for ``QUIET_S``, or ``shutdown_grace_s``
        has passed since ``shutdown_started``."""
        return (
            self._same_in_a_row >= REST_RUN
            or now - self._last_command_at > QUIET_S
            or now - shutdown_started >= self.params.shutdown_grace_s
        )

    # ---- diagnostics -------------------------------------------------------------------------
    def status(self, now: float, enable_topics: list[str] | None = None) -> Status:
        s = Status("piper_bridge")
        s.values = {
            "commands_in": str(self.commands_in),
            "commands_dropped": str(self.commands_dropped),
            "command_hz": f"{self._command_rate.rate(now):.1f}",
            "calibration": "identity" if self.calibration.is_identity else self.calibration.source,
        }
        for i, a in enumerate(self.arms):
            tag = self.split.prefixes[i] or f"arm{i}_"
            s.values[f"{tag}state_hz"] = f"{a.state_rate.rate(now):.1f}"
            s.values[f"{tag}commands_sent"] = str(a.commands_sent)
            s.values[f"{tag}enabled"] = str(a.enabled_at is not None).lower()
            if a.state is None:
                s.worse(Level.STALE, f"no joint_states_single from {a.namespace or 'driver'}")
            elif now - a.state_at > self.params.state_timeout_s:
                s.worse(Level.ERROR, f"{tag}driver state is {now - a.state_at:.2f} s old")
            if self.params.enable_on_start and a.enabled_at is None:
                where = enable_topics[i] if enable_topics else f"{a.namespace or '.'}/enable_flag"
                s.worse(Level.WARN, f"waiting for the driver's {where}")
        for source, err in list(self.errors.items()):
            s.worse(Level.WARN, f"{source}: {err}")
        return s
