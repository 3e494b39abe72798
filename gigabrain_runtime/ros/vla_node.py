"""vla: the policy at a fixed rate, in efficient or standard (world-model-conditioned) mode.

Wiring only: every decision (freshness, stop, mode, errors, statistics) is made by the ROS-free
:class:`~gigabrain_runtime.inference.policy_loop.PolicyLoop`; this node converts messages,
owns the threads and publishes.

Threads: the rclpy executor thread runs the subscriptions (decode, optionally undistort, resize
each frame, store the newest) and a 100 Hz input watchdog; an inference thread paced at
``inference_hz`` assembles the newest consistent observation, runs the backend and publishes the
chunk; in standard mode a world-model thread runs at ``world_model_hz``; a low-priority overlay
thread draws each chunk's predicted 2D trajectory. Callbacks never wait for inference, and the
inference thread never waits for drawing.

Cameras: with ``calibration_dir`` set, ``<calibration_dir>/<cam>.yaml`` (camera_info YAML, as
``gigabrain-runtime calibrate camera`` writes it) is loaded for every camera that has one. Its
sensor_msgs/CameraInfo is published on ``cameras/<cam>/camera_info`` with the header of each
received frame (``publish_camera_info``), and with ``undistort`` the frames are undistorted
before they are resized for the model. A frame whose size disagrees with its calibration is
used as it is (no undistortion, no camera_info) and reported on /diagnostics.

Overlay: the chunk's ``trajectory`` refers to the first camera of the embodiment, in the
model-input frame (see perception/overlay.py). While anyone subscribes to
``cameras/<first cam>/policy_overlay`` (and ``overlay`` is true), the trajectory is drawn onto
the full-size frame the chunk was computed from (undistorted when ``undistort``) and published
as rgb8 with that frame's header, at most ``overlay_hz`` times a second (0: every chunk).
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rclpy.node import Node
from rclpy.publisher import Publisher
from sensor_msgs.msg import CameraInfo as CameraInfoMsg
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float32, Header, Int32, String
from trajectory_msgs.msg import JointTrajectory

from gigabrain_runtime.control.controllers import ControllerOutput
from gigabrain_runtime.diagnostics.stats import LatencyStats, Level, Status
from gigabrain_runtime.inference.factory import open_backend
from gigabrain_runtime.inference.manifest import EngineManifest
from gigabrain_runtime.inference.policy_loop import PolicyLoop, PolicyLoopConfig, PolicyOutput
from gigabrain_runtime.inference.types import ActionChunk, Mode
from gigabrain_runtime.pacing import DeadlinePacer
from gigabrain_runtime.params.nodes import VlaParams
from gigabrain_runtime.perception.camera_info import CameraInfo, load_calibrations
from gigabrain_runtime.perception.frames import FramePipeline
from gigabrain_runtime.perception.overlay import draw_trajectory, format_label
from gigabrain_runtime.perception.sync import Assembled, SyncConfig
from gigabrain_runtime.robots.embodiment import positions_by_name
from gigabrain_runtime.ros import qos
from gigabrain_runtime.ros.convert import (
    camera_info_to_msg,
    chunk_to_trajectory,
    hold_trajectory,
    image_to_rgb,
    joint_positions,
    rgb_to_image,
    stamp_to_s,
    trajectory_msg,
)
from gigabrain_runtime.ros.node_utils import (
    DiagnosticsPublisher,
    WorkerThreads,
    publish_or_stop,
    run_node,
    worker_thread,
)
from gigabrain_runtime.ros.params import declare_params, on_set_params


@dataclass
class _CameraInfoOut:
    """A calibrated camera's camera_info publisher (one message per frame it describes)."""

    path: Path
    pub: Publisher | None
    msg: CameraInfoMsg
    last_stamp: tuple[int, int] | None = None


@dataclass(frozen=True)
class _Frame:
    """A first-camera frame: what the model saw (identity-matched against the observation) and
    the full-size image it was made from, with the message's header."""

    model_image: np.ndarray
    image: np.ndarray
    header: Header


