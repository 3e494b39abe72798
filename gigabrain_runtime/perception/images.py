"""Camera frames to the model's input: decode, convert to RGB, resize to a square.

Works on plain fields (encoding, height, width, step, data bytes) so the ROS layer only unpacks
the message. Bad frames raise ValueError naming the field and value; the node reports it on
/diagnostics and drops the frame.
"""

from __future__ import annotations

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


def resize_with_pad(img: np.ndarray, size: int) -> np.ndarray:
    """Resize keeping the aspect ratio, padding with black to ``size`` x ``size``."""
    import cv2

    h, w = img.shape[:2]
    if (h, w) == (size, size):
        return np.ascontiguousarray(img)
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(np.ascontiguousarray(img), (nw, nh), interpolation=interp)
    out = np.zeros((size, size, 3), dtype=np.uint8)
    top, left = (size - nh) // 2, (size - nw) // 2
    out[top : top + nh, left : left + nw] = resized
    return out
