"""Per-joint zero offsets and signs between a robot's driver and the runtime.

``calibration/<robot>/joints.yaml``::

    robot: piper
    joints:
      joint1: {offset: 0.0123, sign: 1}     # rad (m for a gripper)
      joint4: {offset: -0.004, sign: -1}

The canonical value (what the policy, the executor, the recorder and the training data see) is
``sign * (raw - offset)``; the inverse, applied to every command on its way to the driver, is
``raw = sign * canonical + offset``. ``offset`` is therefore the driver's reading at the
canonical zero. Joints the file does not list are identity. The robot bridges are the one place
this is applied, in both directions, so nothing downstream ever sees a driver-frame value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml


@dataclass(frozen=True, kw_only=True)
class JointCalibration:
    joint_names: tuple[str, ...]
    offsets: np.ndarray  # [dof], driver units at the canonical zero
    signs: np.ndarray  # [dof], +1 or -1
    source: str = "<identity>"

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        offsets = np.asarray(self.offsets, dtype=np.float64).reshape(-1)
        signs = np.asarray(self.signs, dtype=np.float64).reshape(-1)
        if offsets.shape != (n,) or signs.shape != (n,):
            raise ValueError(
                f"{self.source}: expected {n} offsets and signs, got {offsets.size} and "
                f"{signs.size}"
            )
        if not np.all(np.isfinite(offsets)):
            raise ValueError(f"{self.source}: offsets must be finite, got {offsets.tolist()}")
        if not np.all(np.isin(signs, (-1.0, 1.0))):
            raise ValueError(f"{self.source}: signs must be +1 or -1, got {signs.tolist()}")
        object.__setattr__(self, "offsets", offsets)
        object.__setattr__(self, "signs", signs)

    @classmethod
    def identity(cls, joint_names: tuple[str, ...]) -> JointCalibration:
        n = len(joint_names)
        return cls(joint_names=tuple(joint_names), offsets=np.zeros(n), signs=np.ones(n))

    @property
    def is_identity(self) -> bool:
        return bool(np.all(self.offsets == 0.0) and np.all(self.signs == 1.0))

    @classmethod
    def from_dict(
        cls, data: Any, joint_names: tuple[str, ...], *, source: str = "<dict>"
    ) -> JointCalibration:
        """Validate a parsed joints.yaml against the joints the bridge drives.

        Raises ValueError naming the file and the field for unknown joints, unknown keys, a sign
        other than +-1, or a non-finite offset.
        """
        if not isinstance(data, dict) or not isinstance(data.get("joints"), dict):
            raise ValueError(f"{source}: expected a mapping with a 'joints' mapping")
        unknown_top = set(data) - {"robot", "joints", "description"}
        if unknown_top:
            raise ValueError(f"{source}: unknown fields {sorted(unknown_top)}")
        index = {name: i for i, name in enumerate(joint_names)}
        offsets = np.zeros(len(joint_names))
        signs = np.ones(len(joint_names))
        for name, entry in data["joints"].items():
            if name not in index:
                raise ValueError(
                    f"{source}: joints.{name}: not a joint of this robot (known: "
                    f"{list(joint_names)})"
                )
            if not isinstance(entry, dict):
                raise ValueError(f"{source}: joints.{name}: expected {{offset, sign}}")
            bad = set(entry) - {"offset", "sign"}
            if bad:
                raise ValueError(f"{source}: joints.{name}: unknown fields {sorted(bad)}")
            offset = entry.get("offset", 0.0)
            sign = entry.get("sign", 1)
            if not isinstance(offset, (int, float)) or not math.isfinite(offset):
                raise ValueError(f"{source}: joints.{name}.offset: must be finite, got {offset!r}")
            if sign not in (1, -1):
                raise ValueError(f"{source}: joints.{name}.sign: must be 1 or -1, got {sign!r}")
            offsets[index[name]] = float(offset)
            signs[index[name]] = float(sign)
        return cls(joint_names=tuple(joint_names), offsets=offsets, signs=signs, source=source)

    @classmethod
    def load(cls, path: str | Path | None, joint_names: tuple[str, ...]) -> JointCalibration:
        """The file at ``path``, or identity when ``path`` is empty/None."""
        if not path:
            return cls.identity(joint_names)
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"joints_calibration: no such file {str(path)!r}")
        return cls.from_dict(yaml.safe_load(path.read_text()), joint_names, source=str(path))

    def to_canonical(self, raw: np.ndarray) -> np.ndarray:
        """Driver-frame positions [dof] -> canonical positions [dof]."""
        return self.signs * (np.asarray(raw, dtype=np.float64) - self.offsets)

    def to_robot(self, canonical: np.ndarray) -> np.ndarray:
        """Canonical positions [dof] -> driver-frame positions [dof]."""
        return self.signs * np.asarray(canonical, dtype=np.float64) + self.offsets

    def to_yaml(self, robot: str) -> str:
        joints = {
            n: {"offset": float(o), "sign": int(s)}
            for n, o, s in zip(self.joint_names, self.offsets, self.signs, strict=True)
        }
        return yaml.safe_dump({"robot": robot, "joints": joints}, sort_keys=False)
