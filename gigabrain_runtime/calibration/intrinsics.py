"""Intrinsic calibration from views of a checkerboard or ChArUco board (OpenCV)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gigabrain_runtime.perception.camera_info import CameraInfo

BOARDS = ("checkerboard", "charuco")


@dataclass(frozen=True, kw_only=True)
class Board:
    """``cols`` x ``rows`` squares; ``square_m`` their size; ChArUco adds ``marker_m``.

    Checkerboard corners used: the inner (cols-1) x (rows-1) grid.
    """

    kind: str = "checkerboard"
    cols: int = 9
    rows: int = 7
    square_m: float = 0.025
    marker_m: float = 0.018
    dictionary: str = "DICT_5X5_100"

    def __post_init__(self) -> None:
        if self.kind not in BOARDS:
            raise ValueError(f"board: unknown {self.kind!r} (known: {', '.join(BOARDS)})")
        if self.cols < 3 or self.rows < 3:
            raise ValueError(f"board: needs at least 3x3 squares, got {self.cols}x{self.rows}")
        if self.square_m <= 0:
            raise ValueError(f"board.square_m: must be > 0, got {self.square_m}")
        if self.kind == "charuco" and not 0 < self.marker_m < self.square_m:
            raise ValueError(f"board.marker_m: must be in (0, square_m), got {self.marker_m}")

    @property
    def inner(self) -> tuple[int, int]:
        return self.cols - 1, self.rows - 1

    def object_points(self) -> np.ndarray:
        """Inner corners in the board frame (z = 0), row-major, metres."""
        c, r = self.inner
        grid = np.mgrid[0:c, 0:r].T.reshape(-1, 2) * self.square_m
        return np.hstack([grid, np.zeros((len(grid), 1))]).astype(np.float32)

    def charuco(self):  # noqa: ANN201
        import cv2

        aruco = cv2.aruco
        dictionary = aruco.getPredefinedDictionary(getattr(aruco, self.dictionary))
        return aruco.CharucoBoard((self.cols, self.rows), self.square_m, self.marker_m, dictionary)


@dataclass
class Detection:
    image_points: np.ndarray  # [N, 1, 2]
    object_points: np.ndarray  # [N, 3]
    index: int  # which input image


@dataclass
class CalibrationResult:
    info: CameraInfo
    rms_px: float
    per_view_px: list[float]
    used: list[int]
    rejected: list[int] = field(default_factory=list)
    rvecs: list[np.ndarray] = field(default_factory=list)
    tvecs: list[np.ndarray] = field(default_factory=list)


def detect(image: np.ndarray, board: Board, index: int = 0) -> Detection | None:
    """Board corners in one RGB or grey image, or None when the board is not found whole."""
    import cv2

    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if board.kind == "checkerboard":
        found, corners = cv2.findChessboardCorners(
            grey, board.inner, cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE
        )
        if not found:
            return None
        corners = cv2.cornerSubPix(
            grey,
            corners,
            (5, 5),
            (-1, -1),
            (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-4),
        )
        return Detection(corners, board.object_points(), index)
    detector = cv2.aruco.CharucoDetector(board.charuco())
    corners, ids, _, _ = detector.detectBoard(grey)
    if ids is None or len(ids) < 6:
        return None
    obj = board.charuco().getChessboardCorners()[ids.reshape(-1)]
    return Detection(corners.astype(np.float32), obj.astype(np.float32), index)


def calibrate(images: list[np.ndarray], board: Board, camera_name: str) -> CalibrationResult:
    """Intrinsics (plumb_bob) from board views; ValueError when too few views see the board."""
    import cv2

    if not images:
        raise ValueError("images: none given")
    h, w = images[0].shape[:2]
    detections, rejected = [], []
    for i, img in enumerate(images):
        if img.shape[:2] != (h, w):
            raise ValueError(
                f"images[{i}]: size {img.shape[1]}x{img.shape[0]} differs from "
                f"the first image's {w}x{h}"
            )
        d = detect(img, board, i)
        (detections if d is not None else rejected).append(d if d is not None else i)
    if len(detections) < 4:
        raise ValueError(
            f"images: the board was found in {len(detections)} of {len(images)} "
            "views; at least 4 varied views are needed"
        )
    rms, K, D, rvecs, tvecs = cv2.calibrateCamera(
        [d.object_points for d in detections],
        [d.image_points for d in detections],
        (w, h),
        None,
        None,
    )
    per_view = []
    for d, r, t in zip(detections, rvecs, tvecs, strict=True):
        proj, _ = cv2.projectPoints(d.object_points, r, t, K, D)
        err = proj.reshape(-1, 2) - np.asarray(d.image_points).reshape(-1, 2)
        per_view.append(float(np.sqrt(np.mean(np.sum(err**2, axis=-1)))))
    info = CameraInfo.from_intrinsics(camera_name, w, h, K, D.reshape(-1)[:5])
    return CalibrationResult(
        info=info,
        rms_px=float(rms),
        per_view_px=per_view,
        used=[d.index for d in detections],
        rejected=rejected,
        rvecs=list(rvecs),
        tvecs=list(tvecs),
    )


def corners_mosaic(
    images: list[np.ndarray], board: Board, result: CalibrationResult, tile: int = 320
) -> np.ndarray:
    """A PNG-able mosaic of the views with detected corners drawn (BGR)."""
    import cv2

    tiles = []
    for i in result.used:
        img = images[i]
        bgr = (
            cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
            if img.ndim == 3
            else cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        )
        d = detect(img, board, i)
        if d is not None:
            if board.kind == "checkerboard":
                cv2.drawChessboardCorners(bgr, board.inner, d.image_points, True)
            else:
                for p in d.image_points.reshape(-1, 2):
                    cv2.circle(bgr, (int(p[0]), int(p[1])), 3, (0, 0, 255), -1)
        scale = tile / max(bgr.shape[:2])
        tiles.append(cv2.resize(bgr, (int(bgr.shape[1] * scale), int(bgr.shape[0] * scale))))
    cols = min(4, len(tiles))
    rows = (len(tiles) + cols - 1) // cols
    th = max(t.shape[0] for t in tiles)
    tw = max(t.shape[1] for t in tiles)
    mosaic = np.zeros((rows * th, cols * tw, 3), np.uint8)
    for k, t in enumerate(tiles):
        r, c = divmod(k, cols)
        mosaic[r * th : r * th + t.shape[0], c * tw : c * tw + t.shape[1]] = t
    return mosaic
