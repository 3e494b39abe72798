"""executor: streams joint commands at control_hz from the newest action chunks, safely.

Subscriptions (joint states, chunks, e-stop) run on the rclpy executor thread and only hand data
to the core under a lock; the control loop runs on its own thread paced by deadlines on the
monotonic clock, so neither inference elsewhere nor a slow callback delays a command. Joint
states are coalesced: the callback only keeps the newest message and its arrival time, and the
control loop reads it once per period, so a flood of joint states (1 kHz, valid or not) costs
the control thread one conversion per period.
"""

from __future__ import annotations

import threading
import time

from rclpy.node import Node
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Int32
from trajectory_msgs.msg import JointTrajectory

from gigabrain_runtime.control.executor import ChunkExecutor, ExecState, ExecutorConfig, StopLog
from gigabrain_runtime.diagnostics.stats import Level, RateMeter, Status
from gigabrain_runtime.pacing import DeadlinePacer
from gigabrain_runtime.params.nodes import ExecutorParams
from gigabrain_runtime.robots.embodiment import get_embodiment
from gigabrain_runtime.ros import qos
from gigabrain_runtime.ros.convert import (
    is_hold,
    joint_command,
    joint_positions,
    trajectory_to_chunk,
)
from gigabrain_runtime.ros.node_utils import (
    DiagnosticsPublisher,
    make_thread_realtime,
    publish_or_stop,
    run_node,
    wait_for_acks,
    worker_thread,
)
from gigabrain_runtime.ros.params import declare_params

# from full speed a PiPER joint (3 rad/s at 5 rad/s^2) needs 0.6 s to brake to rest
SHUTDOWN_TIMEOUT_S = 1.0
# on shutdown the resting command is published this many times before the node exits, counted
# as they go out (not waited for by the clock): a command still in flight when the process ends
# is lost, and a bridge downstream forwards only what reached it - on a loaded machine its
# driver must still see the stream end with repeated resting commands
REST_COMMANDS_ON_SHUTDOWN = 5


