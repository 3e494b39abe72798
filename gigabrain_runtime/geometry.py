"""Rotations and rigid transforms: the one place for quaternion, rotation-vector, roll-pitch-yaw
and camera-axes conversions (calibration, kinematics and the simulator use these).

Conventions: rotation matrices are 3x3 and act on column vectors; a pose ``T_a_b`` is a 4x4
homogeneous matrix taking points in frame ``b`` to frame ``a`` (metres). Quaternions are named
by their component order: ``xyzw`` (ROS, tf2) or ``wxyz`` (MuJoCo). Angles are radians unless
the name says ``_deg``. Pure numpy.
"""

from __future__ import annotations

import math

import numpy as np


def pose(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The 4x4 transform with rotation ``R`` (3x3) and translation ``t`` (3,)."""
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = np.asarray(t, dtype=np.float64).reshape(3)
    return T


def rotvec_to_matrix(w: np.ndarray) -> np.ndarray:
    """Rotation vector (axis times angle, rad) -> rotation matrix (Rodrigues' formula)."""
    w = np.asarray(w, dtype=np.float64)
    theta = float(np.linalg.norm(w))
    if theta < 1e-12:
        return np.eye(3)
    k = w / theta
    Kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(theta) * Kx + (1 - math.cos(theta)) * Kx @ Kx


def matrix_to_rotvec(R: np.ndarray) -> np.ndarray:
    """Rotation matrix -> rotation vector with angle in [0, pi]."""
    angle = math.radians(rotation_angle_deg(R))
    if angle < 1e-9:
        return np.zeros(3)
    if angle < 1e-3:  # sin(angle) ~ angle: read the skew part directly
        return np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]]) / 2
    return rotation_axis(R) * angle


def rotation_angle_deg(R: np.ndarray) -> float:
    """The angle of the rotation ``R`` in degrees, in [0, 180]."""
    return math.degrees(math.acos(float(np.clip((np.trace(R) - 1) / 2, -1.0, 1.0))))


def rotation_axis(R: np.ndarray) -> np.ndarray:
    """Unit rotation axis (sign arbitrary for 180 degrees)."""
    v = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    n = np.linalg.norm(v)
    if n > 1e-6:
        return v / n
    # near 180 degrees: the axis is the dominant column of R + I
    M = R + np.eye(3)
    col = M[:, int(np.argmax(np.linalg.norm(M, axis=0)))]
    return col / np.linalg.norm(col)


def mean_rotation(Rs: list[np.ndarray]) -> np.ndarray:
    """Chordal L2 mean of rotations: the rotation nearest to their sum."""
    U, _, Vt = np.linalg.svd(np.sum(Rs, axis=0))
    R = U @ Vt
    if np.linalg.det(R) < 0:
        R = U @ np.diag([1, 1, -1]) @ Vt
    return R


def matrix_to_quat_xyzw(R: np.ndarray) -> tuple[float, float, float, float]:
    """Rotation matrix -> unit quaternion (x, y, z, w) with w >= 0."""
    R = np.asarray(R, dtype=np.float64)
    tr = np.trace(R)
    if tr > 0:
        s = 2 * math.sqrt(tr + 1)
        q = [(R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s, s / 4]
    else:
        i = int(np.argmax(np.diag(R)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2 * math.sqrt(1 + R[i, i] - R[j, j] - R[k, k])
        q = [0.0, 0.0, 0.0, (R[k, j] - R[j, k]) / s]
        q[i] = s / 4
        q[j] = (R[j, i] + R[i, j]) / s
        q[k] = (R[k, i] + R[i, k]) / s
    q = np.asarray(q) / np.linalg.norm(q)
    if q[3] < 0:
        q = -q
    return tuple(float(v) for v in q)  # type: ignore[return-value]


def quat_xyzw_to_matrix(q: tuple[float, ...] | np.ndarray) -> np.ndarray:
    """Quaternion (x, y, z, w), normalised here -> rotation matrix."""
    x, y, z, w = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def rpy_to_quat_wxyz(rpy: list[float] | np.ndarray) -> np.ndarray:
    """URDF roll-pitch-yaw (fixed axes X, then Y, then Z) -> quaternion (w, x, y, z)."""
    r, p, y = (float(v) / 2 for v in rpy)
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    return np.array(
        [
            cr * cp * cy + sr * sp * sy,
            sr * cp * cy - cr * sp * sy,
            cr * sp * cy + sr * cp * sy,
            cr * cp * sy - sr * sp * cy,
        ]
    )


def rpy_to_matrix(rpy: list[float] | np.ndarray) -> np.ndarray:
    """URDF roll-pitch-yaw -> rotation matrix ``Rz(yaw) @ Ry(pitch) @ Rx(roll)``."""
    return quat_xyzw_to_matrix(np.roll(rpy_to_quat_wxyz(rpy), -1))


def xyaxes_to_matrix(xyaxes: list[float] | np.ndarray) -> np.ndarray:
    """A frame given by its x and y axes (6 numbers, MuJoCo's ``xyaxes``; need not be unit or
    orthogonal) -> rotation matrix with columns x, y, z: x normalised, y made orthogonal to x,
    z = x cross y. ValueError for parallel or zero axes."""
    a = np.asarray(xyaxes, dtype=np.float64).reshape(2, 3)
    x = a[0] / np.linalg.norm(a[0])
    y = a[1] - (x @ a[1]) * x
    n = np.linalg.norm(y)
    if not np.isfinite(n) or n < 1e-9:
        raise ValueError(f"xyaxes: x and y must be non-zero and not parallel, got {a.tolist()}")
    y = y / n
    return np.column_stack([x, y, np.cross(x, y)])


def look_at_xyaxes(pos: list[float], target: list[float]) -> list[float]:
    """The x and y axes of a MuJoCo camera (x right, y up; it looks along -z) at ``pos``
    looking at ``target``, level with the frame's z axis as up."""
    f = np.asarray(target, float) - np.asarray(pos, float)
    f /= np.linalg.norm(f)
    up = np.array([0.0, 0.0, 1.0])
    x = np.cross(f, up)
    if np.linalg.norm(x) < 1e-6:
        x = np.array([1.0, 0.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(-f, x)
    return [*x.tolist(), *y.tolist()]
