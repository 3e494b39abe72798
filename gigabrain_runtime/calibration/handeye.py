"""Hand-eye calibration: where a camera sits relative to the robot, from board views and FK.

Two setups, one model. For view ``i`` with board pose ``T_cam_board_i`` (solvePnP on the
detected corners) and flange pose ``T_base_flange_i`` (forward kinematics)::

    eye-in-hand (wrist camera, board fixed in the base frame):
        T_cam_board_i = inv(T_flange_cam) @ inv(T_base_flange_i) @ T_base_board
    eye-to-hand (fixed camera, board held by the gripper):
        T_cam_board_i = inv(T_base_cam)   @ T_base_flange_i      @ T_flange_board

i.e. ``T_cam_board_i = inv(X) @ A_i @ Y`` with the unknown camera pose ``X`` and the unknown
board pose ``Y`` (the latter a by-product). Closed-form solvers of ``P X = X Q`` over pairs of
views (Park-Martin, a quaternion null space, and ``cv2.calibrateHandEye`` where the installed
OpenCV has it) give starting points; the best of them is refined by Levenberg-Marquardt over
``X`` and ``Y`` jointly, minimising the corners' reprojection error in every view - the
quantity the detector actually measures.

Pure: numpy and (lazily) OpenCV; no ROS, no mujoco (flange poses come in as matrices).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from gigabrain_runtime.calibration.intrinsics import Board, detect
from gigabrain_runtime.geometry import (
    matrix_to_quat_xyzw,
    matrix_to_rotvec,
    mean_rotation,
    pose,
    quat_xyzw_to_matrix,
    rotation_angle_deg,
    rotation_axis,
    rotvec_to_matrix,
)
from gigabrain_runtime.perception.camera_info import CameraInfo

SETUPS = ("eye-in-hand", "eye-to-hand")
MIN_VIEWS = 5
# Rotations between views smaller than this say nothing about the rotation axis.
MIN_MOTION_DEG = 2.0
# Share of the rotation-axis scatter off the dominant axis below which all motions are taken
# as rotations about one axis (then the translation along that axis is unobservable).
MIN_AXIS_SPREAD = 0.01
# distortion models OpenCV's pinhole projection implements (a fisheye would need cv2.fisheye)
PINHOLE_MODELS = ("plumb_bob", "rational_polynomial")
OPENCV_METHODS = ("TSAI", "PARK", "HORAUD", "ANDREFF", "DANIILIDIS")


# ---- the result --------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class ViewResidual:
    """How well the calibrated model explains one view."""

    index: int  # which input sample
    reprojection_px: float  # RMS over the view's corners
    rotation_deg: float  # PnP board rotation vs the model's
    translation_mm: float  # PnP board position vs the model's (camera frame)


@dataclass(frozen=True, kw_only=True)
class HandEyeResult:
    """``T_parent_child``: the camera's optical frame in the flange (eye-in-hand) or base
    (eye-to-hand) frame, plus the board's pose as a by-product; residual statistics are
    derived from ``per_view``."""

    setup: str
    robot: str
    camera: str
    parent_frame: str
    child_frame: str
    translation_m: tuple[float, float, float]
    quaternion_xyzw: tuple[float, float, float, float]
    method: str
    views_total: int
    per_view: tuple[ViewResidual, ...]
    board_parent_frame: str
    board_translation_m: tuple[float, float, float]
    board_quaternion_xyzw: tuple[float, float, float, float]
    camera_info: str = ""  # the intrinsics file the calibration used

    def __post_init__(self) -> None:
        if self.setup not in SETUPS:
            raise ValueError(f"setup: unknown {self.setup!r} (known: {', '.join(SETUPS)})")
        for name in ("robot", "camera", "parent_frame", "child_frame", "board_parent_frame"):
            if not getattr(self, name):
                raise ValueError(f"{name}: must be non-empty")
        for name, n in (
            ("translation_m", 3),
            ("quaternion_xyzw", 4),
            ("board_translation_m", 3),
            ("board_quaternion_xyzw", 4),
        ):
            value = np.asarray(getattr(self, name), dtype=np.float64).reshape(-1)
            if value.shape != (n,) or not np.all(np.isfinite(value)):
                raise ValueError(f"{name}: expected {n} finite numbers, got {getattr(self, name)}")
            if n == 4:
                norm = float(np.linalg.norm(value))
                if abs(norm - 1) > 1e-3:
                    raise ValueError(f"{name}: must be a unit quaternion, norm is {norm:.4f}")
                value = value / norm
            object.__setattr__(self, name, tuple(float(v) for v in value))
        if not self.per_view:
            raise ValueError("per_view: at least one view's residuals are needed")
        object.__setattr__(self, "per_view", tuple(self.per_view))
        if self.views_total < len(self.per_view):
            raise ValueError(
                f"views_total: {self.views_total} is fewer than the {len(self.per_view)} views used"
            )

    # ---- derived ---------------------------------------------------------------------------
    @property
    def matrix(self) -> np.ndarray:
        """T_parent_child, 4x4, metres."""
        return pose(quat_xyzw_to_matrix(self.quaternion_xyzw), self.translation_m)

    @property
    def board_matrix(self) -> np.ndarray:
        return pose(quat_xyzw_to_matrix(self.board_quaternion_xyzw), self.board_translation_m)

    @property
    def views_used(self) -> int:
        return len(self.per_view)

    def _stat(self, name: str) -> tuple[float, float]:
        values = [getattr(v, name) for v in self.per_view]
        return float(np.mean(values)), float(np.max(values))

    @property
    def reprojection_px(self) -> float:
        """Mean over views of the per-view RMS corner reprojection error."""
        return self._stat("reprojection_px")[0]

    @property
    def rotation_residual_deg(self) -> float:
        return self._stat("rotation_deg")[0]

    @property
    def translation_residual_mm(self) -> float:
        return self._stat("translation_mm")[0]

    # ---- YAML ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        def xyz(t: tuple[float, ...]) -> dict[str, float]:
            return {"x": t[0], "y": t[1], "z": t[2]}

        def xyzw(q: tuple[float, ...]) -> dict[str, float]:
            return {"x": q[0], "y": q[1], "z": q[2], "w": q[3]}

        def stat(name: str, digits: int) -> dict[str, float]:
            mean, worst = self._stat(name)
            return {"mean": round(mean, digits), "max": round(worst, digits)}

        return {
            "setup": self.setup,
            "robot": self.robot,
            "camera": self.camera,
            "camera_info": self.camera_info,
            "parent_frame": self.parent_frame,
            "child_frame": self.child_frame,
            "translation": xyz(self.translation_m),  # metres
            "rotation": xyzw(self.quaternion_xyzw),  # quaternion
            "method": self.method,
            "views_used": self.views_used,
            "views_total": self.views_total,
            "residuals": {
                "reprojection_px": stat("reprojection_px", 4),
                "rotation_deg": stat("rotation_deg", 4),
                "translation_mm": stat("translation_mm", 3),
            },
            "board": {
                "parent_frame": self.board_parent_frame,
                "translation": xyz(self.board_translation_m),
                "rotation": xyzw(self.board_quaternion_xyzw),
            },
            "per_view": [
                {
                    "index": v.index,
                    "reprojection_px": round(v.reprojection_px, 4),
                    "rotation_deg": round(v.rotation_deg, 4),
                    "translation_mm": round(v.translation_mm, 3),
                }
                for v in self.per_view
            ],
        }

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_yaml())
        return path

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, source: str = "<dict>") -> HandEyeResult:
        try:
            t, r = d["translation"], d["rotation"]
            b = d["board"]
            return cls(
                setup=d["setup"],
                robot=d["robot"],
                camera=d["camera"],
                camera_info=d.get("camera_info", ""),
                parent_frame=d["parent_frame"],
                child_frame=d["child_frame"],
                translation_m=(t["x"], t["y"], t["z"]),
                quaternion_xyzw=(r["x"], r["y"], r["z"], r["w"]),
                method=d["method"],
                views_total=int(d["views_total"]),
                per_view=tuple(ViewResidual(**v) for v in d["per_view"]),
                board_parent_frame=b["parent_frame"],
                board_translation_m=(
                    b["translation"]["x"],
                    b["translation"]["y"],
                    b["translation"]["z"],
                ),
                board_quaternion_xyzw=(
                    b["rotation"]["x"],
                    b["rotation"]["y"],
                    b["rotation"]["z"],
                    b["rotation"]["w"],
                ),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{source}: not a hand-eye calibration ({exc!r} missing)") from None

    @classmethod
    def read(cls, path: str | Path) -> HandEyeResult:
        path = Path(path)
        try:
            d = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"{path}: cannot read ({exc})") from None
        if not isinstance(d, dict):
            raise ValueError(f"{path}: expected a mapping")
        return cls.from_dict(d, source=str(path))


# ---- observations ------------------------------------------------------------------------------
@dataclass
class BoardObservation:
    """The board in one view: detected corners and the PnP pose ``T_cam_board``."""

    index: int
    T_cam_board: np.ndarray  # 4x4
    image_points: np.ndarray  # [N, 2]
    object_points: np.ndarray  # [N, 3] board frame, metres
    full_grid: bool  # every checkerboard corner, in grid order (180-degree ambiguous)


def observe(
    image: np.ndarray, info: CameraInfo, board: Board, index: int = 0
) -> BoardObservation | None:
    """Detect the board and solve its pose; None when the board is not found."""
    import cv2

    if image.shape[:2] != (info.height, info.width):
        raise ValueError(
            f"images[{index}]: {image.shape[1]}x{image.shape[0]} does not match the "
            f"camera_info's {info.width}x{info.height}"
        )
    d = detect(image, board, index)
    if d is None:
        return None
    obj = np.asarray(d.object_points, dtype=np.float64).reshape(-1, 3)
    img = np.asarray(d.image_points, dtype=np.float64).reshape(-1, 2)
    ok, rvec, tvec = cv2.solvePnP(obj, img, info.K, info.D, flags=cv2.SOLVEPNP_IPPE)
    if not ok:
        return None
    rvec, tvec = cv2.solvePnPRefineLM(obj, img, info.K, info.D, rvec, tvec)
    R, _ = cv2.Rodrigues(rvec)
    return BoardObservation(
        index=index,
        T_cam_board=pose(R, tvec),
        image_points=img,
        object_points=obj,
        full_grid=board.kind == "checkerboard",
    )


def _flip(obs: BoardObservation) -> BoardObservation:
    """The same corners read the other way round: a checkerboard's grid looks the same turned
    by 180 degrees about its centre, and OpenCV orders the corners by where they fall in the
    image, so a camera rolled past 90 degrees sees corner 0 at the opposite end."""
    c = obs.object_points.mean(axis=0)
    F = pose(np.diag([-1.0, -1.0, 1.0]), 2 * np.array([c[0], c[1], 0.0]))
    return BoardObservation(
        index=obs.index,
        T_cam_board=obs.T_cam_board @ F,
        image_points=obs.image_points,
        object_points=obs.object_points[::-1].copy(),
        full_grid=True,
    )


def _relative_angles(Rs: list[np.ndarray]) -> np.ndarray:
    n = len(Rs)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            out[i, j] = out[j, i] = rotation_angle_deg(Rs[i] @ Rs[j].T)
    return out


def resolve_flips(
    A: list[np.ndarray], observations: list[BoardObservation]
) -> tuple[list[BoardObservation], int]:
    """Pick, per view, the corner order consistent with the robot's motion.

    ``A_i A_j^-1`` and ``T_i T_j^-1`` are conjugate (same rotation angle) for every pair of
    views; a view read the wrong way round breaks that. Views are decided in turn against the
    views already decided. Returns the observations and how many were flipped."""
    if not all(o.full_grid for o in observations):
        return observations, 0
    robot = _relative_angles([a[:3, :3] for a in A])
    out = [observations[0]]
    flipped = 0
    for j in range(1, len(observations)):
        options = [observations[j], _flip(observations[j])]
        costs = []
        for o in options:
            Rj = o.T_cam_board[:3, :3]
            costs.append(
                sum(
                    abs(rotation_angle_deg(out[i].T_cam_board[:3, :3] @ Rj.T) - robot[i, j])
                    for i in range(j)
                )
            )
        best = int(np.argmin(costs))
        flipped += best
        out.append(options[best])
    return out, flipped


def check_motion(flange_poses: list[np.ndarray]) -> None:
    """ValueError when the flange orientations cannot determine a hand-eye rotation: (almost)
    no rotation between views, or every rotation about one axis."""
    Rs = [np.asarray(T)[:3, :3] for T in flange_poses]
    axes, biggest = [], 0.0
    for i in range(len(Rs)):
        for j in range(i + 1, len(Rs)):
            rel = Rs[i].T @ Rs[j]
            angle = rotation_angle_deg(rel)
            biggest = max(biggest, angle)
            if angle > MIN_MOTION_DEG:
                axes.append(rotation_axis(rel))
    if len(axes) < 2:
        raise ValueError(
            f"flange poses: the wrist orientation hardly changes between views (largest "
            f"relative rotation {biggest:.1f} deg); rotate the wrist by 15-45 degrees about "
            "different axes between views"
        )
    M = sum(np.outer(a, a) for a in axes) / len(axes)
    eig = np.sort(np.linalg.eigvalsh(M))[::-1]
    if eig[1] < MIN_AXIS_SPREAD:
        axis = np.linalg.eigh(M)[1][:, -1]
        raise ValueError(
            "flange poses: degenerate motion - every rotation between views is about one axis "
            f"(~[{axis[0]:.2f}, {axis[1]:.2f}, {axis[2]:.2f}] in the flange frame), which "
            "leaves the camera offset along it unobservable; tilt the wrist about at least "
            "two non-parallel axes"
        )


# ---- pairing images with joint states ------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class SampleSelection:
    """Which images of a recording to use, each with its joint state, and why others were not.

    ``pairs``: (image index, joint-state index), in image order."""

    pairs: tuple[tuple[int, int], ...]
    images: int
    unmatched: int  # no joint state within max_dt_s
    moving: int  # the arm moved faster than max_speed_rad_s
    repeated: int  # the arm had not moved min_change_rad since the last image kept


def select_samples(
    image_ns: np.ndarray,
    joint_ns: np.ndarray,
    joint_positions: np.ndarray,
    *,
    max_dt_s: float = 0.02,
    max_speed_rad_s: float = 0.05,
    min_change_rad: float = 0.02,
) -> SampleSelection:
    """Pair each image stamp with the nearest joint-state stamp (ns) and keep the images taken
    with the arm still, one per pose.

    ``joint_positions`` [M, J]: the joints that move the flange, one row per joint state. An
    image is dropped when its nearest joint state is more than ``max_dt_s`` away, when the
    joints moved faster than ``max_speed_rad_s`` around it (image and joint clocks never agree
    to the millisecond, and a moving arm turns that into a pose error), or when no joint moved
    ``min_change_rad`` since the previous image kept (a pose held for seconds is one view).
    ValueError for mismatched shapes or no joint states."""
    image_ns = np.asarray(image_ns, dtype=np.int64).reshape(-1)
    joint_ns = np.asarray(joint_ns, dtype=np.int64).reshape(-1)
    q = np.asarray(joint_positions, dtype=np.float64)
    if q.ndim != 2 or q.shape[0] != joint_ns.size:
        raise ValueError(
            f"joint_positions: expected one row per joint state ({joint_ns.size}), "
            f"got shape {q.shape}"
        )
    if joint_ns.size == 0:
        raise ValueError("joint states: none to pair the images with")
    order = np.argsort(joint_ns, kind="stable")
    t, q = joint_ns[order], q[order]
    pairs: list[tuple[int, int]] = []
    unmatched = moving = repeated = 0
    last: np.ndarray | None = None
    for i in np.argsort(image_ns, kind="stable"):
        k = int(np.searchsorted(t, image_ns[i]))
        candidates = [c for c in (k - 1, k) if 0 <= c < t.size]
        j = min(candidates, key=lambda c: abs(int(t[c]) - int(image_ns[i])))
        if abs(int(t[j]) - int(image_ns[i])) > max_dt_s * 1e9:
            unmatched += 1
            continue
        lo, hi = max(j - 1, 0), min(j + 1, t.size - 1)
        if hi > lo and t[hi] > t[lo]:
            speed = float(np.max(np.abs(q[hi] - q[lo]))) / ((t[hi] - t[lo]) * 1e-9)
            if speed > max_speed_rad_s:
                moving += 1
                continue
        if last is not None and float(np.max(np.abs(q[j] - last))) < min_change_rad:
            repeated += 1
            continue
        last = q[j]
        pairs.append((int(i), int(order[j])))
    return SampleSelection(
        pairs=tuple(pairs),
        images=int(image_ns.size),
        unmatched=unmatched,
        moving=moving,
        repeated=repeated,
    )


# ---- solving -----------------------------------------------------------------------------------
def _predicted(X: np.ndarray, A: np.ndarray, Y: np.ndarray) -> np.ndarray:
    return np.linalg.inv(X) @ A @ Y


def _reprojection(
    X: np.ndarray, Y: np.ndarray, A: list[np.ndarray], obs: list[BoardObservation], info: CameraInfo
) -> np.ndarray:
    """Stacked corner residuals (px) of the model in every view."""
    import cv2

    out = []
    for a, o in zip(A, obs, strict=True):
        T = _predicted(X, a, Y)
        rvec, _ = cv2.Rodrigues(T[:3, :3])
        proj, _ = cv2.projectPoints(o.object_points, rvec, T[:3, 3], info.K, info.D)
        out.append((proj.reshape(-1, 2) - o.image_points).reshape(-1))
    return np.concatenate(out)


def _board_from(X: np.ndarray, A: list[np.ndarray], obs: list[BoardObservation]) -> np.ndarray:
    """Y = inv(A_i) X T_i, averaged over the views."""
    Ys = [np.linalg.inv(a) @ X @ o.T_cam_board for a, o in zip(A, obs, strict=True)]
    return pose(mean_rotation([y[:3, :3] for y in Ys]), np.mean([y[:3, 3] for y in Ys], axis=0))


def _perturb(T: np.ndarray, d: np.ndarray) -> np.ndarray:
    return T @ pose(rotvec_to_matrix(d[:3]), d[3:])


def refine(
    X: np.ndarray,
    Y: np.ndarray,
    A: list[np.ndarray],
    obs: list[BoardObservation],
    info: CameraInfo,
    *,
    iterations: int = 50,
) -> tuple[np.ndarray, np.ndarray]:
    """Levenberg-Marquardt over (X, Y), 12 parameters (right-multiplied rotation vector and
    translation each), minimising the summed squared corner reprojection error."""

    def resid(p: np.ndarray) -> np.ndarray:
        return _reprojection(_perturb(X, p[:6]), _perturb(Y, p[6:]), A, obs, info)

    r = resid(np.zeros(12))
    cost = float(r @ r)
    lam = 1e-3
    eps = 1e-7
    done = False
    for _ in range(iterations):
        J = np.empty((r.size, 12))
        for k in range(12):
            step = np.zeros(12)
            step[k] = eps
            J[:, k] = (resid(step) - r) / eps
        H, g = J.T @ J, J.T @ r
        improved = False
        while lam < 1e10:
            delta = -np.linalg.solve(H + lam * np.diag(np.diag(H) + 1e-12), g)
            r2 = resid(delta)
            c2 = float(r2 @ r2)
            if c2 < cost:
                X, Y = _perturb(X, delta[:6]), _perturb(Y, delta[6:])
                done = cost - c2 < 1e-10 * cost or np.abs(delta).max() < 1e-10
                r, cost, lam = r2, c2, max(lam / 10, 1e-9)
                improved = True
                break
            lam *= 10
        if not improved or done:
            break
    return X, Y


def _pairs(A: list[np.ndarray], obs: list[BoardObservation]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Motion pairs (P, Q) with P X = X Q: P = A_j inv(A_i) (robot), Q = T_j inv(T_i)
    (camera), from T_i = inv(X) A_i Y."""
    out = []
    for i in range(len(A)):
        for j in range(i + 1, len(A)):
            P = A[j] @ np.linalg.inv(A[i])
            Q = obs[j].T_cam_board @ np.linalg.inv(obs[i].T_cam_board)
            out.append((P, Q))
    return out