class ExecutorNode(Node):
    def __init__(self) -> None:
        super().__init__("executor")
        p = declare_params(self, ExecutorParams)
        self.embodiment = get_embodiment(p.robot)
        cfg = ExecutorConfig(
            control_hz=p.control_hz,
            execution=p.execution,
            execute_steps=p.execute_steps,
            blend_s=p.blend_s,
            ensemble_k=p.ensemble_k,
            max_open_loop_s=p.max_open_loop_s,
            state_timeout_s=p.state_timeout_s,
            velocity_scale=p.velocity_scale,
            stop_decel_scale=p.stop_decel_scale,
            takeover_blend_s=p.takeover_blend_s,
            teleop_timeout_s=p.teleop_timeout_s,
            hold_timeout_s=p.hold_timeout_s,
            state_limit_margin=p.state_limit_margin,
        )
        self.rt_priority = p.realtime_priority
        self.config = cfg
        self.core = ChunkExecutor(self.embodiment, cfg)
        self._lock = threading.Lock()
        self._state_rate = RateMeter()
        self._chunk_rate = RateMeter()
        self._input_errors: dict[str, str] = {}
        self._unknown_joints: list[str] = []
        self._pacer = DeadlinePacer(cfg.period_s)
        self._last_reason = ""
        self._pending_state: tuple[bytes, float] | None = None  # newest, not yet read
        self.states_coalesced = 0

        self._cmd_pub = self.create_publisher(JointState, "joint_command", qos.COMMAND)
        # raw: the callback stores the serialized bytes; the control loop deserializes the
        # newest once per period
        self.create_subscription(JointState, "joint_states", self._on_state, qos.SENSOR, raw=True)
        self.create_subscription(JointTrajectory, "action_chunk", self._on_chunk, qos.COMMAND)
        # per chunk taken over from a running plan: the control periods that plan ran between
        # the chunk's observation and its arrival (the vla's rtc delay comes from this)
        self._delay_pub = self.create_publisher(Int32, "execution/delay_steps", qos.COMMAND)
        self._estop_subs = qos.latched_subscriptions(self, Bool, "estop", self._on_estop)
        self._hold_subs = qos.latched_subscriptions(self, Bool, "hold", self._on_hold)
        self._takeover_subs = qos.latched_subscriptions(
            self, Bool, "intervention/active", self._on_takeover
        )
        self.create_subscription(JointState, "teleop/joint_command", self._on_teleop, qos.SENSOR)
        DiagnosticsPublisher(self, self._diagnostics)

        self._running = True
        # control periods in a row that ended at rest: the resting command published, or nothing to
        # command yet (no joint state); read by shutdown, written by the control thread
        self._rest_periods = 0
        self._thread = worker_thread(self, self._control_loop, "control")
        self.get_logger().info(
            f"executor for {self.embodiment.name} at {cfg.control_hz:g} Hz ({cfg.execution})"
        )

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # ---- callbacks (executor thread): hand data to the core, never block --------------------
    def _on_state(self, msg: bytes) -> None:
        """Keep the newest joint state (serialized) with its arrival time: bounded work at any
        rate."""
        if self._pending_state is not None:
            self.states_coalesced += 1
        self._pending_state = (msg, self._now_s())
        self._state_rate.tick(time.monotonic())

    def _take_state(self) -> None:
        """Control thread, once per period: hand the newest joint state to the core."""
        pending, self._pending_state = self._pending_state, None
        if pending is None:
            return
        raw, t = pending
        try:
            msg = deserialize_message(raw, JointState)
            positions, unknown = joint_positions(msg, self.embodiment.joint_names)
            self.core.on_joint_state(positions, t)  # ValueError beyond the limits: refused
        except ValueError as exc:  # the state ages and the watchdog holds
            self._input_errors["joint_states"] = str(exc)
            return
        self._input_errors.pop("joint_states", None)
        self._unknown_joints = unknown

    def _on_chunk(self, msg: JointTrajectory) -> None:
        if is_hold(msg):  # the vla's hold point (or an empty trajectory): come to rest
            with self._lock:
                self.core.stop("the policy asked to stop (an input is gone or invalid)")
            return
        try:
            chunk = trajectory_to_chunk(msg, self.embodiment.joint_names)
        except ValueError as exc:
            self._input_errors["action_chunk"] = str(exc)
            self.core.rejected["invalid"] += 1
            return
        with self._lock:
            ok, why = self.core.on_chunk(chunk, self._now_s())
            delay = self.core.last_delay_steps
        if ok:
            self._input_errors.pop("action_chunk", None)
            self._chunk_rate.tick(time.monotonic())
            if delay is not None:
                self._delay_pub.publish(Int32(data=delay))
        else:
            self._input_errors["action_chunk"] = why

    def _on_takeover(self, msg: Bool) -> None:
        with self._lock:
            changed = self.core.takeover != bool(msg.data)
            self.core.set_takeover(bool(msg.data), self._now_s())
        if changed:
            self.get_logger().info("operator takeover" if msg.data else "hand-back to policy")

    def _on_teleop(self, msg: JointState) -> None:
        try:
            positions, _unknown = joint_positions(msg, self.embodiment.joint_names)
        except ValueError as exc:
            self._input_errors["teleop"] = str(exc).replace("joint_states", "teleop")
            return
        self._input_errors.pop("teleop", None)
        with self._lock:
            self.core.on_teleop(positions, self._now_s())

    def _on_estop(self, msg: Bool) -> None:
        with self._lock:
            changed = self.core.estop != bool(msg.data)
            self.core.set_estop(bool(msg.data))
        if changed:
            self.get_logger().warning(f"e-stop {'ENGAGED' if msg.data else 'released'}")

    def _on_hold(self, msg: Bool) -> None:
        with self._lock:
            changed = self.core.held != bool(msg.data)
            self.core.on_hold(bool(msg.data), self._now_s())
        if changed:
            self.get_logger().info("held (hold-to-run released)" if msg.data else "hold released")

    # ---- control thread ----------------------------------------------------------------------
    def _control_loop(self) -> None:
        make_thread_realtime(self, self.rt_priority, "control")
        try:
            self._control_periods()
        except Exception:
            if self._running and self.context.ok():
                self._brake_after_failure()
            raise  # worker_thread: FATAL with the traceback, and the node exits 1

    def _stop_deadline(self) -> float:
        """When braking to rest must have ended: from full speed, plus the resting commands."""
        return (
            time.monotonic() + SHUTDOWN_TIMEOUT_S + REST_COMMANDS_ON_SHUTDOWN * self.config.period_s
        )

    def _brake_after_failure(self) -> None:
        """The control loop raised: a robot mid-motion must not be left with a command stream
        that stops dead. Brake to rest within the joint limits on the same thread and cadence
        (the limiter alone, ``ChunkExecutor.brake``), then let the failure end the node."""
        names, log = self.embodiment.joint_names, self.get_logger()
        deadline = self._stop_deadline()
        rest = 0
        try:
            # the first braking command goes out in the period that failed, so none is skipped
            while rest < REST_COMMANDS_ON_SHUTDOWN and time.monotonic() < deadline:
                with self._lock:
                    command = self.core.brake()
                    at_rest = self.core.at_rest
                if command is None:
                    return  # nothing was ever commanded
                self._cmd_pub.publish(
                    joint_command(command, names, self.get_clock().now().to_msg())
                )
                rest = rest + 1 if at_rest else 0
                self._pacer.wait()
        except Exception as exc:
            log.error(f"control loop failed, and braking after it failed too: {exc!r}")
            return
        log.error(
            "control loop failed: braked to rest within the joint limits"
            if rest >= REST_COMMANDS_ON_SHUTDOWN
            else "control loop failed: braking did not reach rest in time"
        )

    def _control_periods(self) -> None:
        names = self.embodiment.joint_names
        stops, log = StopLog(), self.get_logger()
        while self._running and self.context.ok():
            self._pacer.wait()
            stamp = self.get_clock().now()
            t = stamp.nanoseconds * 1e-9
            with self._lock:
                self._take_state()
                result = self.core.step(t)
                at_rest = self.core.at_rest
            self._last_reason = result.reason
            for level, line in stops.update(result.state, result.reason, t):
                # one call site per severity: rclpy refuses a site whose severity changes
                if level == "warning":
                    log.warning(line)
                else:
                    log.info(line)
            if result.command is None:
                self._rest_periods += 1
                continue
            msg = joint_command(result.command, names, stamp.to_msg())
            if not publish_or_stop(self, lambda msg=msg: self._cmd_pub.publish(msg)):
                break
            self._rest_periods = self._rest_periods + 1 if at_rest else 0

    def start(self) -> None:
        """Start the real-time thread once start-up (and its garbage) is behind us."""
        self._thread.start()

    def shutdown(self) -> None:
        """Brake to rest before exiting: the control loop keeps publishing while the core
        decelerates (run_node keeps the context valid until this returns), then until the
        resting command has gone out ``REST_COMMANDS_ON_SHUTDOWN`` times, all bounded by
        ``SHUTDOWN_TIMEOUT_S`` plus those periods. A robot bridge downstream then sees a command
        stream that comes to rest instead of one that stops mid-motion."""
        if self._thread.is_alive() and self.context.ok():
            with self._lock:
                self.core.shutdown()
            period, deadline = self.config.period_s, self._stop_deadline()
            while (
                time.monotonic() < deadline
                and self._thread.is_alive()
                and self._rest_periods < REST_COMMANDS_ON_SHUTDOWN
            ):
                time.sleep(period)
            rested = self._rest_periods >= REST_COMMANDS_ON_SHUTDOWN
            self.get_logger().info("stopped at rest" if rested else "stopped while moving")
        wait_for_acks(self, [self._cmd_pub])  # the last commands reach the bridge
        self._running = False
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)

    # ---- diagnostics -------------------------------------------------------------------------
    def _diagnostics(self) -> list[Status]:
        now = time.monotonic()
        core = self.core
        s = Status("executor")
        s.values = {
            "state": core.state.value,
            "control_hz": f"{self.config.control_hz:g}",
            "period_jitter_p99_ms": f"{self._pacer.jitter_ms(99):.3f}",
            "deadline_misses": str(self._pacer.misses),
            "joint_states_hz": f"{self._state_rate.rate(now):.1f}",
            "joint_states_coalesced": str(self.states_coalesced),
            "chunks_hz": f"{self._chunk_rate.rate(now):.1f}",
            "chunks_accepted": str(core.accepted_chunks),
            "chunks_rejected": str(sum(core.rejected.values())),
            "watchdog_events": str(core.watchdog_events),
            "open_loop_stops": str(core.open_loop_stops),
            "max_open_loop_s": f"{self.config.max_open_loop_s:g}",
            "estop": str(core.estop).lower(),
            "takeover": str(core.takeover).lower(),
            "held": str(core.held).lower(),
            "takeovers": str(core.takeovers),
            "limited_steps": str(core.limiter.clipped_steps),
        }
        if core.state is ExecState.ESTOP:
            s.worse(Level.WARN, "e-stop engaged: command frozen")
        elif core.state is ExecState.TELEOP and self._last_reason:
            s.worse(Level.WARN, f"takeover: {self._last_reason}")
        elif core.state is ExecState.WATCHDOG:
            s.worse(Level.ERROR, f"watchdog hold: {self._last_reason}")
        elif core.state is ExecState.OPEN_LOOP:
            s.worse(Level.WARN, f"open-loop limit reached, coming to rest: {self._last_reason}")
        elif core.state is ExecState.WAITING:
            s.worse(Level.STALE, "no joint state received yet")
        elif core.state is ExecState.HELD:
            s.worse(Level.WARN, "held: hold-to-run released, the policy waits")
        elif core.state is ExecState.HOLD:
            s.worse(Level.WARN, "holding: no chunk received yet")
        for source, err in self._input_errors.items():
            if source == "action_chunk" and core.takeover:
                continue  # chunks refused during a takeover are expected
            # a refused robot state is an error (the arm holds); a refused chunk a warning
            s.worse(Level.ERROR if source == "joint_states" else Level.WARN, f"{source}: {err}")
        if self._unknown_joints:
            s.values["ignored_joint_names"] = ",".join(self._unknown_joints)
        return [s]


def main(argv: list[str] | None = None) -> int:
    return run_node(ExecutorNode, argv)


if __name__ == "__main__":
    raise SystemExit(main())
