"""Joint zero offsets from the arm held at a known reference pose.

With the convention of robots/joint_calibration.py (canonical = sign * (raw - offset)), an arm
held still at the reference pose q_ref and read as raw samples gives
``offset = mean(raw) - sign * q_ref`` per joint. The capture must be still: a joint whose
readings spread more than ``max_spread`` is refused, naming it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from gigabrain_runtime.robots.joint_calibration import JointCalibration


def zero_offsets(
    samples: np.ndarray,
    reference: np.ndarray,
    signs: np.ndarray,
    joint_names: tuple[str, ...],
    *,
    max_spread: float = 0.005,
) -> np.ndarray:
    """samples [N, dof] raw readings at the reference pose -> offsets [dof] (driver units)."""
    s = np.asarray(samples, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] != len(joint_names):
        raise ValueError(f"samples: expected [N, {len(joint_names)}], got {s.shape}")
    if s.shape[0] < 5:
        raise ValueError(f"samples: need at least 5 joint states, got {s.shape[0]}")
    spread = s.max(axis=0) - s.min(axis=0)
    moving = np.flatnonzero(spread > max_spread)
    if moving.size:
        i = int(moving[0])
        raise ValueError(
            f"samples: {joint_names[i]} moved by {spread[i]:.4f} during the capture (limit "
            f"{max_spread}): hold the arm still at the reference pose"
        )
    return s.mean(axis=0) - np.asarray(signs, dtype=np.float64) * np.asarray(reference)


def write_joints_yaml(
    path: Path,
    robot: str,
    embodiment_joints: tuple[str, ...],
    measured: dict[str, tuple[float, int]],
) -> JointCalibration:
    """Write (or update: joints not measured now keep their entries) ``joints.yaml``.

    measured: canonical joint name -> (offset, sign). Returns the calibration as written."""
    path = Path(path)
    existing = (
        JointCalibration.load(path, embodiment_joints)
        if path.is_file()
        else JointCalibration.identity(embodiment_joints)
    )
    offsets, signs = existing.offsets.copy(), existing.signs.copy()
    for name, (offset, sign) in measured.items():
        if name not in embodiment_joints:
            raise ValueError(f"joint {name!r} is not a joint of {robot}")
        i = embodiment_joints.index(name)
        offsets[i], signs[i] = offset, sign
    cal = JointCalibration(
        joint_names=embodiment_joints, offsets=offsets, signs=signs, source=str(path)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    body = yaml.safe_load(cal.to_yaml(robot))
    header = (
        "# Joint zero offsets and signs (gigabrain-runtime calibrate joints):\n"
        "# canonical = sign * (driver - offset); applied by the robot bridges both ways.\n"
    )
    path.write_text(header + yaml.safe_dump(body, sort_keys=False))
    return cal
