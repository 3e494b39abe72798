"""The operator console's ROS-free core: what the page is shown and what it may ask for.

:class:`ConsoleState` gathers what the graph says (joint states and commands, chunks, the
world-model value, the nodes' /diagnostics, the latched e-stop, takeover and instruction
topics, the task's success detector) into one JSON snapshot the page draws; the ROS node feeds
it from its subscriptions and the web server reads it, each from its own thread.

:func:`parse_control` turns a page's control message into a :class:`Control` or a ValueError
naming the field and the value; :class:`Deadman` is the hold-to-run watch. Nothing here
imports rclpy or the web framework.
"""

from __future__ import annotations

import hmac
import math
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from gigabrain_runtime.inference.types import MODES

EPISODE_EVENTS = ("start", "success", "failure", "abort")
# op -> (field, kind of its value)
CONTROLS: dict[str, tuple[str, type]] = {
    "estop": ("engaged", bool),
    "takeover": ("active", bool),
    "episode": ("event", str),
    "instruction": ("text", str),
    "mode": ("mode", str),
    "hold": ("held", bool),
}
MAX_INSTRUCTION = 500
HISTORY_S = 20.0  # what the page's time plots show
DIAG_MAX_AGE_S = 3.0  # statuses come at 1 Hz: older ones are from a node gone quiet
LEVELS = {1: "WARN", 2: "ERROR", 3: "STALE"}


@dataclass(frozen=True)
class Control:
    """One request from the page: ``op`` (a key of CONTROLS) and its value; ``page``: which
    open page sent it (the server numbers its connections; hold-to-run keeps one key per page)."""

    op: str
    value: bool | str
    page: int = 0


def parse_control(msg: Any) -> Control:
    """A page's control message ``{"op": ..., <field>: value, "token": ...}`` (the token is
    checked by :func:`token_ok`) as a Control; ValueError naming the field and value."""
    if not isinstance(msg, dict):
        raise ValueError(f"control: expected a JSON object, got {type(msg).__name__}")
    op = msg.get("op")
    if op not in CONTROLS:
        raise ValueError(f"op: unknown control {op!r} (known: {', '.join(CONTROLS)})")
    field, kind = CONTROLS[op]
    if field not in msg:
        raise ValueError(f"{field}: missing for op {op!r}")
    value = msg[field]
    if type(value) is not kind:
        raise ValueError(f"{field}: {value!r} is not a {kind.__name__}")
    if op == "episode" and value not in EPISODE_EVENTS:
        raise ValueError(f"event: {value!r} is not one of {', '.join(EPISODE_EVENTS)}")
    if op == "mode" and value not in MODES:
        raise ValueError(f"mode: {value!r} is not one of {', '.join(MODES)}")
    if op == "instruction":
        value = value.strip()
        if not value or len(value) > MAX_INSTRUCTION:
            raise ValueError(f"text: the instruction must be 1-{MAX_INSTRUCTION} characters")
    return Control(op, value)


def token_ok(expected: str, given: Any) -> bool:
    """True when no token is required, or ``given`` is it (compared in constant time)."""
    if not expected:
        return True
    return isinstance(given, str) and hmac.compare_digest(expected.encode(), given.encode())


class Deadman:
    """Hold-to-run: the policy may run only while a page keeps saying 'held' more often than
    ``timeout_s``; that page's 'released' message, or its silence, holds it at once. Each open
    page has its own key: the policy runs while any page holds its key, and a page that lets go
    (or closes) while another still holds does not stop it - nor brake it for the tenth of a
    second until the other's next 'held', as one shared key did. Stopping for everyone is the
    e-stop's job."""

    def __init__(self, timeout_s: float) -> None:
        if timeout_s <= 0:
            raise ValueError(f"hold_timeout_s: must be > 0, got {timeout_s}")
        self.timeout_s = timeout_s
        self._last: dict[int, float] = {}  # page -> its last 'held'
        self._lock = threading.Lock()  # pages beat on the web thread; a timer reads

    def beat(self, held: bool, now: float, page: int = 0) -> None:
        with self._lock:
            if held:
                self._last[page] = now
            else:
                self._last.pop(page, None)

    def running(self, now: float) -> bool:
        with self._lock:
            return any(now - t <= self.timeout_s for t in self._last.values())


def _rate(stamps: deque[float], now: float, window_s: float = 5.0) -> float:
    recent = [t for t in stamps if now - t <= window_s]
    if len(recent) < 2:
        return 0.0
    return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-9)


def _float(values: dict[str, str], key: str) -> float | None:
    """The status value as a float; None where it is missing or not a finite number (a node
    reports "nan" before its first sample, and NaN is not JSON a browser can parse)."""
    try:
        v = float(values[key])
    except (KeyError, ValueError):
        return None
    return v if math.isfinite(v) else None


