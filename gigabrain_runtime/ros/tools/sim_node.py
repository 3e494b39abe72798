"""sim: a MuJoCo robot that behaves like the real one on the runtime's topics.

Publishes ``joint_states`` at ``state_hz`` (physics advanced in real time between messages),
``cameras/<cam>/image_raw`` (rgb8) at ``camera_hz`` from its own render thread, and follows
``joint_command`` with position servos. Unknown or NaN commands are refused (the last valid
target is kept) and reported on /diagnostics.

The scene's task (``sim/task.py``): ``task_seed`` picks the start; ``task/reset``
(std_msgs/Int32: a seed) starts that episode; ``task/success`` (std_msgs/Bool, latched) is the
success detector's verdict, sent when it changes; ``task/objects`` (geometry_msgs/PoseArray,
frame ``world``, 10 Hz) the positions of the object to pick and the one to place it in, in
that order - what a person would see, and the simulated operator plans from.

A reset moves the arm as a person would by hand while the runtime is e-stopped: the servos hold
the new start pose, and commands far from it (the executor's frozen command, still the old
pose) are ignored until the command stream comes back to it - which the executor does when the
e-stop is released, restarting from the measured state.
"""

from __future__ import annotations

import time

import numpy as np
from geometry_msgs.msg import Pose, PoseArray
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, Int32

from gigabrain_runtime.diagnostics.stats import Level, RateMeter, Status
from gigabrain_runtime.pacing import DeadlinePacer
from gigabrain_runtime.params.nodes import SimParams
from gigabrain_runtime.robots.embodiment import get_embodiment
from gigabrain_runtime.ros import qos
from gigabrain_runtime.ros.convert import joint_command, joint_positions, rgb_to_image
from gigabrain_runtime.ros.node_utils import (
    DiagnosticsPublisher,
    WorkerThreads,
    publish_or_stop,
    run_node,
    worker_thread,
)
from gigabrain_runtime.ros.params import declare_params
from gigabrain_runtime.sim.simulator import Simulator

# after a reset, a command within this of the new pose (every joint) is the executor's again
RESET_RESYNC_RAD = 0.05


