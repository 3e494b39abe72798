"""Camera calibration in the vla node, and the policy overlay, as an outside process sees them.

One vla node is started for the module (``gigabrain-runtime node vla`` with a calibration
folder holding cam_high.yaml only, and ``undistort:=true``); a fake robot in this process
publishes 640x480 cameras (with frame ids) and joint states, and subscribes to camera_info and
the overlay. The tests run in order and each leaves the node as it found it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.node import Node  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CameraInfo as CameraInfoMsg  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from gigabrain_runtime.inference.types import Observation  # noqa: E402
from gigabrain_runtime.perception.camera_info import CameraInfo, load_calibrations  # noqa: E402
from gigabrain_runtime.perception.images import letterbox, resize_with_pad  # noqa: E402
from gigabrain_runtime.perception.overlay import END_RGB, to_image_pixels  # noqa: E402
from gigabrain_runtime.robots.embodiment import get_embodiment  # noqa: E402
from gigabrain_runtime.ros.convert import camera_info_from_msg, camera_info_to_msg  # noqa: E402
from tests.ros.fake_robot import FakeRobot  # noqa: E402
from tests.ros.harness import ROOT, fresh_domain, graph, wait_for  # noqa: E402

PIPER = get_embodiment("piper")
MID = (PIPER.lower + PIPER.upper) / 2
K = np.array([[520.0, 0.0, 318.0], [0.0, 515.0, 243.0], [0.0, 0.0, 1.0]])
D = np.array([-0.28, 0.09, 0.001, -0.0015, 0.0])
CALIBRATION = CameraInfo.from_intrinsics("cam_high", 640, 480, K, D)


def _stamp(msg) -> tuple[int, int]:
    return (msg.header.stamp.sec, msg.header.stamp.nanosec)


class CameraRobot(FakeRobot):
    """The fake robot, with optical frame ids on its images and a record of their stamps."""

    def __init__(self, *args, **kwargs) -> None:
        self.sent_stamps: set[tuple[int, int]] = set()  # before the publishing threads start
        super().__init__(*args, **kwargs)
        self.create_subscription(
            CameraInfoMsg,
            "cameras/cam_high/camera_info",
            self._rec("camera_info"),
            qos_profile_sensor_data,
        )

    def frame(self, cam: str) -> np.ndarray:
        w, h = self.size[cam]
        return np.frombuffer(self._frame[: w * h * 3], np.uint8).reshape(h, w, 3)

    def _publish_images(self) -> None:
        stamp = self.get_clock().now().to_msg()
        with self.lock:
            self.sent_stamps.add((stamp.sec, stamp.nanosec))
        for cam in self.cameras:
            w, h = self.size[cam]
            msg = Image(height=h, width=w, encoding="rgb8", step=w * 3)
            msg.header.stamp = stamp
            # a driver that sets no frame_id (the "frame_id empty on one episode"): the
            # vla's camera_info and overlay carry the embodiment's camera frame instead
            msg.header.frame_id = ""
            msg.data = self._frame[: w * h * 3]
            self._img_pubs[cam].publish(msg)


# ---- start-up errors -------------------------------------------------------------------------
def test_a_malformed_calibration_stops_the_node_at_start_naming_file_and_field(
    tiny_engine, tmp_path
):
    bad = tmp_path / "cam_high.yaml"
    bad.write_text(CALIBRATION.to_yaml().replace("camera_matrix:", "camera_matrx:"))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "gigabrain_runtime",
            "node",
            "vla",
            "--ros-args",
            "-p",
            f"engine:={tiny_engine}",
            "-p",
            f"calibration_dir:={tmp_path}",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, "ROS_DOMAIN_ID": str(fresh_domain())},
    )
    assert out.returncode == 2, out.stderr[-2000:]
    assert f"{bad}: missing camera_matrix" in out.stderr


@pytest.fixture(scope="module")
def calibrated(tiny_engine, tmp_path_factory):
    base = tmp_path_factory.mktemp("calibrated_vla")
    CALIBRATION.write(base / "calibration" / "cam_high.yaml")
    log = base / "vla.log"
    with graph() as g:
        proc = g.launch(
            [
                "node",
                "vla",
                "--ros-args",
                "-r",
                "__ns:=/piper",
                "-p",
                f"engine:={tiny_engine}",
                "-p",
                f"calibration_dir:={base / 'calibration'}",
                "-p",
                "undistort:=true",
            ],
            log,
        )
        robot = CameraRobot("/piper", PIPER.cameras, PIPER.joint_names, positions=MID)
        robot.follow_commands = False
        g.spin(robot, on_close=robot.stop)
        # the overlay's viewer is a node of its own, so a test can make it go away
        viewer = g.spin(Node("overlay_viewer", namespace="/piper"))
        viewer.create_subscription(
            Image, "cameras/cam_high/policy_overlay", robot._rec("overlay"), qos_profile_sensor_data
        )
        robot.close_overlay_viewer = lambda: g.unspin(viewer)
        wait_for(
            lambda: len(robot.since("action_chunk", 0)) >= 3 or proc.poll() is not None,
            90,
            "the first chunks",
        )
        assert proc.poll() is None, log.read_text()[-3000:]
        yield robot, proc, log


def test_camera_info_arrives_with_each_frames_header_and_the_calibration(calibrated):
    robot, _, log = calibrated
    wait_for(lambda: len(robot.since("camera_info", 0)) >= 5, 10, "camera_info")
    infos = [m for _, m in robot.since("camera_info", 0)]
    with robot.lock:
        sent = set(robot.sent_stamps)
    for m in infos:
        assert _stamp(m) in sent
        assert m.header.frame_id == "cam_high_optical_frame"
        assert (m.width, m.height, m.distortion_model) == (640, 480, "plumb_bob")
        np.testing.assert_array_equal(np.reshape(m.k, (3, 3)), K)
        np.testing.assert_array_equal(m.d, D)
        np.testing.assert_array_equal(np.reshape(m.p, (3, 4))[:, :3], K)
    assert len({_stamp(m) for m in infos}) == len(infos)  # one per frame
    assert robot.count_publishers("/piper/cameras/cam_high/camera_info") == 1
    assert robot.count_publishers("/piper/cameras/cam_wrist/camera_info") == 0  # uncalibrated
    text = log.read_text()
    assert "calibration: cam_high from" in text and "none for cam_wrist" in text
    assert "cam_high: images carry no header.frame_id; camera_info and the overlay use " in text


def test_the_overlay_draws_the_trajectory_on_the_undistorted_first_camera(calibrated, ort_backend):
    robot, _, _ = calibrated
    wait_for(lambda: robot.since("overlay", 0), 10, "an overlay image")
    _, msg = robot.since("overlay", 0)[-1]
    assert (msg.width, msg.height, msg.encoding) == (640, 480, "rgb8")
    assert msg.header.frame_id == "cam_high_optical_frame"
    with robot.lock:
        assert _stamp(msg) in robot.sent_stamps  # the header of the frame the chunk came from
    overlay = np.frombuffer(bytes(msg.data), np.uint8).reshape(480, 640, 3)
    frame = robot.frame("cam_high")
    undistorted = CALIBRATION.undistorter()(frame)
    changed = np.any(overlay != undistorted, axis=2)
    assert 0 < changed.mean() < 0.1  # drawn on the undistorted frame, not on the raw one
    assert np.any(overlay != frame, axis=2).mean() > 0.5

    # the trajectory the node's model predicted for that observation (deterministic: it comes
    # from the prefix, not from the flow's noise), mapped back to the camera image
    obs = Observation(
        images={
            "cam_high": resize_with_pad(undistorted, 224),
            "cam_wrist": resize_with_pad(robot.frame("cam_wrist"), 224),
        },
        state=MID,
        instruction="",
        embodiment="piper",
    )
    trajectory = ort_backend.infer(obs).trajectory
    px = to_image_pixels(trajectory, letterbox(640, 480, 224))
    n = len(px)
    # the last dot is drawn last: its colour sits exactly at its point; every point has
    # something drawn on it (a dot, or a later dot covering it)
    x, y = px[-1]
    assert np.array_equal(overlay[int(y), int(x)], np.round(END_RGB).astype(np.uint8)), px
    on_image = [(x, y) for x, y in px if 0 <= x < 640 and 48 <= y < 480]  # not under the label
    assert len(on_image) >= n // 2, px
    assert all(changed[int(y), int(x)] for x, y in on_image), px
    # and nothing is drawn away from the polyline through the points (dot radius + line)
    ys, xs = np.nonzero(changed[48:])
    pts = np.stack([xs + 0.5, ys + 48.5], axis=1)
    a, b = px[:-1], px[1:]
    ab = b - a
    t = np.clip(
        ((pts[:, None] - a[None]) * ab[None]).sum(-1) / np.maximum((ab**2).sum(-1), 1e-9),
        0.0,
        1.0,
    )
    dist = np.linalg.norm(pts[:, None] - (a[None] + t[..., None] * ab[None]), axis=-1).min(1)
    thick = round(480 / 240)  # the overlay's line width at 640x480
    radius = 2 * thick + 1 + thick  # the first (largest) dot
    assert dist.max() < radius + 1.5, dist.max()  # + anti-aliasing
    assert robot.diag("overlay", since=time.monotonic())["errors"] == "0"


def test_undistorting_keeps_chunks_flowing_and_the_uncalibrated_camera_is_reported(calibrated):
    robot, proc, _ = calibrated
    t0 = time.monotonic()
    robot.wait_count("action_chunk", 5, since=t0)
    cal = robot.diag("calibration", since=t0)
    assert cal["undistort"] == "true" and cal["cam_high"] == "cam_high.yaml 640x480"
    assert cal["cam_wrist"] == "none"
    assert cal["_level"] == "1" and "cam_wrist: no calibration" in cal["_message"]
    assert robot.diag("inference", since=t0)["_level"] == "0"
    assert int(robot.diag("overlay", since=t0)["published"]) > 0
    assert proc.poll() is None


def test_a_frame_size_that_disagrees_with_the_calibration_is_reported_and_used(calibrated):
    robot, proc, _ = calibrated
    t_change = time.monotonic()
    robot.size["cam_high"] = (320, 240)
    try:
        robot.diag("calibration", since=t_change, where=lambda d: "320x240 frames" in d["_message"])
        t0 = time.monotonic()
        robot.wait_count("action_chunk", 3, since=t0)
        wait_for(lambda: any(m.width == 320 for _, m in robot.since("overlay", t0)), 10, "overlay")
        assert not robot.since("camera_info", t0 + 0.5)  # it would not describe these frames
    finally:
        robot.size["cam_high"] = (640, 480)
    t1 = time.monotonic()
    wait_for(lambda: robot.since("camera_info", t1), 10, "camera_info again")
    robot.diag("calibration", since=t1, where=lambda d: "320x240" not in d["_message"])
    assert proc.poll() is None


def test_nothing_is_drawn_while_nobody_subscribes_to_the_overlay(calibrated):
    robot, proc, _ = calibrated
    robot.close_overlay_viewer()
    robot.diag("overlay", since=time.monotonic(), where=lambda d: d["subscribers"] == "0")
    # a chunk handed over just before may still be drawn: count from a diagnostic sent after
    # the chunks that followed, then again after more chunks
    robot.wait_count("action_chunk", 3, since=time.monotonic())
    drawn = robot.diag("overlay", since=time.monotonic())["published"]
    robot.wait_count("action_chunk", 5, since=time.monotonic())
    assert robot.diag("overlay", since=time.monotonic())["published"] == drawn
    assert proc.poll() is None


# ---- the pure pieces -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda t: t.replace("image_width: 640", "image_width: wide"), "image_width: expected"),
        (lambda t: t.replace("image_height: 480\n", ""), "missing image_height"),
        (lambda t: t.replace("rows: 3\n  cols: 4", "rows: 3\n  cols: 3"), "projection_matrix"),
        (lambda t: t.replace("- 520.0", "- .nan"), "camera_info.K: contains NaN"),
        (
            lambda t: t.replace("cols: 5", "cols: 3").replace("  - -0.28\n  - 0.09\n", ""),
            "camera_info.D: 3 coefficients",
        ),
        (lambda t: "just text", "not a camera_info mapping"),
    ],
)
def test_malformed_camera_info_files_name_the_file_and_the_field(tmp_path, edit, field):
    path = tmp_path / "cam_high.yaml"
    path.write_text(edit(CALIBRATION.to_yaml()))
    with pytest.raises(ValueError, match=field) as err:
        CameraInfo.read(path)
    assert str(path) in str(err.value)


def test_calibration_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="calibration_dir: .* is not a directory"):
        load_calibrations(tmp_path / "nope", PIPER.cameras)
    with pytest.raises(ValueError, match="has none of cam_high.yaml, cam_wrist.yaml"):
        load_calibrations(tmp_path, PIPER.cameras)
    CALIBRATION.write(tmp_path / "cam_wrist.yaml")
    assert load_calibrations(tmp_path, PIPER.cameras) == {"cam_wrist": tmp_path / "cam_wrist.yaml"}


def test_camera_info_message_round_trip():
    from std_msgs.msg import Header

    header = Header(frame_id="cam_high_optical_frame")
    header.stamp.sec, header.stamp.nanosec = 12, 345
    msg = camera_info_to_msg(CALIBRATION, header)
    assert msg.header.frame_id == "cam_high_optical_frame" and _stamp(msg) == (12, 345)
    back = camera_info_from_msg(msg, "cam_high")
    for name in ("K", "D", "R", "P"):
        np.testing.assert_array_equal(getattr(back, name), getattr(CALIBRATION, name))
    assert (back.width, back.height, back.distortion_model) == (640, 480, "plumb_bob")
