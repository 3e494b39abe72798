"""Camera calibration against synthetic boards rendered with known intrinsics."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from gigabrain_runtime.calibration.intrinsics import Board, calibrate
from gigabrain_runtime.calibration.synthetic import random_views
from gigabrain_runtime.perception.camera_info import CameraInfo

K_TRUE = np.array([[600.0, 0, 320], [0, 605.0, 240], [0, 0, 1]])
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("kind", ["checkerboard", "charuco"])
def test_recovers_the_focal_length_within_one_percent(kind):
    board = Board(kind=kind)
    images, _ = random_views(board, K_TRUE, (640, 480), 12, seed=3)
    result = calibrate(images, board, "cam_high")
    k = result.info.K
    assert abs(k[0, 0] / 600.0 - 1) < 0.01 and abs(k[1, 1] / 605.0 - 1) < 0.01
    assert abs(k[0, 2] - 320) < 5 and abs(k[1, 2] - 240) < 5
    assert result.rms_px < 0.5 and len(result.used) == 12
    assert max(result.per_view_px) < 1.0  # every view, not only the mean, fits


def test_too_few_views_is_a_clear_error():
    board = Board()
    images, _ = random_views(board, K_TRUE, (640, 480), 2)
    blank = [np.full((480, 640, 3), 128, np.uint8)] * 3
    with pytest.raises(ValueError, match="found in 2 of 5 views; at least 4"):
        calibrate(images + blank, board, "cam")


def test_camera_info_yaml_round_trips_in_the_ros_layout(tmp_path):
    info = CameraInfo.from_intrinsics(
        "cam_wrist", 640, 480, K_TRUE, np.array([0.1, -0.05, 0.001, 0.002, 0.0])
    )
    path = info.write(tmp_path / "cam_wrist.yaml")
    import yaml

    raw = yaml.safe_load(path.read_text())
    assert raw["camera_matrix"] == {"rows": 3, "cols": 3, "data": K_TRUE.reshape(-1).tolist()}
    assert raw["distortion_model"] == "plumb_bob" and raw["projection_matrix"]["cols"] == 4
    back = CameraInfo.read(path)
    np.testing.assert_allclose(back.K, info.K)
    np.testing.assert_allclose(back.D, info.D)
    undistort = back.undistorter()
    assert undistort(np.zeros((480, 640, 3), np.uint8)).shape == (480, 640, 3)
    with pytest.raises(ValueError, match="does not match the calibration's 640x480"):
        undistort(np.zeros((10, 10, 3), np.uint8))


def test_calibrate_cli_writes_the_yaml_and_the_corner_png(tmp_path):
    board = Board()
    images, _ = random_views(board, K_TRUE, (640, 480), 8, seed=5)
    folder = tmp_path / "views"
    folder.mkdir()
    for i, img in enumerate(images):
        cv2.imwrite(str(folder / f"{i:02d}.png"), img)
    out = tmp_path / "calibration" / "piper" / "cam_high.yaml"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "gigabrain_runtime",
            "calibrate",
            "camera",
            "--images",
            str(folder),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "reprojection error: rms" in run.stdout
    assert abs(CameraInfo.read(out).K[0, 0] / 600.0 - 1) < 0.01
    assert cv2.imread(str(out.with_suffix(".corners.png"))) is not None
