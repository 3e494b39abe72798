"""g1_bridge: the runtime's canonical topics <-> a Unitree G1's own DDS topics (arm_sdk).

ROS side (in the robot namespace, e.g. /g1): subscribes ``joint_command`` (the executor's 50 Hz
positions) and ``estop`` (latched), publishes ``joint_states`` at ``state_hz`` and /diagnostics.
Robot side (CycloneDDS, domain ``dds_domain``, on ``network_interface``): reads ``rt/lowstate``
(checking every CRC) and writes ``rt/arm_sdk`` at ``command_hz`` from its own deadline-paced
thread. The blend weight logic lives in ``robots/g1/arm_sdk.py``; this node only moves data.

On SIGINT/SIGTERM the weight is ramped out over ``ramp_out_s`` while holding the measured
position, and only then does the process exit.
"""

from __future__ import annotations

import array
import sys
import threading
import time
from dataclasses import replace

from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool

from gigabrain_runtime.diagnostics.stats import Level, RateMeter, Status
from gigabrain_runtime.pacing import DeadlinePacer
from gigabrain_runtime.params.nodes import ARM_SDK_FILE_FIELDS, G1BridgeParams
from gigabrain_runtime.robots.embodiment import get_embodiment
from gigabrain_runtime.robots.g1.arm_sdk import (
    ArmSdkBridge,
    ArmSdkConfig,
    BridgeState,
    JointReading,
)
from gigabrain_runtime.robots.g1.unitree_hg import TOPIC_ARM_SDK, TOPIC_LOWSTATE, DdsLink
from gigabrain_runtime.robots.joint_calibration import JointCalibration
from gigabrain_runtime.ros import qos
from gigabrain_runtime.ros.node_utils import (
    DiagnosticsPublisher,
    WorkerThreads,
    make_thread_realtime,
    publish_or_stop,
    run_node,
    worker_thread,
)
from gigabrain_runtime.ros.params import declare_field, declare_params