@dataclass(frozen=True)
class _OverlayJob:
    frame: _Frame
    trajectory: np.ndarray
    label: str


# first-camera frames kept for pairing with the observation a chunk came from: the longest age
# limit (input_timeout_s, 0.4 s) of frames at 30 Hz, or at 15 Hz raw and compressed
FRAME_HISTORY = 14


class _NodeClock:
    """The policy loop's clock: the node's ROS clock for stamps, monotonic for intervals."""

    def __init__(self, node: Node) -> None:
        self._node = node

    def now_s(self) -> float:
        return self._node.get_clock().now().nanoseconds * 1e-9

    def monotonic(self) -> float:
        return time.monotonic()


class VlaNode(WorkerThreads, Node):
    def __init__(self) -> None:
        super().__init__("vla")
        p = declare_params(self, VlaParams)
        self.robot = p.robot
        self.inference_hz = p.inference_hz
        self.control_hz = p.control_hz
        self.world_model_hz = p.world_model_hz
        self.overlay = p.overlay
        self.overlay_hz = p.overlay_hz
        sync = SyncConfig(
            stamp_tolerance_s=p.stamp_tolerance_s,
            max_image_age_s=p.max_image_age_s,
            max_state_age_s=p.max_state_age_s,
            transport_s=p.transport_s,
            input_timeout_s=p.input_timeout_s,
        )

        engine_path = Path(p.engine)
        model_cfg = EngineManifest.read(engine_path).config
        if Mode.parse(p.mode) is Mode.STANDARD and not model_cfg.variant.has_world_model:
            raise ValueError(
                f"mode: standard needs a world model; engine {p.engine} "
                f"({model_cfg.variant.name}) runs efficient only"
            )
        onnxruntime = p.backend in ("", "onnxruntime")
        kwargs = {"threads": p.threads} if p.threads and onnxruntime else {}
        self.backend = open_backend(engine_path, p.backend or None, **kwargs)
        self.loop = PolicyLoop(
            self.backend,
            PolicyLoopConfig(
                robot=self.robot,
                mode=p.mode,
                instruction=p.instruction,
                inference_hz=self.inference_hz,
                control_hz=self.control_hz,
                max_world_model_age_s=p.max_world_model_age_s,
                sync=sync,
                state_limit_margin=p.state_limit_margin,
                execution=p.execution,
                execute_steps=p.execute_steps,
                inject_delay_s=p.inject_delay_ms / 1e3,
            ),
            _NodeClock(self),
        )
        self.inject_delay_s = p.inject_delay_ms / 1e3
        entry = self.backend.manifest.embodiment(self.robot)
        self.joint_names = entry.joint_names
        self.cameras = entry.cameras
        # the frame_id for camera_info and the overlay when a camera's images carry none
        frames = self.loop.limits.frame_id if self.loop.limits is not None else None
        self._frame_ids = {c: frames(c) if frames else f"{c}_optical_frame" for c in self.cameras}
        self._no_frame_id: set[str] = set()
        self.image_size = model_cfg.vision.image_size
        # the letterbox filter of the checkpoint's own pipeline (PIL bilinear for GigaBrain-0)
        self.image_resize = model_cfg.variant.image_resize
        self._calibration_dir = p.calibration_dir
        self._calibrations = self._load_calibrations(
            p.calibration_dir, p.undistort, p.publish_camera_info
        )

        self._lock = threading.Lock()
        self._pending_state: tuple[JointState, float] | None = None
        self._pacer = DeadlinePacer(1.0 / self.inference_hz)
        # the trajectory refers to the model's first camera slot (GigaBrain-0: cam_high)
        self._overlay_camera = entry.camera_slots[0] or self.cameras[0]
        self._frames: deque[_Frame] = deque(maxlen=FRAME_HISTORY)
        self._overlay_slot: _OverlayJob | None = None
        self._overlay_wake = threading.Event()
        self._overlay_last = -float("inf")
        self._overlay_ms = LatencyStats()
        self._overlay_errors = 0
        self._overlay_error = ""
        self._overlay_unpaired = 0

        self._chunk_pub = self.create_publisher(JointTrajectory, "action_chunk", qos.COMMAND)
        # ros2_control controllers (controller_output): one trajectory per controller
        self._controllers: ControllerOutput | None = None
        self._controller_pubs: dict[str, Any] = {}
        if p.controller_output:
            if self.loop.limits is None:
                raise ValueError(
                    f"controller_output: needs a known embodiment named {self.robot!r} with this "
                    "engine's joints (its controllers and limits)"
                )
            self._controllers = ControllerOutput(self.loop.limits, 1.0 / self.control_hz)
            for spec in self._controllers.controllers:
                self._controller_pubs[spec.name] = self.create_publisher(
                    JointTrajectory, spec.topic_name, qos.CONTROLLER
                )
        self._value_pub = self.create_publisher(Float32, "value", qos.COMMAND)
        self._overlay_pub = self.create_publisher(
            Image, f"cameras/{self._overlay_camera}/policy_overlay", qos.SENSOR
        )
        self._camera_subs: list[qos.CameraSubscription] = []
        for cam in self.cameras:
            base = f"cameras/{cam}/image_raw"
            self._camera_subs.append(qos.CameraSubscription(self, Image, base, self._image_cb(cam)))
            self.create_subscription(
                CompressedImage, base + "/compressed", self._image_cb(cam), qos.SENSOR
            )
        self.create_subscription(JointState, "joint_states", self._on_state, qos.SENSOR)
        # the executor's measured delay per chunk (rtc freezes that many points)
        self.create_subscription(
            Int32, "execution/delay_steps", lambda m: self.loop.observe_delay(m.data), qos.COMMAND
        )
        self._instruction_subs = qos.latched_subscriptions(
            self, String, "instruction", self._on_instruction
        )
        on_set_params(self, p, self._on_params)
        self.create_timer(0.01, self._input_watchdog)
        self._diag = DiagnosticsPublisher(self, self._diagnostics)

        self._running = True
        self._threads = [worker_thread(self, self._inference_loop, "inference")]
        self._threads.append(worker_thread(self, self._world_loop, "world_model"))
        self._threads.append(worker_thread(self, self._overlay_loop, "overlay"))
        self.get_logger().info(
            f"vla: {self.backend.manifest.preset} via {self.backend.name} for {self.robot}, "
            f"{self.loop.mode.value} mode, {self.inference_hz:g} Hz, cameras {list(self.cameras)}"
        )
        if self.loop.limits is None:
            self.get_logger().warning(
                f"vla: no embodiment named {self.robot!r} with this engine's joints: joint states "
                "are checked for finiteness only, not against joint limits"
            )

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _load_calibrations(
        self, directory: str, undistort: bool, publish_info: bool
    ) -> dict[str, _CameraInfoOut]:
        """Read every camera's calibration (ValueError naming the file and field on a bad one),
        build the frame pipeline (undistortion maps) and the camera_info publishers."""
        if not directory:  # undistort without calibration_dir is refused by VlaParams
            self.frames = FramePipeline(size=self.image_size, method=self.image_resize)
            return {}
        infos: dict[str, CameraInfo] = {}
        out: dict[str, _CameraInfoOut] = {}
        for cam, path in load_calibrations(directory, self.cameras).items():
            info = infos[cam] = CameraInfo.read(path)
            pub = (
                self.create_publisher(CameraInfoMsg, f"cameras/{cam}/camera_info", qos.SENSOR)
                if publish_info
                else None
            )
            out[cam] = _CameraInfoOut(path, pub, camera_info_to_msg(info))
            self.get_logger().info(
                f"calibration: {cam} from {path} ({info.width}x{info.height}, "
                f"{info.distortion_model}, fx {info.K[0, 0]:.1f})"
                + (", undistorting" if undistort else "")
                + (", publishing camera_info" if publish_info else "")
            )
        try:
            self.frames = FramePipeline(
                size=self.image_size,
                method=self.image_resize,
                calibrations=infos,
                undistort=undistort,
            )
        except ValueError as exc:
            raise ValueError(f"{directory}: {exc}") from None
        missing = [c for c in self.cameras if c not in out]
        if missing:
            self.get_logger().warning(
                f"calibration: none for {', '.join(missing)} in {directory}"
                + (": their frames are not undistorted" if undistort else "")
            )
        return out

    # ---- callbacks (executor thread) ---------------------------------------------------------
    def _image_cb(self, cam: str):  # noqa: ANN202
        def callback(msg: Image | CompressedImage) -> None:
            try:
                frame = self.frames.process(cam, image_to_rgb(msg))
            except ValueError as exc:
                self.loop.input_error(cam, str(exc))
                return
            self._report_calibration(cam)
            header = msg.header
            if not header.frame_id:
                header = Header(stamp=header.stamp, frame_id=self._frame_ids[cam])
                if cam not in self._no_frame_id:
                    self._no_frame_id.add(cam)
                    self.get_logger().warning(
                        f"{cam}: images carry no header.frame_id; camera_info and the overlay "
                        f"use {header.frame_id!r} (the embodiment's camera_frames)"
                    )
            if frame.calibrated:
                self._publish_camera_info(cam, header)
            stamp = stamp_to_s(msg.header.stamp) or self._now_s()
            if cam == self._overlay_camera and self.overlay:
                with self._lock:  # before put_image: a chunk from this frame finds it
                    self._frames.append(_Frame(frame.model_image, frame.image, header))
            self.loop.put_image(cam, stamp, frame.model_image)

        return callback

    def _report_calibration(self, cam: str) -> None:
        change = self.frames.problem_change(cam)
        if change is not None:
            problem, message = change
            log = self.get_logger().warn if problem else self.get_logger().info
            log(f"calibration: {message}")

    def _publish_camera_info(self, cam: str, header: Header) -> None:
        out = self._calibrations.get(cam)
        if out is None or out.pub is None:
            return
        stamp = (header.stamp.sec, header.stamp.nanosec)
        # one camera_info per frame even when it arrives both raw and compressed
        if stamp != out.last_stamp or stamp == (0, 0):
            out.msg.header = header
            out.pub.publish(out.msg)
            out.last_stamp = stamp

    def _on_state(self, msg: JointState) -> None:
        """Keep the newest joint state (bounded work at any rate: a 1 kHz flood costs one
        conversion per watchdog tick, not one per message)."""
        self._pending_state = (msg, self._now_s())
        self.loop.arrived("joint_states")

    def _take_state(self) -> None:
        """The newest joint state into the policy loop (100 Hz watchdog timer)."""
        pending, self._pending_state = self._pending_state, None
        if pending is None:
            return
        msg, received = pending
        try:
            if self._controllers is not None:  # joint_states from ros2_control, maybe
                names, values = self._controllers.robot_state(list(msg.name), list(msg.position))
                positions = positions_by_name(names, values, self.joint_names, field="joint_states")
            else:
                positions, _unknown = joint_positions(msg, self.joint_names)
        except ValueError as exc:
            self.loop.input_error("joint_states", str(exc))
            return
        self.loop.put_state(stamp_to_s(msg.header.stamp) or received, positions)

    def _on_instruction(self, msg: String) -> None:
        self.loop.set_instruction(msg.data)

    def _on_params(self, new: VlaParams, names: set[str]) -> None:
        """A run-time change the schema accepted (ValueError refuses it: standard mode on an
        engine without world model)."""
        if "mode" in names:
            self.loop.set_mode(new.mode)
            self.get_logger().info(f"mode -> {self.loop.mode.value}")
        if "instruction" in names:
            self.loop.set_instruction(new.instruction)
        if "max_world_model_age_s" in names:
            self.loop.set_max_world_model_age(new.max_world_model_age_s)
        self.overlay = new.overlay
        self.overlay_hz = new.overlay_hz

    def _input_watchdog(self) -> None:
        """At 100 Hz: the moment an input is gone or invalid, tell the executor to stop (a hold
        point at the last measured state) instead of letting it follow the plan, and say so on
        /diagnostics now rather than at the next 1 Hz report. (A late frame is not a stop.)"""
        self._take_state()
        reason = self.loop.watchdog()
        if reason is None:
            return
        self.loop.reset_execution()
        state = self.loop.last_state()
        if state is not None:
            now = self._now_s()
            hold = hold_trajectory(self.joint_names, state, now, 1.0 / self.control_hz)
            self._chunk_pub.publish(hold)
            if self._controllers is not None:
                with self._lock:
                    stops = self._controllers.stop(now, state)
                for spec, traj in stops:
                    self._controller_pubs[spec.name].publish(trajectory_msg(traj))
        self.get_logger().error(f"stopping the arm: {reason}")
        self._diag.publish()

    # ---- inference thread --------------------------------------------------------------------
    def _inference_loop(self) -> None:
        last_refusal = ""
        while self._running and self.context.ok():
            self._pacer.wait()
            out = self.loop.step()
            if out is not None and self.inject_delay_s > 0:
                time.sleep(self.inject_delay_s)  # a slower accelerator (benchmarks)
            if not (self._running and self.context.ok()):
                break
            if out is None:
                refusal = self.loop.refusal
                # logged once per kind of fault (the values in a refused output vary per chunk);
                # /diagnostics carries the latest reason and the counts
                kind = "model output" if refusal.startswith("model output") else refusal
                if refusal.startswith(("inference error", "model output")) and kind != last_refusal:
                    self.get_logger().error(refusal)
                last_refusal = kind
                continue
            last_refusal = ""
            try:
                if not self._publish(out):
                    break
            except Exception as exc:  # noqa: BLE001 - never let the policy thread die silently
                self.get_logger().error(f"publishing a chunk: {type(exc).__name__}: {exc}")

    def _publish(self, out: PolicyOutput) -> bool:
        """Publish one chunk (and value, and offer its overlay). False once shutting down."""
        chunk = out.chunk
        traj = chunk_to_trajectory(
            chunk.actions,
            self.joint_names,
            out.observation.stamp_s,
            self.control_hz,
            out.observation.state,
        )
        if not publish_or_stop(self, lambda: self._chunk_pub.publish(traj)):
            return False
        if self._controllers is not None:
            with self._lock:
                plans = self._controllers.chunk(
                    chunk.actions, out.observation.state, out.observation.stamp_s, self._now_s()
                )
            for spec, plan in plans:
                self._controller_pubs[spec.name].publish(trajectory_msg(plan))
        if chunk.value is not None:
            self._value_pub.publish(Float32(data=float(chunk.value)))
        self._offer_overlay(out.observation, chunk, out.latency_ms)
        return True

    def _offer_overlay(self, assembled: Assembled, chunk: ActionChunk, latency_ms: float) -> None:
        """Hand the chunk's trajectory and the frame it came from to the overlay thread (a
        latest-value slot: an overlay not drawn yet is replaced). Nothing when nobody listens."""
        if not self.overlay or self._overlay_pub.get_subscription_count() == 0:
            return
        now = time.monotonic()
        if self.overlay_hz > 0 and now - self._overlay_last < 1.0 / self.overlay_hz:
            return
        seen = assembled.images[self._overlay_camera]
        with self._lock:
            frame = next((f for f in reversed(self._frames) if f.model_image is seen), None)
            if frame is None:  # overlay switched on after this frame arrived
                self._overlay_unpaired += 1
                return
            self._overlay_slot = _OverlayJob(
                frame, chunk.trajectory, format_label(chunk.mode.value, chunk.value, latency_ms)
            )
        self._overlay_last = now
        self._overlay_wake.set()

    # ---- overlay thread ----------------------------------------------------------------------
    def _overlay_loop(self) -> None:
        _lower_thread_priority()
        while self._running:
            if not self._overlay_wake.wait(timeout=0.2):
                continue
            self._overlay_wake.clear()
            with self._lock:
                job, self._overlay_slot = self._overlay_slot, None
            if job is None:
                continue
            t0 = time.perf_counter()
            try:
                img = draw_trajectory(
                    job.frame.image, job.trajectory, model_size=self.image_size, label=job.label
                )
                msg = rgb_to_image(img, job.frame.header.stamp, job.frame.header.frame_id)
                if not publish_or_stop(self, lambda msg=msg: self._overlay_pub.publish(msg)):
                    break
            except Exception as exc:  # noqa: BLE001 - a drawing bug must not end the thread
                self._overlay_errors += 1
                self._overlay_error = f"{type(exc).__name__}: {exc}"
                continue
            self._overlay_ms.add((time.perf_counter() - t0) * 1e3)

    def _world_loop(self) -> None:
        pacer = DeadlinePacer(1.0 / self.world_model_hz)
        while self._running:
            pacer.wait()
            self.loop.world_step()

    def shutdown(self) -> None:
        self._running = False
        self.join_workers()
        self.backend.close()

    # ---- diagnostics -------------------------------------------------------------------------
    def _diagnostics(self) -> list[Status]:
        statuses = self.loop.statuses()
        inputs = next(s for s in statuses if s.name == "inputs")
        for cam, sub in zip(self.cameras, self._camera_subs, strict=True):
            inputs.values[f"{cam}_subscription"] = sub.reliability
            if cam in self._no_frame_id:
                inputs.values[f"{cam}_frame_id"] = f"none in the images; {self._frame_ids[cam]}"
        inference = next(s for s in statuses if s.name == "inference")
        subscribers = self._chunk_pub.get_subscription_count()
        inference.values["chunk_subscribers"] = str(subscribers)
        if self._controller_pubs:
            for name, pub in self._controller_pubs.items():
                n = pub.get_subscription_count()
                inference.values[f"{name}_subscribers"] = str(n)
                if n == 0:
                    inference.worse(
                        Level.ERROR,
                        f"nobody subscribes to {pub.topic_name}: controller {name} is not running",
                    )
        elif subscribers == 0:
            inference.worse(
                Level.ERROR,
                f"nobody subscribes to {self._chunk_pub.topic_name}: the executor is not running",
            )
        return [*statuses, *self._camera_statuses()]

    def _camera_statuses(self) -> list[Status]:
        out = []
        if self._calibration_dir:
            sources = {cam: c.path.name for cam, c in self._calibrations.items()}
            out.append(self.frames.status(self.cameras, self._calibration_dir, sources))
        ov = Status("overlay")
        ov.values = {
            "enabled": str(self.overlay).lower(),
            "topic": self._overlay_pub.topic_name,
            "subscribers": str(self._overlay_pub.get_subscription_count()),
            "published": str(self._overlay_ms.count),
            "draw_publish_p50_ms": f"{self._overlay_ms.percentile(50):.2f}",
            "draw_publish_p99_ms": f"{self._overlay_ms.percentile(99):.2f}",
            "errors": str(self._overlay_errors),
            "unpaired_chunks": str(self._overlay_unpaired),
        }
        if self._overlay_error:
            ov.worse(Level.WARN, f"overlay: {self._overlay_error}")
        out.append(ov)
        return out


def _lower_thread_priority(increment: int = 10) -> None:
    """Raise this thread's nice value (Linux: per thread), so drawing yields the CPU to the
    inference and executor threads. Best effort: ignored where not permitted."""
    try:
        tid = threading.get_native_id()
        os.setpriority(
            os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + increment)
        )
    except (AttributeError, OSError):
        pass


def main(argv: list[str] | None = None) -> int:
    return run_node(VlaNode, argv)


if __name__ == "__main__":
    raise SystemExit(main())