def _translation(pairs: list[tuple[np.ndarray, np.ndarray]], R: np.ndarray) -> np.ndarray:
    """(R_P - I) t = R t_Q - t_P, least squares over all pairs."""
    M = np.vstack([P[:3, :3] - np.eye(3) for P, _ in pairs])
    b = np.concatenate([R @ Q[:3, 3] - P[:3, 3] for P, Q in pairs])
    return np.linalg.lstsq(M, b, rcond=None)[0]


def _park(pairs: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Park & Martin (1994): the rotation vectors of P and Q satisfy a = R_X b; R_X by
    orthogonal Procrustes over all pairs, then t_X by least squares."""
    a = np.array([matrix_to_rotvec(P[:3, :3]) for P, _ in pairs])
    b = np.array([matrix_to_rotvec(Q[:3, :3]) for _, Q in pairs])
    U, _, Vt = np.linalg.svd(a.T @ b)
    R = U @ np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))]) @ Vt
    return pose(R, _translation(pairs, R))


def _quaternion(pairs: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Quaternion null space (as in Horaud & Dornaika 1995): q_P * q_X = q_X * q_Q is linear
    in q_X; the smallest right singular vector of the stacked system, then t_X."""

    def left(q: np.ndarray) -> np.ndarray:  # q * p, quaternions (w, x, y, z)
        w, x, y, z = q
        return np.array([[w, -x, -y, -z], [x, w, -z, y], [y, z, w, -x], [z, -y, x, w]])

    def right(q: np.ndarray) -> np.ndarray:  # p * q
        w, x, y, z = q
        return np.array([[w, -x, -y, -z], [x, w, z, -y], [y, -z, w, x], [z, y, -x, w]])

    rows = []
    for P, Q in pairs:
        qp = np.roll(matrix_to_quat_xyzw(P[:3, :3]), 1)  # w >= 0 for both: same angle
        qq = np.roll(matrix_to_quat_xyzw(Q[:3, :3]), 1)
        rows.append(left(qp) - right(qq))
    q = np.linalg.svd(np.vstack(rows))[2][-1]
    R = quat_xyzw_to_matrix(np.roll(q, -1))
    return pose(R, _translation(pairs, R))


def closed_form_solutions(
    A: list[np.ndarray], obs: list[BoardObservation]
) -> dict[str, np.ndarray]:
    """Starting points for X: Park-Martin, quaternion null space, and OpenCV's
    ``calibrateHandEye`` methods where the installed OpenCV has it (4.x; 5.0 dropped it)."""
    import cv2

    pairs = _pairs(A, obs)
    out = {"park": _park(pairs), "quaternion": _quaternion(pairs)}
    if hasattr(cv2, "calibrateHandEye"):
        # its "gripper2base" is inv(A_i): the flange pose for eye-in-hand, its inverse for
        # eye-to-hand (then the returned "cam2gripper" is T_base_cam)
        G = [np.linalg.inv(a) for a in A]
        for name in OPENCV_METHODS:
            try:
                R, t = cv2.calibrateHandEye(
                    [g[:3, :3] for g in G],
                    [g[:3, 3].reshape(3, 1) for g in G],
                    [o.T_cam_board[:3, :3] for o in obs],
                    [o.T_cam_board[:3, 3].reshape(3, 1) for o in obs],
                    method=getattr(cv2, f"CALIB_HAND_EYE_{name}"),
                )
            except cv2.error:
                continue
            out[f"opencv-{name.lower()}"] = pose(R, t)
    return {k: v for k, v in out.items() if np.all(np.isfinite(v))}


def _rms(r: np.ndarray) -> float:
    return float(np.sqrt(np.mean(r.reshape(-1, 2) ** 2) * 2))


def calibrate_hand_eye(
    *,
    setup: str,
    images: list[np.ndarray],
    flange_poses: list[np.ndarray],
    info: CameraInfo,
    board: Board,
    robot: str,
    camera: str,
    base_frame: str,
    flange_frame: str,
    child_frame: str | None = None,
    camera_info_path: str = "",
) -> HandEyeResult:
    """Calibrate from ``images[i]`` taken at ``flange_poses[i]`` (T_base_flange, 4x4, m).

    Returns T_flange_cam (eye-in-hand) or T_base_cam (eye-to-hand) with per-view residuals.
    ValueError: unknown setup, a non-pinhole distortion model, mismatched lengths, images not
    matching the intrinsics, fewer than MIN_VIEWS views with the board, degenerate wrist
    motion."""
    if setup not in SETUPS:
        raise ValueError(f"setup: unknown {setup!r} (known: {', '.join(SETUPS)})")
    if info.distortion_model not in PINHOLE_MODELS:
        raise ValueError(
            f"camera_info.distortion_model: {info.distortion_model!r} is not supported "
            f"(supported: {', '.join(PINHOLE_MODELS)})"
        )
    if len(images) != len(flange_poses):
        raise ValueError(
            f"flange_poses: {len(flange_poses)} given for {len(images)} images; one per image"
        )
    A_all = []
    for i, T in enumerate(flange_poses):
        T = np.asarray(T, dtype=np.float64)
        if T.shape != (4, 4) or not np.all(np.isfinite(T)):
            raise ValueError(f"flange_poses[{i}]: expected a finite 4x4 matrix")
        A_all.append(np.linalg.inv(T) if setup == "eye-in-hand" else T)
    observations = [observe(img, info, board, i) for i, img in enumerate(images)]
    obs = [o for o in observations if o is not None]
    if len(obs) < MIN_VIEWS:
        raise ValueError(
            f"views: the board was found in {len(obs)} of {len(images)} views; hand-eye "
            f"calibration needs at least {MIN_VIEWS} (better 15+) with varied wrist orientations"
        )
    A = [A_all[o.index] for o in obs]
    check_motion([np.asarray(flange_poses[o.index]) for o in obs])
    obs, _ = resolve_flips(A, obs)

    starts = closed_form_solutions(A, obs)
    scored = []
    for name, X0 in starts.items():
        Y0 = _board_from(X0, A, obs)
        scored.append((_rms(_reprojection(X0, Y0, A, obs, info)), name, X0, Y0))
    scored.sort(key=lambda s: s[0])
    _, best, X, Y = scored[0]
    X, Y = refine(X, Y, A, obs, info)

    per_view = []
    for a, o in zip(A, obs, strict=True):
        T = _predicted(X, a, Y)
        r = _reprojection(X, Y, [a], [o], info)
        per_view.append(
            ViewResidual(
                index=o.index,
                reprojection_px=_rms(r),
                rotation_deg=rotation_angle_deg(T[:3, :3].T @ o.T_cam_board[:3, :3]),
                translation_mm=float(np.linalg.norm(T[:3, 3] - o.T_cam_board[:3, 3]) * 1000),
            )
        )
    parent, board_parent = (
        (flange_frame, base_frame) if setup == "eye-in-hand" else (base_frame, flange_frame)
    )
    return HandEyeResult(
        setup=setup,
        robot=robot,
        camera=camera,
        camera_info=camera_info_path,
        parent_frame=parent,
        child_frame=child_frame or f"{camera}_optical_frame",
        translation_m=tuple(float(v) for v in X[:3, 3]),  # type: ignore[arg-type]
        quaternion_xyzw=matrix_to_quat_xyzw(X[:3, :3]),
        method=f"{best} + reprojection refinement (levenberg-marquardt)",
        views_total=len(images),
        per_view=tuple(per_view),
        board_parent_frame=board_parent,
        board_translation_m=tuple(float(v) for v in Y[:3, 3]),  # type: ignore[arg-type]
        board_quaternion_xyzw=matrix_to_quat_xyzw(Y[:3, :3]),
    )