class ConsoleState:
    """What the page shows, updated from the graph's threads, read as one snapshot."""

    def __init__(
        self, joint_names: tuple[str, ...], cameras: tuple[str, ...], namespace: str = ""
    ) -> None:
        """``namespace``: the robot's (its nodes' statuses are named ``<namespace>/<node>: ...``
        on the shared /diagnostics; another robot's are not this page's)."""
        self.prefix = f"{namespace.strip('/')}/" if namespace.strip("/") else ""
        self.joint_names = tuple(joint_names)
        self.cameras = tuple(cameras)
        self._lock = threading.Lock()
        self._positions: deque[tuple[float, list[float]]] = deque()
        self._commands: deque[tuple[float, list[float]]] = deque()
        self._values: deque[tuple[float, float]] = deque()
        self._chunks: deque[float] = deque(maxlen=64)
        # name -> (level, message, values, when received)
        self._diagnostics: dict[str, tuple[int, str, dict[str, str], float]] = {}
        self.estop = False
        self.takeover = False
        self.instruction = ""
        self.task_success: bool | None = None
        self.held = False  # hold-to-run has the policy held
        self.teleop_available = False
        self.camera_stamps: dict[str, float] = {}

    # ---- from the graph ------------------------------------------------------------------------
    def _trim(self, series: deque, now: float) -> None:
        while series and now - series[0][0] > HISTORY_S:
            series.popleft()

    def joint_state(self, names: list[str], positions: list[float], now: float) -> None:
        self._sample(self._positions, names, positions, now)

    def joint_command(self, names: list[str], positions: list[float], now: float) -> None:
        self._sample(self._commands, names, positions, now)

    def _sample(self, series: deque, names: list[str], positions: list[float], now: float) -> None:
        """At most 10 samples a second are kept for the plot, each with every joint."""
        row = self._ordered(names, positions)
        if row is None:
            return
        with self._lock:
            if not series or now - series[-1][0] >= 0.1:
                series.append((now, row))
                self._trim(series, now)

    def _ordered(self, names: list[str], positions: list[float]) -> list[float] | None:
        by_name = dict(zip(names, positions))
        if not all(n in by_name for n in self.joint_names):
            return None
        return [round(float(by_name[n]), 4) for n in self.joint_names]

    def chunk(self, now: float) -> None:
        with self._lock:
            self._chunks.append(now)

    def value(self, v: float, now: float) -> None:
        if not np.isfinite(v):
            return
        with self._lock:
            self._values.append((now, round(float(v), 4)))
            self._trim(self._values, now)

    def diagnostics(
        self, name: str, level: int, message: str, values: dict[str, str], now: float = 0.0
    ) -> None:
        """A status from /diagnostics; other namespaces' are ignored (the console's own,
        named ``console: ...``, always kept)."""
        if self.prefix and not (name.startswith(self.prefix) or name.startswith("console: ")):
            return
        with self._lock:
            self._diagnostics[name] = (int(level), message, dict(values), now)

    def camera(self, cam: str, now: float) -> None:
        with self._lock:
            self.camera_stamps[cam] = now

    # ---- to the page ---------------------------------------------------------------------------
    def _status(self, suffix: str, now: float) -> dict[str, str]:
        """The values of this robot's status ``<node>: <status>``, if it came within
        DIAG_MAX_AGE_S (a dead node's last word is not shown as current)."""
        item = self._diagnostics.get(self.prefix + suffix)
        if item is None or now - item[3] > DIAG_MAX_AGE_S:
            return {}
        return item[2]

    def executor_state(self, now: float) -> str:
        """running | open-loop | braking | e-stop | operator takeover | held | waiting |
        watchdog hold | no status (the latched topics first: they are known at once,
        /diagnostics at 1 Hz; in the executor's order: e-stop, takeover, hold)."""
        if self.estop:
            return "e-stop"
        if self.takeover:
            return "operator takeover"
        if self.held:
            return "held"
        raw = self._status("executor: executor", now).get("state", "")
        return {
            "running": "running",
            "open_loop_limit": "open-loop",
            "holding_no_chunk": "braking",
            "watchdog_hold": "watchdog hold",
            "waiting_for_joint_state": "waiting",
            "operator_takeover": "operator takeover",
            "estop": "e-stop",
            "held": "held",
        }.get(raw, raw or "no status")

    def snapshot(self, now: float) -> dict[str, Any]:
        with self._lock:
            vla = self._status("vla: inference", now)
            executor = self._status("executor: executor", now)
            recorder = self._status("recorder: recorder", now)
            problems = [
                {"name": name, "level": LEVELS[level], "message": msg}
                for name, (level, msg, _, t) in sorted(self._diagnostics.items())
                if level in LEVELS and now - t <= DIAG_MAX_AGE_S
            ]
            return {
                "type": "state",
                "joints": list(self.joint_names),
                "positions": [[round(t - now, 2), p] for t, p in self._positions],
                "commands": [[round(t - now, 2), p] for t, p in self._commands],
                "values": [[round(t - now, 2), v] for t, v in self._values],
                "chunk_hz": round(_rate(self._chunks, now), 2),
                "inference_ms_p50": _float(vla, "latency_p50_ms"),
                "inference_ms_p99": _float(vla, "latency_p99_ms"),
                "jitter_ms_p99": _float(executor, "period_jitter_p99_ms"),
                "mode": vla.get("mode", ""),
                "executor": self.executor_state(now),
                "estop": self.estop,
                "takeover": self.takeover,
                "held": self.held,
                "teleop": self.teleop_available,
                "problems": problems,
                "instruction": self.instruction,
                "recording": recorder.get("recording") == "true",
                "episode": recorder.get("episode", ""),
                "episode_interventions": int(_float(recorder, "interventions") or 0),
                "task_success": self.task_success,
                "cameras": {c: round(now - t, 2) for c, t in self.camera_stamps.items()},
            }
