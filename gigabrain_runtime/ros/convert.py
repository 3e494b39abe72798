"""Messages <-> the core's NumPy types. Every function raises ValueError naming the field."""

from __future__ import annotations

import array

import numpy as np
from builtin_interfaces.msg import Duration, Time
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from sensor_msgs.msg import CameraInfo as CameraInfoMsg
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Header
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from gigabrain_runtime.control.chunk import TimedChunk
from gigabrain_runtime.control.controllers import Trajectory
from gigabrain_runtime.diagnostics.stats import Status
from gigabrain_runtime.perception.camera_info import CameraInfo
from gigabrain_runtime.perception.images import decode_compressed, decode_raw
from gigabrain_runtime.robots.embodiment import positions_by_name


def stamp_to_s(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def _sec_nsec(t: float) -> tuple[int, int]:
    """Whole seconds and nanoseconds of ``t`` rounded to the nanosecond (0.9999999999 is 1 s,
    not 0 s + a nanosecond field that wrapped to 0)."""
    sec, nsec = divmod(round(t * 1e9), 1_000_000_000)
    return int(sec), int(nsec)


def s_to_stamp(t: float) -> Time:
    sec, nsec = _sec_nsec(t)
    return Time(sec=sec, nanosec=nsec)


def s_to_duration(t: float) -> Duration:
    sec, nsec = _sec_nsec(t)
    return Duration(sec=sec, nanosec=nsec)


def image_to_rgb(msg: Image | CompressedImage) -> np.ndarray:
    if isinstance(msg, CompressedImage):
        return decode_compressed(msg.format, bytes(msg.data))
    return decode_raw(msg.encoding, msg.height, msg.width, msg.step, bytes(msg.data))


def rgb_to_image(rgb: np.ndarray, stamp: Time, frame_id: str) -> Image:
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
    msg.encoding = "rgb8"
    msg.step = msg.width * 3
    # bytes, not ndarray: assigning an ndarray costs ~38 ms for 640x480 in these wheels
    msg.data = np.ascontiguousarray(rgb, dtype=np.uint8).tobytes()
    return msg


def camera_info_to_msg(info: CameraInfo, header: Header | None = None) -> CameraInfoMsg:
    """A calibration as sensor_msgs/CameraInfo (K, R, P row-major; no binning, full-image ROI).
    ``header``: the image's header, so that stamp and frame_id match the frame it describes."""
    msg = CameraInfoMsg()
    if header is not None:
        msg.header = header
    msg.width, msg.height = int(info.width), int(info.height)
    msg.distortion_model = info.distortion_model
    msg.d = array.array("d", info.D)
    msg.k = info.K.reshape(-1).tolist()
    msg.r = info.R.reshape(-1).tolist()
    msg.p = info.P.reshape(-1).tolist()
    return msg


def camera_info_from_msg(msg: CameraInfoMsg, camera_name: str = "") -> CameraInfo:
    """sensor_msgs/CameraInfo -> CameraInfo (ValueError naming the field if it is invalid)."""
    return CameraInfo(
        camera_name=camera_name or msg.header.frame_id,
        width=int(msg.width),
        height=int(msg.height),
        K=np.asarray(msg.k, dtype=np.float64).reshape(3, 3),
        D=np.asarray(msg.d, dtype=np.float64),
        R=np.asarray(msg.r, dtype=np.float64).reshape(3, 3),
        P=np.asarray(msg.p, dtype=np.float64).reshape(3, 4),
        distortion_model=msg.distortion_model or "plumb_bob",
    )


def joint_positions(msg: JointState, joint_names: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    """Positions in ``joint_names`` order, and the names in the message that are not ours.

    Raises ValueError when a joint is missing, the arrays disagree in length, or a value is not
    finite - the caller drops the message and reports it.
    """
    names = list(msg.name)
    out = positions_by_name(names, list(msg.position), joint_names, field="joint_states")
    unknown = [n for n in names if n not in joint_names]
    return out, unknown


def joint_command(positions: np.ndarray, joint_names: tuple[str, ...], stamp: Time) -> JointState:
    msg = JointState()
    msg.header.stamp = stamp
    msg.name = list(joint_names)
    msg.position = array.array("d", np.asarray(positions, dtype=np.float64))
    return msg


def chunk_to_trajectory(
    actions: np.ndarray,
    joint_names: tuple[str, ...],
    stamp_s: float,
    control_hz: float,
    start: np.ndarray,
) -> JointTrajectory:
    """Point i at stamp + (i + 1) / control_hz, with finite-difference velocities (the first
    against ``start``, the measured state the chunk was computed from)."""
    msg = JointTrajectory()
    msg.header.stamp = s_to_stamp(stamp_s)
    msg.joint_names = list(joint_names)
    prev = np.concatenate([np.asarray(start, dtype=np.float64)[None], actions[:-1]])
    vel = (actions - prev) * control_hz
    points = []
    for i in range(actions.shape[0]):
        p = JointTrajectoryPoint()
        p.positions = array.array("d", actions[i])
        p.velocities = array.array("d", vel[i])
        p.time_from_start = s_to_duration((i + 1) / control_hz)
        points.append(p)
    msg.points = points
    return msg


def trajectory_msg(traj: Trajectory) -> JointTrajectory:
    """A ROS-free :class:`Trajectory` (a controller's chunk or stop) as a JointTrajectory with
    positions and velocities (JTC interpolates them with cubic splines)."""
    msg = JointTrajectory()
    msg.header.stamp = s_to_stamp(traj.stamp_s)
    msg.joint_names = list(traj.joint_names)
    points = []
    for t, p, v in zip(traj.times_s, traj.positions, traj.velocities, strict=True):
        point = JointTrajectoryPoint()
        point.positions = array.array("d", p)
        point.velocities = array.array("d", v)
        point.time_from_start = s_to_duration(float(t))
        points.append(point)
    msg.points = points
    return msg


def hold_trajectory(
    joint_names: tuple[str, ...], positions: np.ndarray, stamp_s: float, hold_s: float
) -> JointTrajectory:
    """The stop the vla sends: one point at ``positions`` with zero velocities, due ``hold_s``
    after the stamp. A ros2_control joint_trajectory_controller moves there and holds; the
    executor recognises it (:func:`is_hold`) and comes to rest within its own limits instead."""
    msg = JointTrajectory()
    msg.header.stamp = s_to_stamp(stamp_s)
    msg.joint_names = list(joint_names)
    point = JointTrajectoryPoint()
    point.positions = array.array("d", np.asarray(positions, dtype=np.float64))
    point.velocities = array.array("d", np.zeros(len(joint_names)))
    point.time_from_start = s_to_duration(hold_s)
    msg.points = [point]
    return msg


def is_hold(msg: JointTrajectory) -> bool:
    """A stop: an empty trajectory, or one point whose velocities are given and all zero."""
    if not msg.points:
        return True
    if len(msg.points) != 1:
        return False
    v = msg.points[0].velocities
    return len(v) == len(msg.joint_names) and not any(v)


def trajectory_to_chunk(msg: JointTrajectory, joint_names: tuple[str, ...]) -> TimedChunk:
    """JointTrajectory (any joint order) -> TimedChunk in our order, on a uniform grid."""
    names = list(msg.joint_names)
    unknown = [n for n in names if n not in joint_names]
    if unknown:
        raise ValueError(f"action_chunk.joint_names: unknown joints {unknown}")
    missing = [n for n in joint_names if n not in names]
    if missing:
        raise ValueError(f"action_chunk.joint_names: missing joints {missing}")
    if not msg.points:
        raise ValueError("action_chunk.points: empty")
    order = [names.index(n) for n in joint_names]
    pos = np.array([[p.positions[i] for i in order] for p in msg.points], dtype=np.float64)
    times = np.array([p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points])
    if np.any(np.diff(times) <= 0) or times[0] <= 0:
        raise ValueError("action_chunk.points: time_from_start must be > 0 and increasing")
    dt = float(times[0]) if len(times) == 1 else float(np.mean(np.diff(times)))
    if len(times) > 1 and np.max(np.abs(np.diff(times) - dt)) > 1e-3:
        raise ValueError("action_chunk.points: time_from_start must be uniformly spaced")
    t0 = stamp_to_s(msg.header.stamp) + float(times[0]) - dt
    return TimedChunk(positions=pos, t0_s=t0, dt_s=dt)


def to_diagnostic(status: Status, hardware_id: str) -> DiagnosticStatus:
    msg = DiagnosticStatus()
    msg.level = bytes([int(status.level)])
    msg.name = status.name
    msg.message = status.message
    msg.hardware_id = hardware_id
    msg.values = [KeyValue(key=k, value=str(v)) for k, v in status.values.items()]
    return msg
