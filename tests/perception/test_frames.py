"""Camera frames to model inputs: undistort with the camera's calibration, then letterbox."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from gigabrain_runtime.diagnostics.stats import Level
from gigabrain_runtime.perception.camera_info import CameraInfo
from gigabrain_runtime.perception.frames import FramePipeline
from gigabrain_runtime.perception.images import resize_with_pad

K = np.array([[600.0, 0, 320], [0, 605.0, 240], [0, 0, 1]])
D = np.array([-0.25, 0.08, 0.001, -0.0005, 0.0])
INFO = CameraInfo.from_intrinsics("cam_high", 640, 480, K, D)
RNG = np.random.default_rng(0)
FRAME = RNG.integers(0, 256, (480, 640, 3), dtype=np.uint8)


@pytest.mark.parametrize("method", ["area", "pil_bilinear"])
def test_a_calibrated_camera_is_undistorted_then_letterboxed(method):
    frames = FramePipeline(size=224, method=method, calibrations={"cam_high": INFO}, undistort=True)
    out = frames.process("cam_high", FRAME)
    expected = INFO.undistorter()(FRAME)
    assert out.calibrated
    np.testing.assert_array_equal(out.image, expected)
    np.testing.assert_array_equal(out.model_image, resize_with_pad(expected, 224, method))
    assert "cam_high" not in frames.problems


def test_without_undistortion_the_frame_is_only_described_by_its_calibration():
    frames = FramePipeline(size=224, method="area", calibrations={"cam_high": INFO})
    out = frames.process("cam_high", FRAME)
    assert out.calibrated and out.image is FRAME


def test_a_frame_of_another_size_passes_through_and_is_reported():
    frames = FramePipeline(size=224, method="area", calibrations={"cam_high": INFO}, undistort=True)
    small = FRAME[:240, :320]
    out = frames.process("cam_high", small)
    assert not out.calibrated and out.image is small
    assert "320x240 frames but its calibration is for 640x480" in frames.problems["cam_high"]
    assert "undistortion" in frames.problems["cam_high"]
    frames.process("cam_high", FRAME)  # right size again: the problem clears
    assert "cam_high" not in frames.problems


def test_an_uncalibrated_camera_is_letterboxed_only():
    frames = FramePipeline(size=224, method="area", calibrations={"cam_high": INFO}, undistort=True)
    out = frames.process("cam_wrist", FRAME)
    assert not out.calibrated and out.image is FRAME and "cam_wrist" not in frames.problems


def test_a_calibration_that_cannot_be_undone_names_its_camera():
    fisheye = replace(INFO, distortion_model="equidistant", D=np.zeros(4))
    with pytest.raises(ValueError, match="calibration of cam_high: .*cannot undistort"):
        FramePipeline(size=224, method="area", calibrations={"cam_high": fisheye}, undistort=True)
    with pytest.raises(ValueError, match="image_resize: unknown method 'nearest'"):
        FramePipeline(size=224, method="nearest")


def test_a_size_mismatch_is_logged_once_and_its_end_once():
    frames = FramePipeline(size=224, method="area", calibrations={"cam_high": INFO}, undistort=True)
    small = FRAME[:240, :320]
    changes = []
    for img in [small, small, small, FRAME, FRAME, small]:
        frames.process("cam_high", img)
        changes.append(frames.problem_change("cam_high"))
    assert changes[0] is not None and changes[0][0] and "320x240" in changes[0][1]
    assert changes[1] is None and changes[2] is None  # not once per frame
    assert changes[3] == (False, "cam_high frames match the calibration again")
    assert changes[4] is None and changes[5] is not None and changes[5][0]


def test_the_calibration_status_names_files_and_warns_for_what_stays_distorted():
    frames = FramePipeline(size=224, method="area", calibrations={"cam_high": INFO}, undistort=True)
    s = frames.status(["cam_high", "cam_wrist"], "calib/piper", {"cam_high": "cam_high.yaml"})
    assert s.values["cam_high"] == "cam_high.yaml 640x480" and s.values["cam_wrist"] == "none"
    assert s.level == Level.WARN and "cam_wrist: no calibration" in s.message
    frames.process("cam_high", FRAME[:240, :320])
    assert "320x240 frames" in frames.status(["cam_high"], "calib/piper", {}).message
    plain = FramePipeline(size=224, method="area", calibrations={"cam_high": INFO})
    assert plain.status(["cam_high", "cam_wrist"], "c", {"cam_high": "x.yaml"}).level == Level.OK
