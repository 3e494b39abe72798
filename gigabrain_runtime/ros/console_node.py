"""console: the operator's page in the browser, over the graph of one robot namespace.

Wiring only: :class:`~gigabrain_runtime.console.model.ConsoleState` keeps what the page shows,
:class:`~gigabrain_runtime.console.server.ConsoleServer` serves it (aiohttp, its own thread).

Reads: ``joint_states``, ``joint_command``, ``action_chunk`` (the chunk rate), ``value``,
``instruction``, ``estop``, ``intervention/active``, ``task/success``, ``/diagnostics`` and each
camera: ``cameras/<cam>/image_raw`` (raw, JPEG-encoded here only when a page is ready for the
next frame) or ``.../compressed`` (passed through), a camera's ``policy_overlay`` instead
whenever it flows (the vla draws the predicted trajectory on its first camera slot's frames
while someone subscribes).
Camera subscriptions exist only while a page is connected, are best effort and keep only the
newest serialized message (decoded and encoded only when a page is ready for it): the console
never holds up a publisher, and costs the graph nothing while nobody watches.

Writes: ``estop`` (latched; released only by an explicit release), ``intervention/engage``
(take over / hand back, only where a teleop source publishes ``teleop/joint_command``),
``episode/event``, ``instruction`` (latched), the vla's ``mode`` parameter (its
set_parameters service), and with ``hold_to_run`` the latched ``hold`` the executor obeys.
"""

from __future__ import annotations

import os
import threading
import time

import cv2
import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.node import Node
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Bool, Float32, String
from trajectory_msgs.msg import JointTrajectory

from gigabrain_runtime.console.model import ConsoleState, Control, Deadman
from gigabrain_runtime.console.server import ConsoleServer
from gigabrain_runtime.params.nodes import ConsoleParams
from gigabrain_runtime.robots.embodiment import get_embodiment
from gigabrain_runtime.ros import qos
from gigabrain_runtime.ros.node_utils import run_node
from gigabrain_runtime.ros.params import declare_params


class _Frames:
    """The newest image of each camera topic and its JPEG, encoded at most once per image."""

    def __init__(self, quality: int) -> None:
        self.quality = quality
        self._lock = threading.Lock()
        # topic -> (seq, t, (message type, serialized message))
        self._latest: dict[str, tuple[int, float, tuple[type, bytes]]] = {}
        self._jpeg: dict[str, tuple[int, bytes]] = {}
        self._seq = 0

    def put(self, key: str, msg: tuple[type, bytes]) -> None:
        with self._lock:
            self._seq += 1
            self._latest[key] = (self._seq, time.monotonic(), msg)

    def clear(self) -> None:
        with self._lock:
            self._latest.clear()
            self._jpeg.clear()

    def age(self, key: str, now: float) -> float:
        with self._lock:
            item = self._latest.get(key)
        return float("inf") if item is None else now - item[1]

    def jpeg(self, key: str) -> tuple[int, bytes] | None:
        with self._lock:
            item = self._latest.get(key)
            cached = self._jpeg.get(key)
        if item is None:
            return None
        seq, _, (kind, raw) = item
        if cached is not None and cached[0] == seq:
            return cached
        msg = deserialize_message(raw, kind)
        data = bytes(msg.data) if isinstance(msg, CompressedImage) else self._encode(msg)
        with self._lock:
            self._jpeg[key] = (seq, data)
        return seq, data

    def _encode(self, msg: Image) -> bytes:
        channels = {"rgb8": 3, "bgr8": 3, "mono8": 1}.get(msg.encoding)
        if channels is None:
            raise ValueError(f"encoding: {msg.encoding!r} is not shown (rgb8, bgr8, mono8)")
        img = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step)
        img = img[:, : msg.width * channels].reshape(msg.height, msg.width, channels)
        if msg.encoding == "rgb8":
            img = img[..., ::-1]
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            raise ValueError("camera: JPEG encoding failed")
        return buf.tobytes()


