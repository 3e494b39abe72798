"""Camera frames to model inputs, in one place: (decoded RGB) -> undistort -> letterbox.

A camera with a calibration (``<calibration_dir>/<cam>.yaml``, camera_info) has its frames
undistorted when asked; a frame whose size disagrees with its calibration is used as it is
(neither undistorted nor described by that camera_info) and the problem is kept for
/diagnostics. Every frame is then letterboxed to the model's square input with the filter of
the model's own pipeline (perception/images.py). Decoding the message bytes is
:func:`~gigabrain_runtime.perception.images.decode_raw` / ``decode_compressed``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from gigabrain_runtime.diagnostics.stats import Level, Status
from gigabrain_runtime.perception.camera_info import CameraInfo
from gigabrain_runtime.perception.images import RESIZE_METHODS, resize_with_pad


@dataclass(frozen=True)
class Frame:
    """One camera frame ready for the policy."""

    image: np.ndarray  # RGB uint8 [H, W, 3], undistorted when its calibration applied
    model_image: np.ndarray  # RGB uint8 [S, S, 3], what the model sees
    calibrated: bool  # the camera's calibration describes this frame (its size matches)


class FramePipeline:
    """Per camera: the calibration (optional) and its undistortion maps, built once."""

    def __init__(
        self,
        *,
        size: int,
        method: str,
        calibrations: Mapping[str, CameraInfo] | None = None,
        undistort: bool = False,
    ) -> None:
        """ValueError naming the camera for a calibration whose distortion cannot be undone
        (with ``undistort``), and for an unknown letterbox ``method``."""
        if method not in RESIZE_METHODS:
            raise ValueError(
                f"image_resize: unknown method {method!r} (known: {', '.join(RESIZE_METHODS)})"
            )
        self.size = size
        self.method = method
        self.calibrations = dict(calibrations or {})
        self.undistort = undistort
        self._undistorters: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
        if undistort:
            for cam, info in self.calibrations.items():
                try:
                    self._undistorters[cam] = info.undistorter()
                except ValueError as exc:
                    raise ValueError(f"calibration of {cam}: {exc}") from None
        # camera -> why its calibration did not apply to its latest frame
        self.problems: dict[str, str] = {}
        self._reported: dict[str, str] = {}

    def process(self, camera: str, rgb: np.ndarray) -> Frame:
        """A decoded RGB frame -> :class:`Frame`."""
        info = self.calibrations.get(camera)
        calibrated = False
        if info is not None:
            h, w = rgb.shape[:2]
            if (w, h) == (info.width, info.height):
                calibrated = True
                self.problems.pop(camera, None)
                undistort = self._undistorters.get(camera)
                if undistort is not None:
                    rgb = undistort(rgb)
            else:
                self.problems[camera] = (
                    f"{camera}: {w}x{h} frames but its calibration is for "
                    f"{info.width}x{info.height}; used without "
                    + ("undistortion or " if camera in self._undistorters else "")
                    + "camera_info"
                )
        return Frame(
            image=rgb,
            model_image=resize_with_pad(rgb, self.size, self.method),
            calibrated=calibrated,
        )

    def problem_change(self, camera: str) -> tuple[bool, str] | None:
        """What to log after a frame of ``camera``: ``(True, problem)`` when its frames stop
        matching its calibration (or mismatch differently), ``(False, message)`` when they match
        again, None when nothing changed - so a mismatch is logged once, not per frame."""
        problem, before = self.problems.get(camera), self._reported.get(camera)
        if problem is not None and problem != before:
            self._reported[camera] = problem
            return True, problem
        if problem is None and before is not None:
            del self._reported[camera]
            return False, f"{camera} frames match the calibration again"
        return None

    def status(
        self, cameras: Sequence[str], calibration_dir: str, sources: Mapping[str, str]
    ) -> Status:
        """The ``calibration`` diagnostic: each camera's file (``sources``) and size or "none";
        WARN for a camera left distorted for want of a calibration, and for current problems."""
        s = Status("calibration")
        s.values = {"calibration_dir": calibration_dir, "undistort": str(self.undistort).lower()}
        for cam in cameras:
            info = self.calibrations.get(cam)
            source = sources.get(cam)
            s.values[cam] = (
                f"{source} {info.width}x{info.height}"
                if source is not None and info is not None
                else "none"
            )
            if info is None and self.undistort:
                s.worse(Level.WARN, f"{cam}: no calibration, frames not undistorted")
        for reason in list(self.problems.values()):
            s.worse(Level.WARN, reason)
        return s
