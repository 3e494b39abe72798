"""The trajectory overlay: letterbox inverse mapping and drawing (pure, no ROS)."""

from __future__ import annotations

import numpy as np
import pytest

from gigabrain_runtime.perception.images import letterbox, resize_with_pad
from gigabrain_runtime.perception.overlay import (
    END_RGB,
    LINE_RGB,
    START_RGB,
    draw_trajectory,
    format_label,
    to_image_pixels,
    to_model_unit,
)

SIZE = 224
# (width, height): landscape, portrait, sizes whose scaled side is rounded, upscaled, square
SIZES = [(640, 480), (480, 640), (333, 100), (100, 333), (64, 48), (1280, 720), (224, 224)]


def test_letterbox_of_a_640x480_frame_maps_back_exactly():
    box = letterbox(640, 480, SIZE)
    assert (box.content_width, box.content_height, box.left, box.top) == (224, 168, 0, 28)
    uv = np.array([[0.5, 0.5], [0.0, 28 / 224], [1.0, 196 / 224], [0.25, 0.0]])
    np.testing.assert_array_equal(
        to_image_pixels(uv, box), [[320.0, 240.0], [0.0, 0.0], [640.0, 480.0], [160.0, -80.0]]
    )


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_the_content_corners_and_centre_map_to_the_image_corners_and_centre(width, height):
    box = letterbox(width, height, SIZE)
    s = SIZE
    corners = np.array(
        [
            [box.left / s, box.top / s],
            [(box.left + box.content_width) / s, (box.top + box.content_height) / s],
            [(box.left + box.content_width / 2) / s, (box.top + box.content_height / 2) / s],
        ]
    )
    np.testing.assert_allclose(
        to_image_pixels(corners, box),
        [[0, 0], [width, height], [width / 2, height / 2]],
        atol=1e-9,
    )
    px = np.array([[0.0, 0.0], [width * 0.3, height * 0.7], [width, height]])
    np.testing.assert_allclose(to_image_pixels(to_model_unit(px, box), box), px, atol=1e-9)


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_the_geometry_is_what_resize_with_pad_does(width, height):
    box = letterbox(width, height, SIZE)
    out = resize_with_pad(np.full((height, width, 3), 255, np.uint8), SIZE)
    rows, cols = np.nonzero(out[..., 0])
    assert (rows.min(), rows.max() + 1) == (box.top, box.top + box.content_height)
    assert (cols.min(), cols.max() + 1) == (box.left, box.left + box.content_width)


@pytest.mark.parametrize(("width", "height"), [(640, 480), (480, 640), (333, 100), (64, 48)])
def test_a_feature_found_in_the_model_input_maps_back_onto_itself(width, height):
    """A bright block's centroid in the resized image, mapped back, is the block's centre."""
    img = np.zeros((height, width, 3), np.uint8)
    x0, y0 = int(width * 0.6), int(height * 0.3)
    bw, bh = max(4, width // 16), max(4, height // 16)
    img[y0 : y0 + bh, x0 : x0 + bw] = 255
    model = resize_with_pad(img, SIZE)[..., 0].astype(np.float64)
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    total = model.sum()
    u = ((cols + 0.5) * model).sum() / total / SIZE  # pixel centres: (i + 0.5) / size
    v = ((rows + 0.5) * model).sum() / total / SIZE
    ((x, y),) = to_image_pixels(np.array([[u, v]]), letterbox(width, height, SIZE))
    # within half a model-input pixel, in camera pixels
    tol = 0.5 * max(width, height) / SIZE
    assert abs(x - (x0 + bw / 2)) <= tol and abs(y - (y0 + bh / 2)) <= tol


def _dot_colours(n):
    t = np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(1)
    return np.round((1 - t)[:, None] * START_RGB + t[:, None] * END_RGB).astype(np.uint8)


def test_dots_are_drawn_where_the_points_map_and_nowhere_else():
    width, height = 640, 480
    img = np.zeros((height, width, 3), np.uint8)
    traj = np.array([[0.2, 0.4], [0.5, 0.5], [0.8, 0.7]], np.float32)
    out = draw_trajectory(img, traj, model_size=SIZE)
    px = to_image_pixels(traj, letterbox(width, height, SIZE))
    colours = _dot_colours(len(traj))
    for (x, y), colour in zip(px, colours):
        np.testing.assert_array_equal(out[int(y), int(x)], colour)
    np.testing.assert_array_equal(colours[0], START_RGB)
    np.testing.assert_array_equal(colours[-1], END_RGB)
    # the line between the first two points, halfway
    mx, my = (px[0] + px[1]) / 2
    np.testing.assert_array_equal(out[int(my), int(mx)], LINE_RGB)
    # everything drawn lies within the biggest dot (7 px at 480 p, + antialiasing) of the
    # points' bounding box
    rows, cols = np.nonzero(out.any(axis=2))
    margin = 10
    assert cols.min() >= px[:, 0].min() - margin and cols.max() <= px[:, 0].max() + margin
    assert rows.min() >= px[:, 1].min() - margin and rows.max() <= px[:, 1].max() + margin


def test_the_input_is_never_modified_and_may_be_read_only():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    before = frame.copy()
    frame.setflags(write=False)  # the node draws on views of message buffers
    out = draw_trajectory(frame, np.array([[0.5, 0.5], [0.6, 0.6]]), model_size=SIZE, label="x")
    np.testing.assert_array_equal(frame, before)
    assert out is not frame and out.flags.writeable and out.shape == frame.shape
    assert np.any(out != frame)


def test_the_label_goes_in_the_top_left_corner():
    img = np.zeros((480, 640, 3), np.uint8)
    traj = np.array([[0.7, 0.8]])
    plain = draw_trajectory(img, traj, model_size=SIZE)
    labelled = draw_trajectory(
        img, traj, model_size=SIZE, label=format_label("efficient", None, 12.7)
    )
    assert not plain[:40, :200].any()
    assert (labelled[:40, :200] == 255).any()  # white text
    np.testing.assert_array_equal(plain[200:], labelled[200:])


def test_a_model_without_trajectory_gets_only_its_label():
    """GigaBrain-0 as released has no trajectory tokens: the overlay still shows the label."""
    img = np.zeros((240, 320, 3), np.uint8)
    out = draw_trajectory(img, np.zeros((0, 2)), model_size=SIZE, label="efficient  12 ms")
    assert out[:40, :200].any()
    assert not out[60:].any()


def test_format_label_shows_mode_value_and_latency():
    assert format_label("efficient", None, 12.7) == "efficient  13 ms"
    assert format_label("standard", 0.4215, 40.2) == "standard  v +0.42  40 ms"


@pytest.mark.parametrize(
    ("image", "trajectory", "field"),
    [
        (np.zeros((48, 64, 3), np.uint8), np.zeros(10), "trajectory: expected shape"),
        (np.zeros((48, 64, 3), np.uint8), np.zeros((3, 4)), "trajectory: expected shape"),
        (np.zeros((48, 64, 3), np.uint8), np.array([[0.1, np.nan]]), "trajectory: contains NaN"),
        (np.zeros((48, 64, 3), np.float32), np.zeros((2, 2)), "image: expected uint8"),
        (np.zeros((48, 64), np.uint8), np.zeros((2, 2)), "image: expected uint8"),
    ],
)
def test_malformed_inputs_name_the_field(image, trajectory, field):
    with pytest.raises(ValueError, match=field):
        draw_trajectory(image, trajectory, model_size=SIZE)
