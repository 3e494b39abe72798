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
    side truncated to whole pixels) with its top-left corner at pixel (``left``, ``top``)."""

    width: int
    height: int
    size: int
    content_width: int
    content_height: int
    left: int
    top: int


def letterbox(width: int, height: int, size: int) -> Letterbox:
    """The geometry :func:`resize_with_pad` uses for a ``width`` x ``height`` image: that of
    GigaBrain-0's AgileX client (``ratio = max(w / size, h / size)``, sides ``int(side /
    ratio)``, padding ``int((size - side) / 2)`` before), e.g. 640x480 -> 224x168 at (0, 28)."""
    if width <= 0 or height <= 0 or size <= 0:
        raise ValueError(
            f"letterbox: width, height and size must be > 0, got {width}, {height}, {size}"
        )
    ratio = max(width / size, height / size)
    nh, nw = max(1, int(height / ratio)), max(1, int(width / ratio))
    return Letterbox(
        width=width,
        height=height,
        size=size,
        content_width=nw,
        content_height=nh,
        left=max(0, int((size - nw) / 2)),
        top=max(0, int((size - nh) / 2)),
    )


def _resize_area(img: np.ndarray, width: int, height: int) -> np.ndarray:
    import cv2

    h, w = img.shape[:2]
    interp = cv2.INTER_AREA if max(h, w) > max(width, height) else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(img), (width, height), interpolation=interp)


def _resize_pil_bilinear(img: np.ndarray, width: int, height: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(
        Image.fromarray(np.ascontiguousarray(img)).resize((width, height), Image.BILINEAR)
    )


# Letterbox filters, by the name a model variant declares (ModelConfig.variant.image_resize):
#   area          OpenCV INTER_AREA when shrinking (INTER_LINEAR when enlarging)
#   pil_bilinear  Pillow's BILINEAR, the filter of GigaBrain-0's AgileX client: checkpoints see
#                 exactly the pixels their pipeline makes (one grey level moves a chunk ~2e-3)
RESIZE_METHODS = {"area": _resize_area, "pil_bilinear": _resize_pil_bilinear}


def resize_with_pad(img: np.ndarray, size: int, method: str = "area") -> np.ndarray:
    """RGB uint8 [H, W, 3] -> [size, size, 3]: resized keeping the aspect ratio with ``method``
    (see :data:`RESIZE_METHODS`) and padded with black (geometry: :func:`letterbox`). An image
    already ``size`` x ``size`` is returned unchanged."""
    try:
        resize = RESIZE_METHODS[method]
    except KeyError:
        raise ValueError(
            f"image_resize: unknown method {method!r} (known: {', '.join(RESIZE_METHODS)})"
        ) from None
    h, w = img.shape[:2]
    if (h, w) == (size, size):
        return np.ascontiguousarray(img)
    box = letterbox(w, h, size)
    nw, nh = box.content_width, box.content_height
    out = np.zeros((size, size, 3), dtype=np.uint8)
    out[box.top : box.top + nh, box.left : box.left + nw] = resize(img, nw, nh)
    return out
