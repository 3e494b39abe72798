"""The arm inside the piper_ros driver stand-in, without ROS: how the driver reads what it is sent,
how the arm moves, and an audit of everything a careful driver would object to.

It reads ``joint_ctrl_single`` as the driver does (robots/piper/piper_ros.py): joint1..6 by name
(a missing one goes to 0 rad), the gripper by index 6, ``velocity[6]`` the speed percentage
(used only with exactly 7 velocities not all zero, else 100 %), ``effort[6]`` the gripper torque;
commands are ignored until enabled, and enabling re-initialises the gripper to 0. The arm moves
toward its target at ``speed% x max_speed_rad_s`` (gripper 0.1 m/s).

Unlike the driver it audits: commands before the first enable and while disabled, missing names,
speed or gripper effort not set, positions outside the URDF limits (as true angles, through the
arm's encoder calibration), the gripper outside 0..0.08 m, and the largest joint velocity implied
by consecutive commands.
Times are seconds on the caller's clock (``now``), stamps the senders' header stamps.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from typing import Any, Protocol

import numpy as np

from gigabrain_runtime.robots.embodiment import get_embodiment
from gigabrain_runtime.robots.joint_calibration import JointCalibration
from gigabrain_runtime.robots.piper.piper_ros import DRIVER_JOINTS, GRIPPER_INDEX

GRIPPER_SPEED_M_S = 0.1
GRIPPER_RANGE_M = (0.0, 0.08)


class StandinSettings(Protocol):
    """What the arm reads of the stand-in node's parameters (``params.nodes.PiperStandinParams``,
    where their defaults, ranges and descriptions are written once)."""

    max_speed_rad_s: float
    command_period_s: float
    encoder_calibration: str
    start: tuple[float, ...]


class StandinArm:
    """One simulated PiPER behind a piper_ros driver; thread-safe (callbacks and a timer)."""

    def __init__(self, params: StandinSettings, t0: float) -> None:
        self.max_speed = params.max_speed_rad_s
        self.command_period_s = params.command_period_s
        self.limits = get_embodiment("piper")  # the URDF limits the audit checks against
        self.encoder = JointCalibration.load(params.encoder_calibration, self.limits.joint_names)
        self._t0 = t0
        self._lock = threading.Lock()
        self.q = np.array(params.start, dtype=np.float64)
        self.start_pose = self.q.copy()
        self.target = self.q.copy()
        self.speed_percent = 100.0
        self.enabled = False
        self.audit: dict[str, Any] = {
            "commands": 0,
            # ignored before the arm was first enabled: the driver subscribes to commands and
            # enable_flag separately and DDS orders nothing across topics, so on a loaded
            # machine the first commands may overtake the first enable (the real driver
            # ignores them the same way; the arm stays braked)
            "commands_before_enable": 0,
            # ignored after the arm had been enabled and was disabled again: a real fault
            "commands_while_disabled": 0,
            # ... unless it is the target the arm already holds (a resting command sent before
            # a disable on shutdown can be taken after it, DDS ordering nothing across topics):
            # ignored, harmless, counted apart
            "repeats_while_disabled": 0,
            "missing_names": 0,
            "speed_unset": 0,
            "effort_unset": 0,
            "outside_limits": 0,
            "gripper_out_of_range": 0,
            "speed_percent_seen": [],
            "gripper_effort_seen": [],
            "max_velocity_rad_s": 0.0,  # largest step per command period, over all joints
            "first_command_s": None,
            "last_command_s": None,
            "enable_events": [],
        }
        self.recent: deque[tuple[float, list[float]]] = deque(maxlen=400)
        # spacing of consecutive commands by their senders' stamps: the rate they were sent at,
        # whatever a loaded machine drops on the way (keep-last-1, as the driver subscribes)
        self._stamp_gaps: deque[float] = deque(maxlen=5000)
        self._last_cmd: np.ndarray | None = None
        self._last_stamp = 0.0

    def set_enabled(self, enabled: bool, now: float) -> None:
        with self._lock:
            self.enabled = enabled
            self.audit["enable_events"].append([round(now - self._t0, 3), enabled])
            if enabled:
                self.target[GRIPPER_INDEX] = 0.0  # the driver re-initialises the gripper to 0
                self.target[:GRIPPER_INDEX] = self.q[:GRIPPER_INDEX]

    def command(
        self,
        names: list[str],
        position: list[float],
        velocity: list[float],
        effort: list[float],
        stamp_s: float,
        now: float,
    ) -> None:
        """One ``joint_ctrl_single`` message, read as the driver reads it."""
        a = self.audit
        by_name = {n: position[i] for i, n in enumerate(names) if i < len(position)}
        cmd = np.array([by_name.get(n, 0.0) for n in DRIVER_JOINTS[:GRIPPER_INDEX]] + [0.0])
        cmd[GRIPPER_INDEX] = position[GRIPPER_INDEX] if len(position) > GRIPPER_INDEX else 0.0
        with self._lock:
            if not self.enabled:
                if not any(on for _, on in a["enable_events"]):
                    a["commands_before_enable"] += 1
                elif self._last_cmd is not None and np.array_equal(cmd, self._last_cmd):
                    a["repeats_while_disabled"] += 1
                else:
                    a["commands_while_disabled"] += 1
                return
            a["commands"] += 1
            if any(n not in names for n in DRIVER_JOINTS[:GRIPPER_INDEX]):
                a["missing_names"] += 1
            if len(velocity) == 7 and any(v != 0 for v in velocity):
                self.speed_percent = float(np.clip(round(velocity[6]), 1, 100))
                if self.speed_percent not in a["speed_percent_seen"]:
                    a["speed_percent_seen"].append(self.speed_percent)
            else:
                a["speed_unset"] += 1  # the driver falls back to 100 %
                self.speed_percent = 100.0
            if len(effort) >= 7:
                e = float(np.clip(effort[6], 0.5, 3.0))
                if e not in a["gripper_effort_seen"]:
                    a["gripper_effort_seen"].append(e)
            else:
                a["effort_unset"] += 1
            true = self.encoder.to_canonical(cmd)
            if np.any(true < self.limits.lower - 1e-6) or np.any(true > self.limits.upper + 1e-6):
                a["outside_limits"] += 1
            if not GRIPPER_RANGE_M[0] <= cmd[GRIPPER_INDEX] <= GRIPPER_RANGE_M[1]:
                a["gripper_out_of_range"] += 1
            if self._last_cmd is not None:
                self._stamp_gaps.append(stamp_s - self._last_stamp)
                # the sender's stamps jitter by milliseconds: count whole periods between them,
                # so a late command followed by a punctual one is not read as a burst of speed
                periods = max(1, round((stamp_s - self._last_stamp) / self.command_period_s))
                step = np.abs(cmd[:GRIPPER_INDEX] - self._last_cmd[:GRIPPER_INDEX])
                v = float(np.max(step)) / (periods * self.command_period_s)
                a["max_velocity_rad_s"] = max(a["max_velocity_rad_s"], v)
            self._last_cmd, self._last_stamp = cmd, stamp_s
            t = round(now - self._t0, 4)
            if a["first_command_s"] is None:
                a["first_command_s"] = t
            a["last_command_s"] = t
            self.target = cmd
            self.recent.append((now - self._t0, cmd.tolist()))

    def step(self, dt: float) -> np.ndarray:
        """Move toward the target for ``dt`` seconds (only while enabled); the 7 driver values."""
        with self._lock:
            if self.enabled:
                v = self.speed_percent / 100.0 * self.max_speed
                move = np.clip(self.target - self.q, -v * dt, v * dt)
                g = GRIPPER_SPEED_M_S * dt
                move[GRIPPER_INDEX] = np.clip(
                    self.target[GRIPPER_INDEX] - self.q[GRIPPER_INDEX], -g, g
                )
                self.q = self.q + move
            return self.q.copy()

    def leader_pose(self, now: float) -> np.ndarray:
        """A leader arm an operator sweeps slowly around the start pose."""
        t = now - self._t0
        sweep = self.start_pose.copy()
        sweep[0] += 0.3 * math.sin(2 * math.pi * 0.2 * t)
        sweep[GRIPPER_INDEX] = 0.04 + 0.03 * math.sin(2 * math.pi * 0.1 * t)
        return sweep

    def report(self) -> dict[str, Any]:
        with self._lock:
            out = dict(self.audit)
            first, last = out["first_command_s"], out["last_command_s"]
            span = (last - first) if first is not None and last is not None else 0.0
            out["command_hz"] = round((out["commands"] - 1) / span, 2) if span > 0 else 0.0
            gaps = [g for g in self._stamp_gaps if g > 0]
            out["command_period_median_s"] = float(np.median(gaps)) if gaps else 0.0
            out["enabled"] = self.enabled
            out["position"] = self.q.tolist()
            out["recent_commands"] = list(self.recent)
        return out
