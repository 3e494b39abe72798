"""Rotation and transform conversions: round trips and rotations whose result is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gigabrain_runtime.geometry import (
    look_at_xyaxes,
    matrix_to_quat_xyzw,
    matrix_to_rotvec,
    mean_rotation,
    pose,
    quat_xyzw_to_matrix,
    rotation_angle_deg,
    rotation_axis,
    rotvec_to_matrix,
    rpy_to_matrix,
    rpy_to_quat_wxyz,
    xyaxes_to_matrix,
)

RNG = np.random.default_rng(7)
ROTVECS = [
    *(RNG.normal(size=3) for _ in range(20)),
    np.array([1e-5, -2e-5, 0.0]),  # tiny: the small-angle branch
    np.array([0.0, 0.0, math.pi]),  # half turns: the axis from R + I
    np.array([1.0, 1.0, 0.0]) / math.sqrt(2) * math.pi,
]


def is_rotation(R):
    return np.allclose(R.T @ R, np.eye(3), atol=1e-12) and np.isclose(np.linalg.det(R), 1.0)


@pytest.mark.parametrize("w", ROTVECS)
def test_rotvec_round_trip(w):
    angle = np.linalg.norm(w) % (2 * math.pi)
    R = rotvec_to_matrix(w)
    assert is_rotation(R)
    np.testing.assert_allclose(rotation_angle_deg(R), math.degrees(angle), atol=1e-6)
    np.testing.assert_allclose(rotvec_to_matrix(matrix_to_rotvec(R)), R, atol=1e-9)


@pytest.mark.parametrize("w", ROTVECS)
def test_quaternion_round_trip_keeps_w_non_negative(w):
    R = rotvec_to_matrix(w)
    q = matrix_to_quat_xyzw(R)
    assert math.isclose(np.linalg.norm(q), 1.0) and q[3] >= 0
    np.testing.assert_allclose(quat_xyzw_to_matrix(q), R, atol=1e-12)
    np.testing.assert_allclose(quat_xyzw_to_matrix(np.multiply(q, 3.0)), R, atol=1e-12)


def test_known_rotations():
    Rz90 = rotvec_to_matrix([0, 0, math.pi / 2])
    np.testing.assert_allclose(Rz90 @ [1, 0, 0], [0, 1, 0], atol=1e-15)
    np.testing.assert_allclose(
        matrix_to_quat_xyzw(Rz90), [0, 0, math.sqrt(0.5), math.sqrt(0.5)], atol=1e-15
    )
    np.testing.assert_allclose(rotation_axis(Rz90), [0, 0, 1])
    np.testing.assert_allclose(quat_xyzw_to_matrix([1, 0, 0, 0]), np.diag([1.0, -1.0, -1.0]))
    T = pose(Rz90, [1, 2, 3])
    np.testing.assert_allclose(T @ [1, 0, 0, 1], [1, 3, 3, 1], atol=1e-15)
    np.testing.assert_allclose(T[3], [0, 0, 0, 1])


def test_rpy_is_fixed_axes_x_then_y_then_z():
    r, p, y = 0.3, -0.7, 1.9
    expected = (
        rotvec_to_matrix([0, 0, y]) @ rotvec_to_matrix([0, p, 0]) @ rotvec_to_matrix([r, 0, 0])
    )
    np.testing.assert_allclose(rpy_to_matrix([r, p, y]), expected, atol=1e-14)
    w, x, yq, z = rpy_to_quat_wxyz([r, p, y])
    np.testing.assert_allclose(quat_xyzw_to_matrix([x, yq, z, w]), expected, atol=1e-14)
    np.testing.assert_allclose(rpy_to_quat_wxyz([0, 0, 0]), [1, 0, 0, 0])


def test_xyaxes_are_orthonormalised_and_look_at_points_minus_z_at_the_target():
    R = xyaxes_to_matrix([2, 0, 0, 1, 3, 0])  # y not orthogonal, not unit
    np.testing.assert_allclose(R, np.eye(3), atol=1e-15)
    pos, target = [0.75, 0.0, 0.65], [0.25, 0.1, 0.0]
    R = xyaxes_to_matrix(look_at_xyaxes(pos, target))
    assert is_rotation(R)
    view = np.subtract(target, pos) / np.linalg.norm(np.subtract(target, pos))
    np.testing.assert_allclose(-R[:, 2], view, atol=1e-12)
    assert abs(R[2, 0]) < 1e-12  # x stays level
    with pytest.raises(ValueError, match="xyaxes: x and y must be non-zero and not parallel"):
        xyaxes_to_matrix([1, 0, 0, 2, 0, 0])


def test_mean_rotation_of_symmetric_perturbations_is_the_centre():
    R0 = rotvec_to_matrix([0.2, -0.4, 1.0])
    d = rotvec_to_matrix([0.05, 0.0, 0.0])
    mean = mean_rotation([R0 @ d, R0 @ d.T])
    np.testing.assert_allclose(mean, R0, atol=1e-12)
