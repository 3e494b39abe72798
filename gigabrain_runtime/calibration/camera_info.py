"""Moved to :mod:`gigabrain_runtime.perception.camera_info` (the runtime reads camera_info at run
time; the calibration tools write it). Kept so existing imports keep working."""

from gigabrain_runtime.perception.camera_info import (
    DISTORTION_LENGTHS,
    UNDISTORTABLE_MODELS,
    CameraInfo,
    load_calibrations,
)

__all__ = ["DISTORTION_LENGTHS", "UNDISTORTABLE_MODELS", "CameraInfo", "load_calibrations"]
