"""A fake Unitree G1 on DDS, to run the g1_bridge (and the whole runtime) without a robot.

It does what the robot's side of arm_sdk does, as far as the bridge can tell: publishes
``rt/lowstate`` (LowState_, CRC filled, tick in ms) at 500 Hz, and moves its 29 motors - legs
static, waist and arms following ``weight * q_arm_sdk + (1 - weight) * q_default`` with
first-order dynamics, where q_default is the pose Unitree's own controller would hold.

Unlike the robot it is strict: every ``rt/arm_sdk`` message is checked (``ArmSdkChecker``) -
CRC, weight in [0, 1], weight step no larger than the configured ramp allows, legs all-zero,
gains only on the commanded motors, positions within the joint limits - and every violation is
kept. Tests use ``FakeG1`` in-process; by hand::

    python -m gigabrain_runtime.robots.g1.standin --domain 0 --seconds 30 --report fake_g1.json

prints a summary at exit (Ctrl-C or --seconds) and exits 1 if any message broke a rule.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from gigabrain_runtime.pacing import DeadlinePacer
from gigabrain_runtime.robots.embodiment import Embodiment, get_embodiment
from gigabrain_runtime.robots.g1.arm_sdk import ArmSdkConfig
from gigabrain_runtime.robots.g1.unitree_hg import (
    LOW_CMD_DTYPE,
    NUM_MOTORS,
    TOPIC_ARM_SDK,
    TOPIC_LOWSTATE,
    DdsLink,
    check_crc,
    fill_crc,
    new_low_state,
)

# The pose Unitree's controller holds when arm_sdk's weight is 0 (rad, motor order): standing
# legs, upright waist, arms hanging. Values differ from motor to motor so that a bridge that
# mixes up two motors shows it in its joint_states.
Q_DEFAULT = np.array(
    [-0.10, 0.01, 0.02, 0.30, -0.20, 0.01]  # left leg
    + [-0.11, -0.01, -0.02, 0.31, -0.21, -0.01]  # right leg
    + [0.01, -0.02, 0.03]  # waist yaw, roll, pitch
    + [0.20, 0.25, 0.01, 0.90, 0.05, -0.06, 0.10]  # left arm
    + [0.21, -0.26, -0.02, 0.91, -0.04, -0.07, -0.11]  # right arm
    + [0.0] * (NUM_MOTORS - 29)
)
MAX_KEPT_VIOLATIONS = 200
MAX_TRACE = 200_000  # about an hour of arm_sdk at 50 Hz


class ArmSdkChecker:
    """Checks a stream of arm_sdk LowCmd_ records against the rules a G1 relies on.

    ``check(record, t)`` returns the rules this message broke (also accumulated in
    ``violations``); a message with a bad CRC is otherwise ignored, as the robot ignores it.
    """

    def __init__(
        self,
        interface: ArmSdkConfig,
        embodiment: Embodiment,
        *,
        step_tolerance: float = 0.05,
        limit_tolerance_rad: float = 0.02,
    ) -> None:
        if step_tolerance < 0 or limit_tolerance_rad < 0:
            raise ValueError("step_tolerance/limit_tolerance_rad: must be >= 0")
        self.interface = interface
        order = [interface.joint_names.index(n) for n in embodiment.joint_names]
        self.motors = np.array([interface.motor_index[i] for i in order], dtype=np.intp)
        self.lower = embodiment.lower - limit_tolerance_rad
        self.upper = embodiment.upper + limit_tolerance_rad
        self.joint_names = embodiment.joint_names
        self.free = np.setdiff1d(np.arange(interface.num_motors), self.motors)
        self.protected = np.asarray(interface.protected_motors, dtype=np.intp)
        # float32 rounding of the weight, plus the stated tolerance on the ramp slope
        self.max_up = interface.max_weight_step_in * (1 + step_tolerance) + 1e-6
        self.max_down = interface.max_weight_step_out * (1 + step_tolerance) + 1e-6
        self.messages = 0
        self.crc_failures = 0
        self.violation_count = 0
        self.violations: list[str] = []
        # (receive time, weight, commanded q in embodiment order) of every message with a valid
        # CRC, up to MAX_TRACE of them
        self.trace: list[tuple[float, float, np.ndarray]] = []
        self.max_step_up = 0.0
        self.max_step_down = 0.0
        self.first_t: float | None = None
        self.last_t: float | None = None
        self._weight = 0.0  # the robot starts with Unitree's controller fully in charge

    def _violate(self, t: float, what: str) -> None:
        self.violation_count += 1
        if len(self.violations) < MAX_KEPT_VIOLATIONS:
            self.violations.append(f"t={t:.3f} msg {self.messages}: {what}")

    def check(self, record: np.ndarray, t: float) -> list[str]:
        if record.dtype != LOW_CMD_DTYPE:
            raise ValueError("record: expected a LowCmd_ record")
        self.messages += 1
        self.first_t = t if self.first_t is None else self.first_t
        self.last_t = t
        found: list[str] = []

        def bad(what: str) -> None:
            found.append(what)
            self._violate(t, what)

        if not check_crc(record):
            self.crc_failures += 1
            bad("bad CRC")
            return found
        mc = record["motor_cmd"]
        w = float(mc["q"][self.interface.weight_index])
        if not math.isfinite(w) or not 0.0 <= w <= 1.0:
            bad(f"weight {w} outside [0, 1]")
        else:
            step = w - self._weight
            self.max_step_up = max(self.max_step_up, step)
            self.max_step_down = max(self.max_step_down, -step)
            if step > self.max_up:
                bad(f"weight jumped up {self._weight:.4f} -> {w:.4f} (max {self.max_up:.4f})")
            elif -step > self.max_down:
                bad(f"weight jumped down {self._weight:.4f} -> {w:.4f} (max {self.max_down:.4f})")
            self._weight = w
            if len(self.trace) < MAX_TRACE:
                self.trace.append((t, w, mc["q"][self.motors].astype(np.float64)))
        prot = mc[self.protected]
        if prot.size and any(np.any(prot[f] != 0) for f in prot.dtype.names):
            bad(f"protected motors {self.protected.tolist()} (legs) not all zero")
        free = mc[self.free]
        if np.any(free["kp"] != 0) or np.any(free["kd"] != 0):
            idx = self.free[(free["kp"] != 0) | (free["kd"] != 0)]
            bad(f"gains on motors nobody commands: {idx.tolist()}")
        ours = mc[self.motors]
        if np.any(~(ours["kp"] > 0)) or np.any(~(ours["kd"] > 0)):
            bad("commanded motors without positive kp/kd")
        q = ours["q"].astype(np.float64)
        out = ~((q >= self.lower) & (q <= self.upper))
        if out.any():
            i = int(np.flatnonzero(out)[0])
            bad(f"q {q[i]:.4f} at {self.joint_names[i]} (motor {self.motors[i]}) beyond limits")
        return found

    @property
    def weight(self) -> float:
        return self._weight

    def ramp_in_s(self) -> float | None:
        """Time from the last weight-0 message (or the first message) to the first weight-1
        message after it; None if the weight never reached 1."""
        last_zero = self.trace[0][0] if self.trace else None
        for t, w, _ in self.trace:
            if w <= 0.0:
                last_zero = t
            elif w >= 1.0 and last_zero is not None:
                return t - last_zero
        return None

    def summary(self) -> dict[str, Any]:
        span = (self.last_t - self.first_t) if self.messages > 1 else 0.0
        return {
            "arm_sdk_messages": self.messages,
            "arm_sdk_hz": (self.messages - 1) / span if span > 0 else 0.0,
            "crc_failures": self.crc_failures,
            "violations": self.violation_count,
            "first_violations": self.violations[:10],
            "max_weight_step_up": self.max_step_up,
            "max_weight_step_down": self.max_step_down,
            "allowed_weight_step_up": self.max_up,
            "allowed_weight_step_down": self.max_down,
            "final_weight": self._weight,
            "ramp_in_s": self.ramp_in_s(),
        }


@dataclass(frozen=True, kw_only=True)
class FakeG1Config:
    domain_id: int = 0
    network_interface: str = ""
    state_hz: float = 500.0
    time_constant_s: float = 0.03  # motor response to its blended target
    step_tolerance: float = 0.05  # relative slack on the allowed weight step
    limit_tolerance_rad: float = 0.02
    corrupt_crc_every: int = 0  # every Nth LowState_ goes out with a wrong CRC (0: never)

    def __post_init__(self) -> None:
        for field in ("state_hz", "time_constant_s"):
            v = getattr(self, field)
            if not math.isfinite(v) or v <= 0:
                raise ValueError(f"{field}: must be > 0, got {v}")
        if self.corrupt_crc_every < 0:
            raise ValueError(f"corrupt_crc_every: must be >= 0, got {self.corrupt_crc_every}")


class FakeG1:
    """The stand-in robot: ``start()`` its 500 Hz thread, ``stop()`` it, read ``checker``."""

    def __init__(
        self,
        config: FakeG1Config | None = None,
        *,
        interface: ArmSdkConfig | None = None,
        embodiment: Embodiment | None = None,
    ) -> None:
        self.config = config or FakeG1Config()
        self.interface = interface or ArmSdkConfig.load()
        embodiment = embodiment or get_embodiment(self.interface.robot)
        self.checker = ArmSdkChecker(
            self.interface,
            embodiment,
            step_tolerance=self.config.step_tolerance,
            limit_tolerance_rad=self.config.limit_tolerance_rad,
        )
        self.motors = self.checker.motors
        self.q = Q_DEFAULT.copy()
        self.dq = np.zeros(NUM_MOTORS)
        self._arm_q = Q_DEFAULT[self.motors].copy()  # last valid arm_sdk target
        self._weight = 0.0
        self.lowstate_sent = 0
        self.lowstate_corrupted = 0
        self._lock = threading.Lock()
        self._running = False
        self._link = DdsLink(
            self.config.domain_id,
            self.config.network_interface,
            read=TOPIC_ARM_SDK,
            write=TOPIC_LOWSTATE,
            reliable_read=True,  # a checker must see every message
            read_depth=256,
        )
        self._thread = threading.Thread(target=self._loop, name="fake_g1", daemon=True)
        self.started_at: float | None = None

    # ---- the robot ---------------------------------------------------------------------------
    def _loop(self) -> None:
        cfg = self.config
        pacer = DeadlinePacer(1.0 / cfg.state_hz)
        state = new_low_state()
        state["version"] = (1, 0)
        state["imu_state"]["quaternion"] = (1.0, 0.0, 0.0, 0.0)
        state["imu_state"]["accelerometer"] = (0.0, 0.0, 9.81)
        state["imu_state"]["temperature"] = 35
        ms = state["motor_state"]
        ms["mode"][:29] = 1
        ms["temperature"][:29] = 30
        ms["vol"][:29] = 48.0
        last = None
        t0 = time.monotonic()
        while self._running:
            now = pacer.wait()
            with self._lock:
                for record in self._link.take(timeout_s=0.0):
                    self.checker.check(record, now)
                    if self._usable(record):
                        mc = record["motor_cmd"]
                        self._weight = float(mc["q"][self.interface.weight_index])
                        self._arm_q = mc["q"][self.motors].astype(np.float64)
                dt = min(now - last, 0.02) if last is not None else 0.0
                last = now
                target = Q_DEFAULT.copy()
                target[self.motors] = (
                    self._weight * self._arm_q + (1.0 - self._weight) * Q_DEFAULT[self.motors]
                )
                alpha = 1.0 - math.exp(-dt / cfg.time_constant_s)
                new_q = self.q + alpha * (target - self.q)
                self.dq = (new_q - self.q) / dt if dt > 0 else np.zeros(NUM_MOTORS)
                self.q = new_q
                ms["q"] = self.q
                ms["dq"] = self.dq
                state["tick"] = int((now - t0) * 1000.0) & 0xFFFFFFFF
                fill_crc(state)
                self.lowstate_sent += 1
                if cfg.corrupt_crc_every and self.lowstate_sent % cfg.corrupt_crc_every == 0:
                    state["crc"] = int(state["crc"]) ^ 0x1
                    self.lowstate_corrupted += 1
            try:
                self._link.write(state)
            except Exception:  # noqa: BLE001 - the participant went away under us: stop
                if self._running:
                    raise
                return

    def _usable(self, record: np.ndarray) -> bool:
        """Whether the robot acts on a message: it drops one with a bad CRC or an impossible
        weight, and acts on the rest (broken rules are only counted)."""
        w = float(record["motor_cmd"]["q"][self.interface.weight_index])
        return check_crc(record) and math.isfinite(w) and 0.0 <= w <= 1.0

    def start(self) -> FakeG1:
        self._running = True
        self.started_at = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._running = False
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        self._link.close()

    # ---- for tests ---------------------------------------------------------------------------
    def arm_positions(self) -> np.ndarray:
        """The simulated positions of the commanded joints (embodiment order, rad)."""
        with self._lock:
            return self.q[self.motors].copy()

    def trace(self) -> list[tuple[float, float, np.ndarray]]:
        """(receive time, weight, commanded q) of every valid arm_sdk message so far."""
        with self._lock:
            return list(self.checker.trace)

    @property
    def weight(self) -> float:
        with self._lock:
            return self._weight

    def summary(self) -> dict[str, Any]:
        with self._lock:
            out = self.checker.summary()
            ran = time.monotonic() - self.started_at if self.started_at else 0.0
            out.update(
                lowstate_sent=self.lowstate_sent,
                lowstate_hz=self.lowstate_sent / ran if ran > 0 else 0.0,
                lowstate_corrupted=self.lowstate_corrupted,
                seconds=ran,
            )
            return out


def format_summary(s: dict[str, Any]) -> str:
    ramp = "never reached 1" if s["ramp_in_s"] is None else f"{s['ramp_in_s']:.2f} s"
    text = (
        f"fake G1: {s['seconds']:.1f} s, {s['lowstate_sent']} LowState_ sent "
        f"({s['lowstate_hz']:.0f} Hz, {s['lowstate_corrupted']} with a deliberately bad CRC); "
        f"{s['arm_sdk_messages']} arm_sdk messages received ({s['arm_sdk_hz']:.1f} Hz), "
        f"{s['crc_failures']} CRC failures, {s['violations']} violations; max weight step "
        f"+{s['max_weight_step_up']:.4f}/-{s['max_weight_step_down']:.4f} per message (allowed "
        f"+{s['allowed_weight_step_up']:.4f}/-{s['allowed_weight_step_down']:.4f}); ramp-in "
        f"{ramp}; final weight {s['final_weight']:.3f}."
    )
    if s["first_violations"]:
        text += " First violations: " + "; ".join(s["first_violations"])
    return text


def main(argv: Sequence[str] | None = None) -> int:
    iface = ArmSdkConfig.load()
    p = argparse.ArgumentParser(
        prog="gigabrain-runtime standin g1",
        description="A fake Unitree G1 on DDS: publishes rt/lowstate, checks rt/arm_sdk.",
    )
    p.add_argument("--domain", type=int, default=0, help="CycloneDDS domain (the G1 uses 0)")
    p.add_argument("--network-interface", default="", help="interface ('' = CycloneDDS default)")
    p.add_argument("--seconds", type=float, default=0.0, help="run time (0: until Ctrl-C)")
    p.add_argument("--report", help="write the summary as JSON here")
    p.add_argument("--state-hz", type=float, default=500.0, help="LowState_ rate")
    p.add_argument("--command-hz", type=float, default=iface.command_hz)
    p.add_argument("--ramp-in-s", type=float, default=iface.ramp_in_s)
    p.add_argument("--ramp-out-s", type=float, default=iface.ramp_out_s)
    p.add_argument("--corrupt-crc-every", type=int, default=0, help="corrupt every Nth LowState_")
    args = p.parse_args(list(argv) if argv is not None else None)
    try:
        interface = replace(
            iface, command_hz=args.command_hz, ramp_in_s=args.ramp_in_s, ramp_out_s=args.ramp_out_s
        )
        config = FakeG1Config(
            domain_id=args.domain,
            network_interface=args.network_interface,
            state_hz=args.state_hz,
            corrupt_crc_every=args.corrupt_crc_every,
        )
        if args.seconds < 0:
            raise ValueError(f"seconds: must be >= 0, got {args.seconds}")
        robot = FakeG1(config, interface=interface)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    old = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    robot.start()
    print(
        f"fake G1 on DDS domain {args.domain}: {TOPIC_LOWSTATE} at {args.state_hz:g} Hz, checking "
        f"{TOPIC_ARM_SDK} (ramps {args.ramp_in_s:g} s in / {args.ramp_out_s:g} s out at "
        f"{args.command_hz:g} Hz)",
        flush=True,
    )
    end = time.monotonic() + args.seconds if args.seconds > 0 else math.inf
    try:
        while not stop.is_set() and time.monotonic() < end:
            stop.wait(min(0.2, max(0.0, end - time.monotonic())))
    finally:
        robot.stop()
        for s, h in old.items():
            signal.signal(s, h)
    summary = robot.summary()
    print(format_summary(summary), flush=True)
    if args.report:
        Path(args.report).write_text(json.dumps(summary, indent=2) + "\n")
    return 1 if summary["violations"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
