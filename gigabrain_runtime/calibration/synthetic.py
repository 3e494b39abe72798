"""Synthetic board views with known intrinsics and poses: ground truth for calibration tests."""

from __future__ import annotations

import numpy as np

from gigabrain_runtime.calibration.intrinsics import Board

PX_PER_M = 4000.0  # texture resolution of the rendered board


def board_texture(board: Board, margin_squares: float = 0.5) -> tuple[np.ndarray, float]:
    """A white-bordered checkerboard (or ChArUco) image and its border in metres."""

    if board.kind == "charuco":
        size = (
            int((board.cols + 2 * margin_squares) * board.square_m * PX_PER_M),
            int((board.rows + 2 * margin_squares) * board.square_m * PX_PER_M),
        )
        img = board.charuco().generateImage(
            size, marginSize=int(margin_squares * board.square_m * PX_PER_M)
        )
        return img, margin_squares * board.square_m
    sq = int(board.square_m * PX_PER_M)
    m = int(margin_squares * sq)
    img = np.full((board.rows * sq + 2 * m, board.cols * sq + 2 * m), 255, np.uint8)
    for r in range(board.rows):
        for c in range(board.cols):
            if (r + c) % 2 == 0:
                img[m + r * sq : m + (r + 1) * sq, m + c * sq : m + (c + 1) * sq] = 0
    return img, margin_squares * board.square_m


def render_view(
    board: Board, K: np.ndarray, R: np.ndarray, t: np.ndarray, size: tuple[int, int]
) -> np.ndarray:
    """The board seen by a pinhole camera K at pose (R, t) (board frame -> camera frame), grey.

    The board's object points (inner corners) sit at square_m multiples from the first inner
    corner, which is one square in from the board's top-left square corner.
    """
    import cv2

    tex, border = board_texture(board)
    # texture pixel -> board-plane metres, with the first inner corner at the origin
    offset = border + (board.square_m if board.kind == "checkerboard" else 0.0)
    if board.kind == "charuco":
        offset = border  # ChArUco corner ids are measured from the board's outer corner
    S = np.array([[1 / PX_PER_M, 0, -offset], [0, 1 / PX_PER_M, -offset], [0, 0, 1]])
    H = K @ np.column_stack([R[:, 0], R[:, 1], t]) @ S
    w, h = size
    return cv2.warpPerspective(tex, H, (w, h), flags=cv2.INTER_AREA, borderValue=128)


def random_views(
    board: Board, K: np.ndarray, size: tuple[int, int], n: int, seed: int = 0
) -> tuple[list[np.ndarray], list[tuple[np.ndarray, np.ndarray]]]:
    """``n`` views at varied tilts and distances, each keeping the whole board in frame."""
    import cv2

    rng = np.random.default_rng(seed)
    cx = (board.cols - 2) * board.square_m / 2
    cy = (board.rows - 2) * board.square_m / 2
    views, poses = [], []
    while len(views) < n:
        rvec = rng.uniform([-0.5, -0.5, -0.3], [0.5, 0.5, 0.3])
        R, _ = cv2.Rodrigues(rvec)
        dist = rng.uniform(0.35, 0.6)
        t = np.array([0.0, 0.0, dist]) - R @ np.array([cx, cy, 0.0])
        t[:2] += rng.uniform(-0.04, 0.04, 2)
        corners = (K @ (R @ board.object_points().T.astype(float) + t[:, None])).T
        uv = corners[:, :2] / corners[:, 2:]
        if uv.min() < 20 or uv[:, 0].max() > size[0] - 20 or uv[:, 1].max() > size[1] - 20:
            continue
        views.append(render_view(board, K, R, t, size))
        poses.append((R, t))
    return views, poses
