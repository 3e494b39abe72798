"""joints.yaml: offsets and signs applied one way in, the inverse way out."""

from __future__ import annotations

import numpy as np
import pytest

from gigabrain_runtime.robots.embodiment import get_embodiment
from gigabrain_runtime.robots.joint_calibration import JointCalibration

PIPER = get_embodiment("piper")


def test_round_trip_and_convention(tmp_path):
    path = tmp_path / "joints.yaml"
    path.write_text(
        "robot: piper\njoints:\n  joint1: {offset: 0.1, sign: -1}\n  joint4: {offset: -0.02}\n"
    )
    cal = JointCalibration.load(path, PIPER.joint_names)
    raw = np.array([0.1, 0.5, -0.5, -0.02, 0.0, 0.0, 0.04])
    canonical = cal.to_canonical(raw)
    # the driver's reading at the canonical zero is the offset
    assert canonical[0] == 0.0 and canonical[3] == 0.0
    np.testing.assert_allclose(canonical[[1, 2, 4, 5, 6]], raw[[1, 2, 4, 5, 6]])
    assert cal.to_canonical(np.r_[0.3, raw[1:]])[0] == pytest.approx(-0.2)  # sign flips
    np.testing.assert_allclose(cal.to_robot(cal.to_canonical(raw)), raw)
    again = JointCalibration.from_dict(
        __import__("yaml").safe_load(cal.to_yaml("piper")), PIPER.joint_names
    )
    np.testing.assert_array_equal(again.offsets, cal.offsets)
    np.testing.assert_array_equal(again.signs, cal.signs)


def test_empty_path_is_identity():
    cal = JointCalibration.load("", PIPER.joint_names)
    assert cal.is_identity
    q = np.linspace(0, 1, 7)
    np.testing.assert_array_equal(cal.to_robot(q), q)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("joints:\n  joint9: {offset: 0.1}\n", "joints.joint9: not a joint"),
        ("joints:\n  joint1: {offset: 0.1, sign: 2}\n", "joints.joint1.sign"),
        ("joints:\n  joint1: {offset: .nan}\n", "joints.joint1.offset"),
        ("joints:\n  joint1: {zero: 0.1}\n", r"unknown fields \['zero'\]"),
        ("offsets: [1, 2]\n", "expected a mapping with a 'joints'"),
    ],
)
def test_bad_files_are_refused_naming_the_field(tmp_path, text, match):
    path = tmp_path / "joints.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        JointCalibration.load(path, PIPER.joint_names)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ValueError, match="joints_calibration: no such file"):
        JointCalibration.load(tmp_path / "nope.yaml", PIPER.joint_names)
