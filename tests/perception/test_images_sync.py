from __future__ import annotations

import cv2
import numpy as np
import pytest

from gigabrain_runtime.perception.images import decode_compressed, decode_raw, resize_with_pad
from gigabrain_runtime.perception.sync import (
    Assembled,
    ObservationAssembler,
    Refused,
    SyncConfig,
)


def test_rgb_bgr_and_mono_decode_to_rgb_with_row_padding():
    h, w = 2, 3
    rgb = np.arange(h * w * 3, dtype=np.uint8).reshape(h, w, 3)
    step = w * 3 + 4  # padded rows
    padded = np.zeros((h, step), np.uint8)
    padded[:, : w * 3] = rgb.reshape(h, -1)
    np.testing.assert_array_equal(decode_raw("rgb8", h, w, step, padded.tobytes()), rgb)
    bgr = rgb[:, :, ::-1].copy()
    np.testing.assert_array_equal(decode_raw("bgr8", h, w, w * 3, bgr.tobytes()), rgb)
    mono = np.array([[1, 2, 3], [4, 5, 6]], np.uint8)
    out = decode_raw("mono8", h, w, w, mono.tobytes())
    assert out.shape == (2, 3, 3) and np.all(out[..., 0] == mono)


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("rgba8", 2, 2, 8, bytes(16)), "image.encoding: unsupported 'rgba8'"),
        (("rgb8", 2, 2, 6, bytes(5)), r"image.data: 5 bytes, expected step x height = 12"),
        (("rgb8", 2, 2, 4, bytes(8)), r"image.step: 4 is smaller"),
    ],
)
def test_bad_raw_frames_name_the_field(args, field):
    with pytest.raises(ValueError, match=field):
        decode_raw(*args)


def test_jpeg_and_png_decode_to_rgb():
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 200  # red
    ok, png = cv2.imencode(".png", rgb[:, :, ::-1])
    assert ok
    np.testing.assert_array_equal(decode_compressed("png", png.tobytes()), rgb)
    with pytest.raises(ValueError, match="could not decode"):
        decode_compressed("jpeg", b"not a jpeg")


def test_resize_with_pad_keeps_aspect_ratio():
    img = np.full((480, 640, 3), 255, np.uint8)
    out = resize_with_pad(img, 224)
    assert out.shape == (224, 224, 3)
    assert out[0, 112].sum() == 0 and out[112, 112].sum() == 765  # black bars top/bottom


def make_sync(**cfg):
    return ObservationAssembler(("cam_high", "cam_wrist"), SyncConfig(**cfg))


def test_assembles_only_when_every_input_is_fresh_and_consistent():
    s = make_sync(stamp_tolerance_s=0.05, max_image_age_s=0.2, max_state_age_s=0.1)
    img = np.zeros((2, 2, 3), np.uint8)
    assert "no joint state" in s.assemble(1.0).reason
    s.put_state(1.0, np.zeros(7))
    assert "no image yet from cam_high, cam_wrist" in s.assemble(1.0).reason
    s.put_image("cam_high", 0.99, img)
    s.put_image("cam_wrist", 0.98, img)
    obs = s.assemble(1.01)
    assert isinstance(obs, Assembled) and obs.stamp_s == 1.0
    # the wrist camera stops: after max_image_age_s its frame is no longer used
    s.put_state(1.3, np.zeros(7))
    s.put_image("cam_high", 1.3, img)
    why = s.assemble(1.3)
    assert isinstance(why, Refused) and "cam_wrist image is 0.320 s old" in why.reason
    assert why.late  # older than its limit, not yet gone (input_timeout_s 0.4)
    assert s.gone(1.3) == {} and set(s.gone(1.4)) == {"cam_wrist"}


def test_inconsistent_stamps_are_refused():
    s = make_sync(stamp_tolerance_s=0.05, max_image_age_s=0.15)
    img = np.zeros((2, 2, 3), np.uint8)
    s.put_state(1.2, np.zeros(7))  # a joint state stamped 0.2 s ahead of the frames
    s.put_image("cam_high", 1.0, img)
    s.put_image("cam_wrist", 1.0, img)
    why = s.assemble(1.0)
    assert "spread 0.200 s (tolerance 0.150 s)" in why.reason and not why.late


def test_unknown_camera_is_an_error():
    with pytest.raises(ValueError, match="camera: unknown 'cam_left'"):
        make_sync().put_image("cam_left", 0.0, np.zeros((2, 2, 3), np.uint8))


def test_a_cameras_age_limit_is_two_measured_periods_plus_transport_within_bounds():
    s = make_sync(max_image_age_s=0.15, transport_s=0.05, input_timeout_s=0.4)
    img = np.zeros((2, 2, 3), np.uint8)
    assert s.age_limits()["cam_high"] == 0.15  # no period measured yet: the floor
    for k in range(10):
        s.put_image("cam_high", k / 15, img)  # 15 Hz
        s.put_image("cam_wrist", k / 3, img)  # 3 Hz
    limits = s.age_limits()
    assert limits["cam_high"] == pytest.approx(2 / 15 + 0.05)
    assert limits["cam_wrist"] == 0.4  # 2 / 3 + 0.05 capped at the input timeout
    assert limits["joint_states"] == 0.1


def test_sync_settings_are_checked_naming_the_field():
    with pytest.raises(ValueError, match=r"max_image_age_s: must be <= input_timeout_s \(0.4\)"):
        SyncConfig(max_image_age_s=1.0)
    with pytest.raises(ValueError, match="transport_s: must be >= 0, got -0.1"):
        SyncConfig(transport_s=-0.1)
