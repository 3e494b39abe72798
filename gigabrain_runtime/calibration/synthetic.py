"""Synthetic board views with known intrinsics and poses: ground truth for calibration tests."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True, kw_only=True)
class HandEyeViews:
    """Rendered board views of a robot with a known camera mount: hand-eye ground truth.

    ``camera_pose`` is what a hand-eye calibration recovers: T_flange_cam (eye-in-hand) or
    T_base_cam (eye-to-hand), optical frame; ``board_pose`` is T_base_board (eye-in-hand) or
    T_flange_board (eye-to-hand). Joint positions are in embodiment order and units."""

    setup: str
    robot: str
    base: str
    flange: str
    joint_names: tuple[str, ...]
    joint_positions: list[np.ndarray]
    flange_poses: list[np.ndarray]  # T_base_flange per view (FK)
    images: list[np.ndarray]
    camera_pose: np.ndarray
    board_pose: np.ndarray


def _frontal(board: Board, distance_m: float, tilt: np.ndarray) -> np.ndarray:
    """T_cam_board: the board's inner-corner centre on the optical axis at ``distance_m``,
    turned by the rotation vector ``tilt``."""
    from gigabrain_runtime.geometry import pose, rotvec_to_matrix

    c = board.object_points().astype(np.float64).mean(axis=0)
    R = rotvec_to_matrix(tilt)
    return pose(R, np.array([0.0, 0.0, distance_m]) - R @ c)


def _in_view(
    board: Board, K: np.ndarray, size: tuple[int, int], T_cam_board: np.ndarray, margin_px: float
) -> bool:
    R, t = T_cam_board[:3, :3], T_cam_board[:3, 3]
    if not 0.12 < t[2] < 1.2 or R[2, 2] < np.cos(np.radians(55)):  # facing the camera
        return False
    # the whole printed board (outer squares included) must be in frame
    sq = board.square_m
    x0, y0 = (-sq, -sq) if board.kind == "checkerboard" else (0.0, 0.0)
    x1, y1 = x0 + board.cols * sq, y0 + board.rows * sq
    outline = np.array([[x0, y0, 0], [x1, y0, 0], [x1, y1, 0], [x0, y1, 0]])
    cam = R @ outline.T + t[:, None]
    if np.any(cam[2] <= 0.05):
        return False
    uv = (K @ cam)[:2] / cam[2]
    return bool(
        uv.min() > margin_px
        and uv[0].max() < size[0] - margin_px
        and uv[1].max() < size[1] - margin_px
    )


def hand_eye_views(
    board: Board,
    K: np.ndarray,
    size: tuple[int, int],
    *,
    setup: str = "eye-in-hand",
    n: int = 16,
    seed: int = 0,
    robot: str = "piper",
    flange: str | None = None,
    camera_pose: np.ndarray | None = None,
    board_pose: np.ndarray | None = None,
    spread_rad: float = 0.3,
    noise: float = 2.0,
) -> HandEyeViews:
    """``n`` views of ``board`` through a pinhole camera K (no distortion) mounted on the
    robot's flange (eye-in-hand, board fixed in the base frame) or fixed in the base frame
    (eye-to-hand, board held by the flange).

    Joint configurations are drawn around the robot's home pose (normal, ``spread_rad`` per
    arm joint, within the embodiment's limits); configurations where the whole board is not in
    frame, or is seen at more than 55 degrees, are redrawn. Defaults: a wrist camera 6.8 cm
    from the flange turned by ~8.5 degrees, the board 0.3 m in front of it at home; a fixed
    camera 0.45 m from a board held 0.1 m out along the flange's z. ``noise`` is the grey-level
    standard deviation of added sensor noise. Raises ValueError for an unknown setup, or when
    too few configurations keep the board in view."""
    from gigabrain_runtime.calibration.handeye import SETUPS
    from gigabrain_runtime.calibration.kinematics import ArmKinematics
    from gigabrain_runtime.geometry import pose, rotvec_to_matrix

    if setup not in SETUPS:
        raise ValueError(f"setup: unknown {setup!r} (known: {', '.join(SETUPS)})")
    rng = np.random.default_rng(seed)
    kin = ArmKinematics(robot, flange=flange)
    emb = kin.embodiment
    q0 = np.array([float(emb.home.get(j, 0.0)) for j in emb.joint_names])
    q0 = np.clip(q0, emb.lower, emb.upper)
    chain = np.array([j in kin.chain_joints for j in emb.joint_names])
    F0 = kin.flange_pose(q0)
    if setup == "eye-in-hand":
        X = (
            camera_pose
            if camera_pose is not None
            else pose(rotvec_to_matrix([0.06, -0.08, 0.11]), [0.012, -0.055, 0.038])
        )
        Y = board_pose if board_pose is not None else F0 @ X @ _frontal(board, 0.3, [0.2, -0.1, 0])
    else:
        if board_pose is not None:
            Y = board_pose
        else:
            # the board's face along the flange's x, its centre 0.1 m out along z
            Rb = rotvec_to_matrix([0.0, np.pi / 2, 0.0])
            c = board.object_points().astype(np.float64).mean(axis=0)
            Y = pose(Rb, np.array([0.0, 0.0, 0.1]) - Rb @ c)
        X = (
            camera_pose
            if camera_pose is not None
            else F0 @ Y @ np.linalg.inv(_frontal(board, 0.45, [-0.25, 0.15, 0.1]))
        )
    X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)

    positions, flanges, images = [], [], []
    tries = 0
    while len(images) < n:
        tries += 1
        if tries > 500 * n:
            raise ValueError(
                f"hand_eye_views: only {len(images)} of {n} configurations kept the board in "
                "view; lower spread_rad or move the board"
            )
        q = q0.copy()
        q[chain] += rng.normal(0.0, spread_rad, int(chain.sum()))
        q = np.clip(q, emb.lower, emb.upper)
        F = kin.flange_pose(q)
        T = (
            np.linalg.inv(X) @ np.linalg.inv(F) @ Y
            if setup == "eye-in-hand"
            else np.linalg.inv(X) @ F @ Y
        )
        if not _in_view(board, K, size, T, margin_px=10):
            continue
        img = render_view(board, K, T[:3, :3], T[:3, 3], size)
        if noise > 0:
            img = np.clip(img + rng.normal(0.0, noise, img.shape), 0, 255).astype(np.uint8)
        positions.append(q)
        flanges.append(F)
        images.append(img)
    return HandEyeViews(
        setup=setup,
        robot=emb.name,
        base=kin.base,
        flange=kin.flange,
        joint_names=emb.joint_names,
        joint_positions=positions,
        flange_poses=flanges,
        images=images,
        camera_pose=X,
        board_pose=Y,
    )
