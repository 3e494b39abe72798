"""Camera frames to model inputs: undistort with the camera's calibration, then letterbox."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

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