class G1BridgeNode(WorkerThreads, Node):
    def __init__(self) -> None:
        super().__init__("g1_bridge")
        # the arm_sdk_config file's rate, ramps and timeouts are those parameters' defaults
        base = ArmSdkConfig.load(declare_field(self, G1BridgeParams, "arm_sdk_config") or None)
        p = declare_params(
            self, G1BridgeParams, defaults={k: getattr(base, k) for k in ARM_SDK_FILE_FIELDS}
        )
        cfg = replace(base, **{k: getattr(p, k) for k in ARM_SDK_FILE_FIELDS})
        self.state_hz = p.state_hz
        self.rt_priority = p.realtime_priority
        dds_domain, network_interface = p.dds_domain, p.network_interface
        self.embodiment = get_embodiment(p.robot)
        names = self.embodiment.joint_names
        calibration = JointCalibration.load(p.joints_calibration, names)
        self.config = cfg
        self.core = ArmSdkBridge(
            cfg, self.embodiment, calibration, check_state_crc=p.lowstate_crc_check
        )
        try:
            self._link = DdsLink(
                dds_domain, network_interface, read=TOPIC_LOWSTATE, write=TOPIC_ARM_SDK
            )
        except ValueError:
            raise
        except Exception as exc:  # noqa: BLE001  # cyclonedds reports a bad interface as DDSException
            where = f"interface {network_interface!r}" if network_interface else "default interface"
            raise ValueError(
                f"network_interface/dds_domain: cannot open DDS domain {dds_domain} on the "
                f"{where}: {exc}"
            ) from None
        self._lock = threading.Lock()
        self._pacer = DeadlinePacer(cfg.period_s)
        self._reported = {"invalid": 0, "crc": 0}  # counts at the last diagnostics message
        self._write_errors = 0
        self._lowstate_rate = RateMeter()
        self._command_rate = RateMeter()
        self._sent_rate = RateMeter()
        self._state_pub = self.create_publisher(JointState, "joint_states", qos.SENSOR)
        self.create_subscription(JointState, "joint_command", self._on_command, qos.COMMAND)
        self._estop_subs = qos.latched_subscriptions(self, Bool, "estop", self._on_estop)
        DiagnosticsPublisher(self, self._diagnostics)
        self._running = True
        self._publish_ros = True
        self._arm_thread = worker_thread(self, self._arm_sdk_loop, "arm_sdk")
        self._threads = [
            self._arm_thread,
            worker_thread(self, self._lowstate_loop, "lowstate"),
        ]
        self.get_logger().info(
            f"g1_bridge: {len(names)} joints of {self.embodiment.name} on {TOPIC_ARM_SDK} at "
            f"{cfg.command_hz:g} Hz (DDS domain {dds_domain}, interface "
            f"{network_interface or 'default'}), ramps {cfg.ramp_in_s:g} s in / "
            f"{cfg.ramp_out_s:g} s out, calibration {calibration.source}"
        )

    # ---- ROS callbacks (executor thread) -----------------------------------------------------
    def _on_command(self, msg: JointState) -> None:
        now = time.monotonic()
        with self._lock:
            why = self.core.on_command(msg.name, msg.position, now)
        if not why:
            self._command_rate.tick(now)

    def _on_estop(self, msg: Bool) -> None:
        with self._lock:
            changed = self.core.estop != bool(msg.data)
            self.core.set_estop(bool(msg.data), time.monotonic())
        if changed:
            self.get_logger().warning(
                f"e-stop {'ENGAGED: ramping arm_sdk out' if msg.data else 'released'}"
            )

    # ---- DDS threads -------------------------------------------------------------------------
    def _lowstate_loop(self) -> None:
        period = 1.0 / self.state_hz
        next_pub = 0.0  # a schedule, not a minimum gap, so the rate averages state_hz
        while self._running:
            records = self._link.take(timeout_s=0.05)
            latest: JointReading | None = None
            for record in records:
                now = time.monotonic()
                with self._lock:
                    reading = self.core.on_lowstate(record, now)
                if reading is not None:
                    self._lowstate_rate.tick(now)
                    latest = reading
            now = time.monotonic()
            if latest is None or now < next_pub or not self._publish_ros:
                continue
            # on schedule; after a stall, restart the schedule rather than burst to catch up
            next_pub = next_pub + period if now - next_pub < period else now + period
            msg = JointState()
            msg.header.stamp = self.get_clock().now().to_msg()
            msg.name = list(self.embodiment.joint_names)
            msg.position = array.array("d", latest.position)
            msg.velocity = array.array("d", latest.velocity)
            msg.effort = array.array("d", latest.effort)
            if not publish_or_stop(self, lambda msg=msg: self._state_pub.publish(msg)):
                self._publish_ros = False  # shutting down: keep reading, stop publishing

    def _arm_sdk_loop(self) -> None:
        make_thread_realtime(self, self.rt_priority, "arm_sdk")
        while self._running:
            tick = self._pacer.wait()
            with self._lock:
                command = self.core.step(tick)
                finished = self.core.finished
            if command is not None:
                try:
                    self._link.write(self.core.encode(command))
                except Exception as exc:  # noqa: BLE001 - keep ticking: the next write may pass
                    self._write_errors += 1
                    if self._write_errors == 1:
                        self.get_logger().error(f"arm_sdk write failed: {exc}")
                else:
                    self._sent_rate.tick(tick)
            if finished:
                return

    def shutdown(self) -> None:
        """Ramp the weight out (holding the measured position), then stop the DDS threads."""
        with self._lock:
            self.core.request_shutdown()
            weight = self.core.weight
        if self._arm_thread.is_alive():
            print(
                f"g1_bridge: shutting down, ramping arm_sdk weight {weight:.2f} -> 0 over at most "
                f"{self.config.ramp_out_s:g} s",
                file=sys.stderr,
                flush=True,
            )
            self._arm_thread.join(timeout=self.config.ramp_out_s + 1.0)
        self._running = False
        self.join_workers(timeout_s=1.0)
        self._link.close()
        print(
            f"g1_bridge: released (weight {self.core.weight:.2f}, {self.core.messages} arm_sdk "
            "messages sent)",
            file=sys.stderr,
            flush=True,
        )

    # ---- diagnostics -------------------------------------------------------------------------
    def _diagnostics(self) -> list[Status]:
        now = time.monotonic()
        core = self.core
        s = Status("g1_bridge")
        s.values = {
            "state": core.state.value,
            "weight": f"{core.weight:.3f}",
            "reason": core.reason,
            "arm_sdk_hz": f"{self._sent_rate.rate(now):.1f}",
            "arm_sdk_messages": str(core.messages),
            "arm_sdk_subscribers": str(self._link.subscribers()),
            "arm_sdk_write_errors": str(self._write_errors),
            "deadline_misses": str(self._pacer.misses),
            "period_jitter_p99_ms": f"{self._pacer.jitter_ms(99):.3f}",
            "lowstate_hz": f"{self._lowstate_rate.rate(now):.1f}",
            "lowstate_received": str(core.states_received),
            "lowstate_crc_failures": str(core.crc_failures),
            "lowstate_rejected": str(core.states_rejected),
            "joint_command_hz": f"{self._command_rate.rate(now):.1f}",
            "commands_accepted": str(core.commands_accepted),
            "commands_invalid": str(sum(core.invalid.values())),
            **{f"commands_invalid_{k}": str(v) for k, v in core.invalid.items()},
            **{f"ramp_outs_{k}": str(v) for k, v in core.losses.items()},
        }
        if core.state is BridgeState.WAITING:
            s.worse(Level.STALE, "no LowState_ from the robot yet (network_interface, dds_domain?)")
        elif core.state in (BridgeState.RAMPING_OUT, BridgeState.IDLE) and core.reason:
            level = Level.ERROR if core.reason.startswith("LowState_ lost") else Level.WARN
            s.worse(level, f"not driving the arms: {core.reason}")
        invalid = sum(core.invalid.values())
        if core.last_invalid:
            s.values["last_invalid_command"] = core.last_invalid
        if invalid > self._reported["invalid"]:
            s.worse(Level.WARN, f"dropped {invalid - self._reported['invalid']} invalid commands")
        if core.crc_failures > self._reported["crc"]:
            s.worse(
                Level.WARN,
                f"dropped {core.crc_failures - self._reported['crc']} LowState_ with a bad CRC",
            )
        if self._write_errors:
            s.worse(Level.ERROR, f"{self._write_errors} arm_sdk writes failed")
        self._reported = {"invalid": invalid, "crc": core.crc_failures}
        return [s]


def main(argv: list[str] | None = None) -> int:
    return run_node(G1BridgeNode, argv)


if __name__ == "__main__":
    raise SystemExit(main())
