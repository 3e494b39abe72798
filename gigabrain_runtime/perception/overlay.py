"""The policy's predicted 2D trajectory drawn onto a camera frame, for operators.

Convention for ``ActionChunk.trajectory`` (float32 [points, 2], row i = (u, v)):

* it refers to the FIRST camera of the embodiment's camera list (``cameras[0]`` in
  robots/data/<robot>.yaml);
* (u, v) are in [0, 1] over the model-input frame of that camera: the square ``size`` x ``size``
  image that :func:`~gigabrain_runtime.perception.images.resize_with_pad` made (letterbox
  padding included). u runs along the width (x, columns), v along the height (y, rows);
  (0, 0) is the top-left corner of the top-left pixel and (1, 1) the bottom-right corner of the
  bottom-right pixel, so pixel column i spans u in [i / size, (i + 1) / size];
* the model input is built from the frame after undistortion when the vla node undistorts, so
  the points then refer to the undistorted image.

:func:`to_image_pixels` undoes the letterbox: points in the camera's own image, in continuous
pixel coordinates (x in [0, width], y in [0, height]; pixel (c, r) spans [c, c + 1] x
[r, r + 1]). Points the model puts in the padding land outside [0, width] x [0, height].
"""

from __future__ import annotations

import numpy as np

from gigabrain_runtime.perception.images import Letterbox, letterbox

# RGB; the path goes from green (next step) to red (end of the horizon)
LINE_RGB = (255, 0, 255)
START_RGB = np.array([0, 255, 0], dtype=np.float64)
END_RGB = np.array([255, 40, 40], dtype=np.float64)
_SHIFT = 4  # cv2 fixed-point bits: sub-pixel accurate drawing


def _check_trajectory(trajectory: np.ndarray) -> np.ndarray:
    pts = np.asarray(trajectory, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"trajectory: expected shape [points, 2], got {pts.shape}")
    if not np.all(np.isfinite(pts)):
        raise ValueError("trajectory: contains NaN or inf")
    return pts


def to_image_pixels(trajectory: np.ndarray, box: Letterbox) -> np.ndarray:
    """Model-input points (u, v) in [0, 1] -> float64 [points, 2] continuous pixel coordinates
    (x, y) in the ``box.width`` x ``box.height`` camera image. Exact inverse of the letterbox:
    ``u * size`` is shifted by the padding and scaled by the content's whole-pixel size.
    Raises ValueError for a trajectory that is not [points, 2] finite values."""
    pts = _check_trajectory(trajectory)
    x = (pts[:, 0] * box.size - box.left) * (box.width / box.content_width)
    y = (pts[:, 1] * box.size - box.top) * (box.height / box.content_height)
    return np.stack([x, y], axis=1)


def to_model_unit(pixels: np.ndarray, box: Letterbox) -> np.ndarray:
    """The inverse of :func:`to_image_pixels`: camera-image pixel coordinates -> (u, v)."""
    px = np.asarray(pixels, dtype=np.float64)
    u = (px[:, 0] * (box.content_width / box.width) + box.left) / box.size
    v = (px[:, 1] * (box.content_height / box.height) + box.top) / box.size
    return np.stack([u, v], axis=1)


def format_label(mode: str, value: float | None, latency_ms: float) -> str:
    """The overlay's caption, e.g. ``standard  v 0.42  13 ms``."""
    parts = [mode]
    if value is not None:
        parts.append(f"v {value:+.2f}")
    parts.append(f"{latency_ms:.0f} ms")
    return "  ".join(parts)


def draw_trajectory(
    image: np.ndarray, trajectory: np.ndarray, *, model_size: int, label: str = ""
) -> np.ndarray:
    """A copy of ``image`` (uint8 RGB [H, W, 3], the first camera's frame the model input was
    made from) with the trajectory drawn on it: a polyline through the points, a dot per point
    coloured from green (first) to red (last), and ``label`` in the top-left corner. The input
    is never modified. Line width and dot size grow with the image (about 1 px per 240 px).
    Raises ValueError naming ``image`` or ``trajectory`` when either is malformed."""
    import cv2

    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image: expected uint8 [H, W, 3], got {image.dtype} {list(image.shape)}")
    h, w = image.shape[:2]
    px = to_image_pixels(trajectory, letterbox(w, h, model_size))
    out = np.array(image, dtype=np.uint8, order="C", copy=True)
    # cv2's integer coordinates are pixel centres: continuous x maps to x - 0.5
    fixed = np.round((px - 0.5) * (1 << _SHIFT))
    fixed = np.clip(fixed, -(1 << 24), 1 << 24).astype(np.int32)  # far-off points stay drawable
    thick = max(1, round(min(h, w) / 240))
    if len(fixed):  # a model without trajectory tokens predicts none: only the label
        cv2.polylines(
            out, [fixed.reshape(-1, 1, 2)], False, LINE_RGB, thick, cv2.LINE_AA, shift=_SHIFT
        )
    n = len(fixed)
    for i, (x, y) in enumerate(fixed):
        t = i / (n - 1) if n > 1 else 0.0
        color = tuple(int(c) for c in np.round((1 - t) * START_RGB + t * END_RGB))
        radius = (2 * thick + 1 + (thick if i == 0 else 0)) << _SHIFT
        cv2.circle(out, (int(x), int(y)), radius, color, -1, cv2.LINE_AA, shift=_SHIFT)
    if label:
        scale = max(0.4, min(h, w) / 960)
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        pad = 3 * thick
        cv2.rectangle(out, (0, 0), (tw + 2 * pad, th + base + 2 * pad), (0, 0, 0), -1)
        cv2.putText(
            out,
            label,
            (pad, pad + th),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (255, 255, 255),
            thick,
            cv2.LINE_AA,
        )
    return out
