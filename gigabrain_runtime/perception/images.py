"""Camera frames to the model's input: decode, convert to RGB, resize to a square.

Works on plain fields (encoding, height, width, step, data bytes) so the ROS layer only unpacks
the message. Bad frames raise ValueError naming the field and value; the node reports it on
/diagnostics and drops the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RAW_ENCODINGS = {"rgb8": 3, "bgr8": 3, "mono8": 1}
COMPRESSED_FORMATS = ("jpeg", "jpg", "png")


def decode_raw(
    encoding: str, height: int, width: int, step: int, data: bytes | memoryview
) -> np.ndarray:
    """sensor_msgs/Image fields -> RGB uint8 [H, W, 3]."""
    enc = encoding.lower()
    if enc not in RAW_ENCODINGS:
        raise ValueError(
            f"image.encoding: unsupported {encoding!r} (supported: {', '.join(RAW_ENCODINGS)})"
        )
    channels = RAW_ENCODINGS[enc]
    if height <= 0 or width <= 0:
        raise ValueError(f"image.height/width: must be > 0, got {height}x{width}")
    if step < width * channels:
        raise ValueError(
            f"image.step: {step} is smaller than width x channels = {width * channels}"
        )
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size < step * height:
        raise ValueError(f"image.data: {buf.size} bytes, expected step x height = {step * height}")
    rows = buf[: step * height].reshape(height, step)[:, : width * channels]
    img = rows.reshape(height, width, channels)
    if enc == "rgb8":
        return img
    if enc == "bgr8":
        return img[:, :, ::-1]
    return np.repeat(img, 3, axis=2)


def decode_compressed(fmt: str, data: bytes | memoryview) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg/png) -> RGB uint8 [H, W, 3]."""
    import cv2

    f = fmt.lower()
    if not any(k in f for k in COMPRESSED_FORMATS):
        raise ValueError(
            f"image.format: unsupported {fmt!r} (supported: {', '.join(COMPRESSED_FORMATS)})"
        )
    bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"image.data: could not decode {len(data)} bytes as {fmt!r}")
    return bgr[:, :, ::-1]


@dataclass(frozen=True, kw_only=True)
class Letterbox:
    """Where :func:`resize_with_pad` puts a ``width`` x ``height`` image inside its ``size`` x
    ``size`` square: scaled to ``content_width`` x ``content_height`` (aspect ratio kept, each
    side rounded to whole pixels) with its top-left corner at pixel (``left``, ``top``)."""

    width: int
    height: int
    size: int
    content_width: int
    content_height: int
    left: int
    top: int


def letterbox(width: int, height: int, size: int) -> Letterbox:
    """The geometry :func:`resize_with_pad` uses for a ``width`` x ``height`` image."""
    if width <= 0 or height <= 0 or size <= 0:
        raise ValueError(
            f"letterbox: width, height and size must be > 0, got {width}, {height}, {size}"
        )
    scale = size / max(height, width)
    nh, nw = max(1, round(height * scale)), max(1, round(width * scale))
    return Letterbox(
        width=width,
        height=height,
        size=size,
        content_width=nw,
        content_height=nh,
        left=(size - nw) // 2,
        top=(size - nh) // 2,
    )


def resize_with_pad(img: np.ndarray, size: int) -> np.ndarray:
    """Resize keeping the aspect ratio, padding with black to ``size`` x ``size`` (geometry:
    :func:`letterbox`)."""
    import cv2

    h, w = img.shape[:2]
    if (h, w) == (size, size):
        return np.ascontiguousarray(img)
    box = letterbox(w, h, size)
    nw, nh = box.content_width, box.content_height
    interp = cv2.INTER_AREA if max(h, w) > size else cv2.INTER_LINEAR
    resized = cv2.resize(np.ascontiguousarray(img), (nw, nh), interpolation=interp)
    out = np.zeros((size, size, 3), dtype=np.uint8)
    out[box.top : box.top + nh, box.left : box.left + nw] = resized
    return out
