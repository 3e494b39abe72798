"""The Unitree G1 arm_sdk bridge core: canonical joint commands in, LowCmd_ records out.

Unitree's locomotion controller keeps running; ``rt/arm_sdk`` blends our upper-body targets into
it with the weight in ``motor_cmd[29].q`` (0: Unitree's controller alone, 1: ours). The weight is
the safety mechanism, so it only ever moves linearly, by at most ``period / ramp_s`` per message:

* **waiting**: no LowState_ yet - nothing is sent.
* **ramping in / active**: the latest valid ``joint_command`` is fresh, the robot state is fresh,
  no e-stop, no shutdown - target weight 1, q = the command (through the joint calibration).
* **ramping out / idle**: any of those fails (the reason is reported) - target weight 0, and q
  holds the measured position snapshotted at the moment of the loss, so the blend never pulls the
  arm toward a stale target. Once at weight 0 the held q follows the measured position (it has
  no effect there), and messages keep flowing at weight 0: the robot always knows that we let go,
  instead of inferring it from silence.
* re-engaging after a loss needs a command received *after* the loss (or the e-stop release) and
  ramps in from wherever the weight is.
* **released**: after a shutdown request, once weight 0 has been sent ``FINAL_ZERO_MESSAGES``
  times; nothing more is sent.

Which motor slot each joint drives, the gains and the ramp times are data:
``robots/interfaces/g1_arm_sdk.yaml``. Nothing here touches DDS or ROS; the node feeds this core
and ships its records.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from gigabrain_runtime.robots.embodiment import Embodiment
from gigabrain_runtime.robots.g1.unitree_hg import (
    LOW_STATE_DTYPE,
    check_crc,
    copy_record,
    fill_crc,
    new_low_cmd,
)
from gigabrain_runtime.robots.joint_calibration import JointCalibration

FINAL_ZERO_MESSAGES = 5  # weight-0 messages sent after a shutdown ramp-out, then silence


def default_interface_path(robot: str = "g1") -> Any:
    """The packaged arm_sdk mapping of ``robot`` (robots/interfaces/<robot>_arm_sdk.yaml)."""
    return resources.files("gigabrain_runtime.robots") / "interfaces" / f"{robot}_arm_sdk.yaml"


def _positive(name: str, value: Any) -> None:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}: must be a finite number > 0, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class ArmSdkConfig:
    """How the canonical joints map onto LowCmd_ and how the blend weight moves.

    ``joint_names``/``motor_index``/``kp``/``kd`` are parallel tuples in the file's order.
    Units: s, Hz, rad; kp in N m/rad, kd in N m s/rad.
    """

    robot: str
    joint_names: tuple[str, ...]
    motor_index: tuple[int, ...]
    kp: tuple[float, ...]
    kd: tuple[float, ...]
    num_motors: int = 35
    weight_index: int = 29
    protected_motors: tuple[int, ...] = ()  # must stay all-zero in every message (the legs)
    motor_mode: int = 0
    command_hz: float = 50.0
    ramp_in_s: float = 2.0
    ramp_out_s: float = 2.0
    command_timeout_s: float = 0.2
    state_timeout_s: float = 0.1
    limit_tolerance_rad: float = 0.02

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        if n == 0:
            raise ValueError("joints: must list at least one joint")
        if len(set(self.joint_names)) != n:
            raise ValueError(f"joints: duplicate joint names {list(self.joint_names)}")
        for field in ("motor_index", "kp", "kd"):
            if len(getattr(self, field)) != n:
                raise ValueError(f"{field}: expected {n} entries, got {len(getattr(self, field))}")
        if not isinstance(self.num_motors, int) or self.num_motors <= 0:
            raise ValueError(f"num_motors: must be an int > 0, got {self.num_motors!r}")
        if not isinstance(self.weight_index, int) or not 0 <= self.weight_index < self.num_motors:
            raise ValueError(
                f"weight_index: must be an int in [0, {self.num_motors}), got {self.weight_index!r}"
            )
        for m in self.protected_motors:
            if not isinstance(m, int) or not 0 <= m < self.num_motors:
                raise ValueError(f"protected_motors: {m!r} is not a motor index")
        for name, m in zip(self.joint_names, self.motor_index):
            if not isinstance(m, int) or not 0 <= m < self.num_motors:
                raise ValueError(f"joints.{name}.motor: must be an int in [0, {self.num_motors})")
            if m == self.weight_index:
                raise ValueError(f"joints.{name}.motor: {m} is the weight slot")
            if m in self.protected_motors:
                raise ValueError(f"joints.{name}.motor: {m} is a protected motor")
        if len(set(self.motor_index)) != n:
            raise ValueError(f"joints: two joints share a motor {list(self.motor_index)}")
        for field in ("kp", "kd"):
            for name, v in zip(self.joint_names, getattr(self, field)):
                _positive(f"gains of {name}: {field}", v)
        if not isinstance(self.motor_mode, int) or not 0 <= self.motor_mode <= 255:
            raise ValueError(f"motor_mode: must be an int in [0, 255], got {self.motor_mode!r}")
        for field in ("command_hz", "ramp_in_s", "ramp_out_s"):
            _positive(field, getattr(self, field))
        for field in ("command_timeout_s", "state_timeout_s"):
            _positive(field, getattr(self, field))
        if self.command_timeout_s < self.period_s:
            raise ValueError(
                f"command_timeout_s: {self.command_timeout_s} s is shorter than one command "
                f"period ({self.period_s:g} s)"
            )
        tol = self.limit_tolerance_rad
        if not isinstance(tol, (int, float)) or not math.isfinite(tol) or tol < 0:
            raise ValueError(f"limit_tolerance_rad: must be a finite number >= 0, got {tol!r}")

    @property
    def period_s(self) -> float:
        return 1.0 / self.command_hz

    @property
    def max_weight_step_in(self) -> float:
        """The largest weight increase between two consecutive messages."""
        return self.period_s / self.ramp_in_s

    @property
    def max_weight_step_out(self) -> float:
        return self.period_s / self.ramp_out_s

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<dict>") -> ArmSdkConfig:
        """Validate a parsed interface YAML; ValueError names the file and the field."""
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a mapping at top level")
        scalars = {
            "num_motors",
            "weight_index",
            "motor_mode",
            "command_hz",
            "ramp_in_s",
            "ramp_out_s",
            "command_timeout_s",
            "state_timeout_s",
            "limit_tolerance_rad",
        }
        known = scalars | {"robot", "gains", "joints", "protected_motors", "description"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{source}: unknown fields {sorted(unknown)}")
        for field in ("robot", "gains", "joints"):
            if field not in data:
                raise ValueError(f"{source}: missing field {field!r}")
        gains, joints = data["gains"], data["joints"]
        if not isinstance(gains, dict) or not isinstance(joints, dict):
            raise ValueError(f"{source}: gains and joints must be mappings")
        names, motors, kp, kd = [], [], [], []
        for name, entry in joints.items():
            if not isinstance(entry, dict) or set(entry) != {"motor", "group"}:
                raise ValueError(f"{source}: joints.{name}: expected {{motor, group}}")
            group = gains.get(entry["group"])
            if not isinstance(group, dict) or set(group) != {"kp", "kd"}:
                raise ValueError(
                    f"{source}: joints.{name}.group: {entry['group']!r} is not a gains group "
                    f"with kp and kd (groups: {sorted(gains)})"
                )
            names.append(str(name))
            motors.append(entry["motor"])
            kp.append(group["kp"])
            kd.append(group["kd"])
        try:
            return cls(
                robot=str(data["robot"]),
                joint_names=tuple(names),
                motor_index=tuple(motors),
                kp=tuple(kp),
                kd=tuple(kd),
                protected_motors=tuple(data.get("protected_motors", ())),
                **{k: data[k] for k in scalars if k in data},
            )
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None

    @classmethod
    def load(cls, path: str | Path | None = None) -> ArmSdkConfig:
        """The interface file at ``path``, or the packaged g1_arm_sdk.yaml when empty/None."""
        entry = default_interface_path() if not path else Path(path)
        if not entry.is_file():
            raise ValueError(f"arm_sdk_config: no such file {str(entry)!r}")
        return cls.from_dict(yaml.safe_load(entry.read_text()), source=entry.name)


class WeightRamp:
    """The arm_sdk blend weight: moves linearly toward its target, by at most
    ``dt / ramp_in_s`` up or ``dt / ramp_out_s`` down per step, with ``dt`` capped at one period
    (a late tick never makes a bigger step)."""

    def __init__(self, *, ramp_in_s: float, ramp_out_s: float, period_s: float) -> None:
        for name, v in (
            ("ramp_in_s", ramp_in_s),
            ("ramp_out_s", ramp_out_s),
            ("period_s", period_s),
        ):
            _positive(name, v)
        self.ramp_in_s = ramp_in_s
        self.ramp_out_s = ramp_out_s
        self.period_s = period_s
        self.weight = 0.0

    def step(self, target: float, dt: float) -> float:
        dt = min(max(dt, 0.0), self.period_s)
        if target > self.weight:
            self.weight = min(target, self.weight + dt / self.ramp_in_s)
        elif target < self.weight:
            self.weight = max(target, self.weight - dt / self.ramp_out_s)
        if abs(self.weight - target) < 1e-9:  # no float residue: 0 and 1 are exact
            self.weight = target
        return self.weight


class BridgeState(Enum):
    WAITING = "waiting_for_lowstate"
    IDLE = "idle"
    RAMPING_IN = "ramping_in"
    ACTIVE = "active"
    RAMPING_OUT = "ramping_out"
    RELEASED = "released"


@dataclass(frozen=True)
class ArmSdkCommand:
    """One arm_sdk message before encoding. ``q`` is in the driver frame, embodiment order."""

    weight: float
    q: np.ndarray
    state: BridgeState
    reason: str  # why the target weight is 0 ("" while engaged)


@dataclass(frozen=True)
class JointReading:
    """Measured joints in the canonical frame, embodiment order (rad, rad/s, N m)."""

    position: np.ndarray
    velocity: np.ndarray
    effort: np.ndarray
    tick: int


class ArmSdkBridge:
    """Canonical ``joint_command`` in, LowCmd_ records for rt/arm_sdk out (see module doc).

    Not thread-safe: the node serializes calls with one lock. Times are monotonic seconds.
    """

    def __init__(
        self,
        config: ArmSdkConfig,
        embodiment: Embodiment,
        calibration: JointCalibration | None = None,
        *,
        check_state_crc: bool = True,
    ) -> None:
        names = embodiment.joint_names
        missing = [n for n in names if n not in config.joint_names]
        unknown = [n for n in config.joint_names if n not in names]
        if missing or unknown:
            raise ValueError(
                f"arm_sdk_config: joints do not match embodiment {embodiment.name} (missing "
                f"{missing}, not in the embodiment {unknown})"
            )
        if calibration is None:
            calibration = JointCalibration.identity(names)
        if tuple(calibration.joint_names) != names:
            raise ValueError("joints_calibration: joint names differ from the embodiment's")
        order = [config.joint_names.index(n) for n in names]
        self.config = config
        self.check_state_crc = check_state_crc
        self.embodiment = embodiment
        self.calibration = calibration
        self.joint_names = names
        self.motors = np.array([config.motor_index[i] for i in order], dtype=np.intp)
        self._lower = embodiment.lower
        self._upper = embodiment.upper
        self._index = {n: i for i, n in enumerate(names)}
        self._template = new_low_cmd()
        mc = self._template["motor_cmd"]
        mc["mode"][self.motors] = config.motor_mode
        mc["kp"][self.motors] = np.array([config.kp[i] for i in order])
        mc["kd"][self.motors] = np.array([config.kd[i] for i in order])
        self.ramp = WeightRamp(
            ramp_in_s=config.ramp_in_s, ramp_out_s=config.ramp_out_s, period_s=config.period_s
        )

        self._measured: np.ndarray | None = None  # driver frame, embodiment order
        self._state_t = -math.inf
        self._command: np.ndarray | None = None  # driver frame
        self._command_t = -math.inf
        self._release_t = -math.inf  # a command must be newer than this to (re-)engage
        self._hold: np.ndarray | None = None
        self._engaged = False
        self._estop = False
        self._shutdown = False
        self._last_step_t: float | None = None
        self._final_sent = 0
        self.state = BridgeState.WAITING
        self.reason = "no LowState_ received yet"
        # counters for diagnostics
        self.states_received = 0
        self.crc_failures = 0
        self.states_rejected = 0  # non-finite positions
        self.commands_accepted = 0
        self.invalid: dict[str, int] = {"names": 0, "non_finite": 0, "limits": 0}
        self.last_invalid = ""
        self.losses: dict[str, int] = {"estop": 0, "command": 0, "state": 0, "shutdown": 0}
        self.messages = 0

    # ---- inputs ------------------------------------------------------------------------------
    def on_lowstate(self, record: np.ndarray, now_s: float) -> JointReading | None:
        """Take a LowState_ record; None when its CRC is wrong (counted in ``crc_failures``;
        with ``check_state_crc=False`` it is counted and used all the same)."""
        if record.dtype != LOW_STATE_DTYPE:
            raise ValueError("lowstate: expected a LowState_ record")
        if not check_crc(record):
            self.crc_failures += 1
            if self.check_state_crc:
                return None
        ms = record["motor_state"]
        raw = ms["q"][self.motors].astype(np.float64)
        if not np.all(np.isfinite(raw)):
            self.states_rejected += 1  # a valid CRC over garbage
            return None
        self._measured = raw
        self._state_t = now_s
        self.states_received += 1
        signs = self.calibration.signs
        return JointReading(
            position=self.calibration.to_canonical(raw),
            velocity=signs * ms["dq"][self.motors].astype(np.float64),
            effort=signs * ms["tau_est"][self.motors].astype(np.float64),
            tick=int(record["tick"]),
        )

    def on_command(self, names: Sequence[str], positions: Sequence[float], now_s: float) -> str:
        """Take a canonical joint command (any joint order). Returns "" when accepted, else why
        it was dropped (counted in ``invalid``); a dropped command leaves the last good one in
        place, which goes stale after command_timeout_s."""
        names = list(names)
        pos = np.asarray(positions, dtype=np.float64).reshape(-1)
        if (
            len(names) != len(self.joint_names)
            or set(names) != set(self.joint_names)
            or pos.size != len(names)
        ):
            return self._invalid(
                "names",
                f"joint_command: expected the {len(self.joint_names)} joints of "
                f"{self.embodiment.name} with one position each, got {len(names)} names and "
                f"{pos.size} positions",
            )
        ordered = np.empty(len(names))
        ordered[[self._index[n] for n in names]] = pos
        bad = ~np.isfinite(ordered)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            return self._invalid(
                "non_finite", f"joint_command: {ordered[i]} at {self.joint_names[i]!r}"
            )
        tol = self.config.limit_tolerance_rad
        out = (ordered < self._lower - tol) | (ordered > self._upper + tol)
        if out.any():
            i = int(np.flatnonzero(out)[0])
            return self._invalid(
                "limits",
                f"joint_command: {ordered[i]:.4f} at {self.joint_names[i]!r} is outside "
                f"[{self._lower[i]:.4f}, {self._upper[i]:.4f}]",
            )
        ordered = np.clip(ordered, self._lower, self._upper)
        self._command = self.calibration.to_robot(ordered)
        self._command_t = now_s
        self.commands_accepted += 1
        return ""

    def _invalid(self, kind: str, message: str) -> str:
        self.invalid[kind] += 1
        self.last_invalid = message
        return message

    def set_estop(self, active: bool, now_s: float) -> None:
        if self._estop and not active:
            self._release_t = max(self._release_t, now_s)  # a command after the release
        self._estop = bool(active)

    def request_shutdown(self) -> None:
        """Ramp out and stop: ``finished`` turns True once weight 0 has been sent."""
        self._shutdown = True

    # ---- the arm_sdk tick --------------------------------------------------------------------
    def _why_not(self, now_s: float) -> tuple[str, str]:
        """(loss kind, reason) why we must not drive the arm now, or ("", "")."""
        cfg = self.config
        if self._shutdown:
            return "shutdown", "shutting down"
        if self._estop:
            return "estop", "e-stop engaged"
        age = now_s - self._state_t
        if age > cfg.state_timeout_s:
            return "state", f"LowState_ lost ({age:.3f} s old)"
        if self._command is None:
            return "command", "no joint_command received yet"
        if self._command_t <= self._release_t:
            return "command", "waiting for a fresh joint_command"
        age = now_s - self._command_t
        if age > cfg.command_timeout_s:
            return "command", f"no valid joint_command for {age:.3f} s"
        return "", ""

    def step(self, now_s: float) -> ArmSdkCommand | None:
        """One arm_sdk period: the message to send, or None (nothing to send: no LowState_ yet,
        or released)."""
        if self._measured is None or self.finished:
            if self._shutdown:
                self.state, self.reason = BridgeState.RELEASED, "shut down"
                self._final_sent = FINAL_ZERO_MESSAGES
            return None
        dt = self.config.period_s if self._last_step_t is None else now_s - self._last_step_t
        self._last_step_t = now_s
        kind, reason = self._why_not(now_s)
        if self._engaged and kind:
            self._hold = self._measured.copy()  # the snapshot the ramp-out holds
            self._release_t = now_s
            self.losses[kind] += 1
        self._engaged = not kind
        weight = self.ramp.step(1.0 if self._engaged else 0.0, dt)
        if self._engaged:
            q = self._command
            self.state = BridgeState.ACTIVE if weight >= 1.0 else BridgeState.RAMPING_IN
        else:
            if weight <= 0.0 or self._hold is None:
                self._hold = self._measured.copy()  # no effect at weight 0; stays plausible
            q = self._hold
            self.state = BridgeState.RAMPING_OUT if weight > 0.0 else BridgeState.IDLE
            if self._shutdown and weight <= 0.0:
                self._final_sent += 1
                if self.finished:
                    self.state = BridgeState.RELEASED
        self.reason = reason
        self.messages += 1
        return ArmSdkCommand(weight=weight, q=q.copy(), state=self.state, reason=reason)

    @property
    def finished(self) -> bool:
        """Shut down and the last weight-0 message produced: stop sending."""
        return self._shutdown and self._final_sent >= FINAL_ZERO_MESSAGES

    @property
    def weight(self) -> float:
        return self.ramp.weight

    @property
    def estop(self) -> bool:
        return self._estop

    def encode(self, command: ArmSdkCommand) -> np.ndarray:
        """The LowCmd_ record for ``command``: q/kp/kd/mode on the mapped motors, the weight in
        its slot, zeros everywhere else (legs included), CRC filled."""
        record = copy_record(self._template)
        mc = record["motor_cmd"]
        mc["q"][self.motors] = command.q
        mc["q"][self.config.weight_index] = command.weight
        fill_crc(record)
        return record