class ConsoleNode(Node):
    def __init__(self) -> None:
        super().__init__("console")
        p = declare_params(self, ConsoleParams)
        self.params = p
        emb = get_embodiment(p.robot)
        self.cameras = tuple(emb.cameras)
        self.state = ConsoleState(emb.joint_names, self.cameras, namespace=self.get_namespace())
        self.frames = _Frames(p.jpeg_quality)
        self._estop_pub = self.create_publisher(Bool, "estop", qos.LATCHED)
        self._engage_pub = self.create_publisher(Bool, "intervention/engage", qos.LATCHED)
        self._event_pub = self.create_publisher(String, "episode/event", qos.COMMAND)
        self._instruction_pub = self.create_publisher(String, "instruction", qos.LATCHED)
        self._hold_pub = self.create_publisher(Bool, "hold", qos.LATCHED)
        self._mode_client = self.create_client(SetParameters, "vla/set_parameters")
        self.create_subscription(JointState, "joint_states", self._on_state, qos.SENSOR)
        self.create_subscription(JointState, "joint_command", self._on_command, qos.COMMAND)
        self.create_subscription(JointTrajectory, "action_chunk", self._on_chunk, qos.COMMAND)
        self.create_subscription(Float32, "value", self._on_value, qos.COMMAND)
        qos.latched_subscriptions(self, String, "instruction", self._on_instruction)
        qos.latched_subscriptions(self, Bool, "estop", self._on_estop)
        qos.latched_subscriptions(self, Bool, "intervention/active", self._on_takeover)
        qos.latched_subscriptions(self, Bool, "task/success", self._on_success)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, qos.DIAGNOSTICS)
        # cameras only while a page is open: no image crosses to this process otherwise, and
        # the vla draws its overlay only while someone subscribes to it
        self._camera_subs: list = []
        self.create_timer(0.25, self._follow_clients)
        self.deadman = Deadman(p.hold_timeout_s) if p.hold_to_run else None
        self._hold_lock = threading.Lock()
        if self.deadman is not None:
            self._set_held(True)  # nothing runs until someone holds
            self.create_timer(0.05, self._check_deadman)
        self.create_timer(1.0, self._check_teleop)
        self.server = ConsoleServer(
            self,
            token=p.token,
            record_dir=p.record_dir,
            camera_hz=p.camera_hz,
            state_hz=p.state_hz,
            hold_to_run=p.hold_to_run,
        )
        port = self.server.start(p.bind, p.port)
        host = "localhost" if p.bind in ("127.0.0.1", "::1") else p.bind
        self.url = f"http://{host}:{port}/" + ("?token=<token>" if p.token else "")
        self.get_logger().info(f"console: {self.url}")
        print(f"console: {self.url}", flush=True)

    # ---- graph -> state ------------------------------------------------------------------------
    def _on_state(self, msg: JointState) -> None:
        self.state.joint_state(list(msg.name), list(msg.position), time.monotonic())

    def _on_command(self, msg: JointState) -> None:
        self.state.joint_command(list(msg.name), list(msg.position), time.monotonic())

    def _on_chunk(self, msg: JointTrajectory) -> None:
        if msg.points:
            self.state.chunk(time.monotonic())

    def _on_value(self, msg: Float32) -> None:
        self.state.value(float(msg.data), time.monotonic())

    def _on_instruction(self, msg: String) -> None:
        self.state.instruction = msg.data

    def _on_estop(self, msg: Bool) -> None:
        self.state.estop = bool(msg.data)

    def _on_takeover(self, msg: Bool) -> None:
        self.state.takeover = bool(msg.data)

    def _on_success(self, msg: Bool) -> None:
        self.state.task_success = bool(msg.data)

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for s in msg.status:
            level = s.level if isinstance(s.level, int) else int.from_bytes(s.level, "little")
            self.state.diagnostics(
                s.name, level, s.message, {kv.key: kv.value for kv in s.values}, time.monotonic()
            )

    def _frame_cb(self, key: str, kind: type):  # noqa: ANN202
        cam = key.split("/")[1]

        def cb(raw: bytes) -> None:  # serialized: decoded only when a page takes it
            self.frames.put(key, (kind, raw))
            self.state.camera(cam, time.monotonic())

        return cb

    def _follow_clients(self) -> None:
        want = self.server.clients > 0
        if want and not self._camera_subs:
            for cam in self.cameras:
                base = f"cameras/{cam}/image_raw"
                # one stream per camera: compressed where a publisher offers it (subscribing
                # to image_transport's compressed topic costs its publisher an encoding)
                if self.count_publishers(base + "/compressed") > 0:
                    kind, topic = CompressedImage, base + "/compressed"
                else:
                    kind, topic = Image, base
                self._camera_subs.append(
                    self.create_subscription(
                        kind, topic, self._frame_cb(base, kind), qos.SENSOR, raw=True
                    )
                )
                # the vla draws the plan on its first camera slot's frames while watched
                overlay = f"cameras/{cam}/policy_overlay"
                self._camera_subs.append(
                    self.create_subscription(
                        Image, overlay, self._frame_cb(overlay, Image), qos.SENSOR, raw=True
                    )
                )
        elif not want and self._camera_subs:
            for sub in self._camera_subs:
                self.destroy_subscription(sub)
            self._camera_subs = []
            self.frames.clear()  # what arrives next time is shown, never an old frame

    def _check_teleop(self) -> None:
        self.state.teleop_available = self.count_publishers("teleop/joint_command") > 0

    # ---- ConsoleGraph ------------------------------------------------------------------------
    def frame(self, camera: str) -> tuple[int, bytes] | None:
        overlay = f"cameras/{camera}/policy_overlay"
        if self.frames.age(overlay, time.monotonic()) < 1.0:
            return self.frames.jpeg(overlay)
        return self.frames.jpeg(f"cameras/{camera}/image_raw")

    def apply(self, control: Control) -> None:
        op, value = control.op, control.value
        if op == "estop":
            self._estop_pub.publish(Bool(data=bool(value)))
            self.state.estop = bool(value)  # shown at once; the latched topic confirms it
            self.get_logger().warning(
                f"e-stop {'ENGAGED' if value else 'released'} from the console"
            )
        elif op == "takeover":
            if value and self.count_publishers("teleop/joint_command") == 0:
                raise ValueError("takeover: no teleop source publishes teleop/joint_command here")
            self._engage_pub.publish(Bool(data=bool(value)))
        elif op == "episode":
            self._event_pub.publish(String(data=str(value)))
        elif op == "instruction":
            self._instruction_pub.publish(String(data=str(value)))
        elif op == "mode":
            self._set_mode(str(value))
        elif op == "hold":
            if self.deadman is None:
                raise ValueError("hold: hold-to-run is off (start the console with hold_to_run)")
            self.deadman.beat(bool(value), time.monotonic(), control.page)
            self._check_deadman()

    def _set_mode(self, mode: str) -> None:
        if not self._mode_client.service_is_ready():
            raise ValueError("mode: the vla node's set_parameters service is not available")
        value = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=mode)
        request = SetParameters.Request(parameters=[Parameter(name="mode", value=value)])
        future = self._mode_client.call_async(request)

        def done(f) -> None:  # noqa: ANN001
            result = f.result()
            if result is not None and not result.results[0].successful:
                reason = result.results[0].reason
                self.state.diagnostics("console: mode", 1, f"mode {mode} refused: {reason}", {})
            else:
                self.state.diagnostics("console: mode", 0, "", {})

        future.add_done_callback(done)

    def _check_deadman(self) -> None:
        if self.deadman is not None:
            self._set_held(not self.deadman.running(time.monotonic()))

    def _set_held(self, held: bool) -> None:
        """Published on every check (20 Hz), not only on change: the executor holds the arm
        when these stop coming (``hold_timeout_s``), so a dead console never lets it run."""
        with self._hold_lock:
            self.state.held = held
            self._hold_pub.publish(Bool(data=held))

    def shutdown(self) -> None:
        if self.deadman is not None:
            self._set_held(True)
        self.server.stop()


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return run_node(ConsoleNode, argv)


if __name__ == "__main__":
    raise SystemExit(main())
