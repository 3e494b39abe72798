"""operator: the simulator's scripted operator, an expert for the scene's task.

While ``intervention/active`` is true it publishes ``teleop/joint_command`` at ``rate_hz``: the
expert's pick-and-place motion, started from the arm's measured pose at the moment of takeover
(its first move paced by how far it has to go, as from home) and planned for where the objects
are then (``task/objects`` from the sim node; the scene's nominal places until it has heard
them). Scenes without an expert task get an operator that holds the arm where it was taken over.
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np
from geometry_msgs.msg import PoseArray
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool

from gigabrain_runtime.params.nodes import OperatorParams
from gigabrain_runtime.robots.embodiment import get_embodiment
from gigabrain_runtime.ros import qos
from gigabrain_runtime.ros.convert import joint_command, joint_positions
from gigabrain_runtime.ros.node_utils import run_node
from gigabrain_runtime.ros.params import declare_params
from gigabrain_runtime.sim.expert import ExpertOperator, Waypoint, pick_and_place
from gigabrain_runtime.sim.simulator import Simulator
from gigabrain_runtime.sim.task import EpisodeStart


class OperatorNode(Node):
    def __init__(self) -> None:
        super().__init__("operator")
        p = declare_params(self, OperatorParams)
        self.embodiment = get_embodiment(p.robot)
        os.nice(5)  # a stand-in for a person: never ahead of the control loop for the CPU
        self._sim = Simulator(self.embodiment, image_size=32)  # kinematics only: never renders
        try:
            self.waypoints: list[Waypoint] | None = pick_and_place(self._sim)
        except ValueError as exc:
            self.get_logger().warning(f"{exc}: the operator will hold the arm")
            self.waypoints = None
        self._objects: dict[str, tuple[float, float]] | None = None
        self._lock = threading.Lock()
        self._measured: np.ndarray | None = None
        self._active = False
        self._expert: ExpertOperator | None = None
        self._hold: np.ndarray | None = None
        self._pub = self.create_publisher(JointState, "teleop/joint_command", qos.SENSOR)
        self.create_subscription(JointState, "joint_states", self._on_state, qos.SENSOR)
        qos.latched_subscriptions(self, Bool, "intervention/active", self._on_active)
        self.create_subscription(PoseArray, "task/objects", self._on_objects, qos.SENSOR)
        self.create_timer(1.0 / p.rate_hz, self._tick)

    def _on_state(self, msg: JointState) -> None:
        try:
            positions, _ = joint_positions(msg, self.embodiment.joint_names)
        except ValueError:
            return
        with self._lock:
            self._measured = positions

    def _on_objects(self, msg: PoseArray) -> None:
        task = self._sim.task
        if task is None or len(msg.poses) != 2:
            return
        with self._lock:
            self._objects = {
                name: (p.position.x, p.position.y)
                for name, p in zip((task.pick, task.place), msg.poses, strict=True)
            }

    def _plan(self, measured: np.ndarray) -> list[Waypoint] | None:
        """Waypoints for where the objects are (the last task/objects), from ``measured``."""
        if not self.waypoints or self._objects is None:
            return self.waypoints
        self._sim.reset(EpisodeStart(seed=-1, objects=self._objects, arm=measured))
        return pick_and_place(self._sim)

    def _on_active(self, msg: Bool) -> None:
        with self._lock:
            if msg.data and not self._active and self._measured is not None:
                now = time.monotonic()
                waypoints = self._plan(self._measured)
                if waypoints:
                    # paced from home: a takeover next to the cube goes on at once
                    self._expert = ExpertOperator(
                        self.embodiment, waypoints, pace_from=self._sim.home
                    )
                    self._expert.start(now, self._measured)
                self._hold = self._measured.copy()
                self.get_logger().info("operator: taking over")
            self._active = bool(msg.data)

    def _tick(self) -> None:
        with self._lock:
            if not self._active or self._hold is None:
                return
            target = (
                self._expert.command(time.monotonic()) if self._expert is not None else self._hold
            )
        self._pub.publish(
            joint_command(target, self.embodiment.joint_names, self.get_clock().now().to_msg())
        )


def main(argv: list[str] | None = None) -> int:
    return run_node(OperatorNode, argv)


if __name__ == "__main__":
    raise SystemExit(main())