class SimNode(WorkerThreads, Node):
    def __init__(self) -> None:
        super().__init__("sim")
        p = declare_params(self, SimParams)
        self.state_hz = p.state_hz
        self.camera_hz = p.camera_hz
        self.embodiment = get_embodiment(p.robot)
        self.sim = Simulator(self.embodiment, image_size=p.image_size)
        self._state_pub = self.create_publisher(JointState, "joint_states", qos.SENSOR)
        self._image_pubs = {
            cam: self.create_publisher(Image, f"cameras/{cam}/image_raw", qos.SENSOR)
            for cam in self.embodiment.cameras
        }
        self.create_subscription(JointState, "joint_command", self._on_command, qos.COMMAND)
        self._seed = p.task_seed
        self._verdict = None
        if self.sim.task is not None:
            if p.task_seed >= 0:
                self.sim.start_episode(p.task_seed)
            self._success_pub = self.create_publisher(Bool, "task/success", qos.LATCHED)
            self._objects_pub = self.create_publisher(PoseArray, "task/objects", qos.SENSOR)
            self.create_subscription(Int32, "task/reset", self._on_reset, qos.COMMAND)
            self.create_timer(0.1, self._task_tick)
        self._command_rate = RateMeter()
        self._frame_rate = RateMeter()
        self._render_ms = 0.0
        self._command_error = ""
        self._ignored: list[str] = []
        self._reset_pose: np.ndarray | None = None  # held after a reset until commands return
        self._commands_held = 0
        DiagnosticsPublisher(self, self._diagnostics)
        self._running = True
        self._threads = [
            worker_thread(self, self._physics_loop, "physics"),
            worker_thread(self, self._camera_loop, "cameras"),
        ]
        self.get_logger().info(
            f"sim: {p.robot}, joint states {self.state_hz:g} Hz, cameras "
            f"{list(self.embodiment.cameras)} {self.camera_hz:g} Hz at {p.image_size} px"
        )

    def _on_command(self, msg: JointState) -> None:
        try:
            target, unknown = joint_positions(msg, self.embodiment.joint_names)
        except ValueError as exc:
            self._command_error = str(exc).replace("joint_states", "joint_command")
            return
        self._command_error = ""
        self._ignored = unknown
        held = self._reset_pose
        if held is not None:
            if np.max(np.abs(target - held)) > RESET_RESYNC_RAD:
                self._commands_held += 1
                return
            self._reset_pose = None
        self.sim.set_target(target)
        self._command_rate.tick(time.monotonic())

    def _on_reset(self, msg: Int32) -> None:
        if msg.data < 0:
            self.get_logger().warning(f"task/reset: seed must be >= 0, got {msg.data}; ignored")
            return
        start = self.sim.start_episode(msg.data)
        self._reset_pose = start.arm.copy()
        self._seed = msg.data
        self._verdict = None
        self.get_logger().info(
            f"task episode {msg.data}: "
            + ", ".join(f"{k} at ({x:.3f}, {y:.3f})" for k, (x, y) in start.objects.items())
        )
        self._task_tick()

    def _task_tick(self) -> None:
        """The detector's verdict (sent when it changes) and where the objects are."""
        task = self.sim.task
        verdict = self.sim.verdict()
        if self._verdict is None or verdict.success != self._verdict.success:
            self._success_pub.publish(Bool(data=verdict.success))
        self._verdict = verdict
        poses = PoseArray()
        poses.header.stamp = self.get_clock().now().to_msg()
        poses.header.frame_id = "world"
        for name in (task.pick, task.place):
            pose = Pose()
            pose.position.x, pose.position.y, pose.position.z = (
                float(v) for v in self.sim.body_position(name)
            )
            pose.orientation.w = 1.0
            poses.poses.append(pose)
        self._objects_pub.publish(poses)

    def _physics_loop(self) -> None:
        pacer = DeadlinePacer(1.0 / self.state_hz)
        names = self.embodiment.joint_names
        last = None
        while self._running and self.context.ok():
            tick = pacer.wait()
            if last is not None:
                self.sim.step(min(tick - last, 0.1))  # real time, never a huge catch-up
            last = tick
            msg = joint_command(self.sim.joint_positions(), names, self.get_clock().now().to_msg())
            if not publish_or_stop(self, lambda msg=msg: self._state_pub.publish(msg)):
                break

    def _camera_loop(self) -> None:
        pacer = DeadlinePacer(1.0 / self.camera_hz)
        while self._running and self.context.ok():
            pacer.wait()
            stamp = self.get_clock().now().to_msg()
            start = time.perf_counter()
            frames = {cam: self.sim.render(cam) for cam in self.embodiment.cameras}
            self._render_ms = (time.perf_counter() - start) * 1e3
            msgs = {
                cam: rgb_to_image(rgb, stamp, self.embodiment.frame_id(cam))
                for cam, rgb in frames.items()
            }
            if not publish_or_stop(
                self, lambda msgs=msgs: [self._image_pubs[c].publish(m) for c, m in msgs.items()]
            ):
                break
            self._frame_rate.tick(time.monotonic())
        self.sim.close()

    def shutdown(self) -> None:
        self._running = False
        self.join_workers()

    def _diagnostics(self) -> list[Status]:
        now = time.monotonic()
        s = Status("simulator")
        s.values = {
            "robot": self.embodiment.name,
            "sim_time_s": f"{self.sim.time:.2f}",
            "camera_hz": f"{self._frame_rate.rate(now):.1f}",
            "render_ms": f"{self._render_ms:.1f}",
            "joint_command_hz": f"{self._command_rate.rate(now):.1f}",
        }
        if self._command_error:
            s.worse(Level.WARN, f"command refused: {self._command_error}")
        if self._ignored:
            s.values["ignored_joint_names"] = ",".join(self._ignored)
        s.values["commands_held_after_reset"] = str(self._commands_held)
        if self._reset_pose is not None:
            s.values["holding_reset_pose"] = "true"
        if self._verdict is not None:
            s.values["task_seed"] = str(self._seed)
            s.values["task_success"] = str(self._verdict.success).lower()
            s.values["task_state"] = self._verdict.reason
        return [s]


def main(argv: list[str] | None = None) -> int:
    return run_node(SimNode, argv)


if __name__ == "__main__":
    raise SystemExit(main())
