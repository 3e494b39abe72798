"""Camera intrinsics in the ROS camera_info YAML layout (camera_calibration_parsers).

The same file a ``camera_calibration`` run writes and a ROS camera driver loads::

    image_width, image_height, camera_name,
    camera_matrix {rows 3, cols 3, data}, distortion_model,
    distortion_coefficients {rows 1, cols N, data},
    rectification_matrix {rows 3, cols 3, data}, projection_matrix {rows 3, cols 4, data}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

# what cv2's pinhole model takes (0: no distortion); plumb_bob has 5, rational_polynomial 8
DISTORTION_LENGTHS = (0, 4, 5, 8, 12, 14)
UNDISTORTABLE_MODELS = ("plumb_bob", "rational_polynomial")


@dataclass(frozen=True, kw_only=True)
class CameraInfo:
    camera_name: str
    width: int
    height: int
    K: np.ndarray  # 3x3
    D: np.ndarray  # plumb_bob: k1 k2 t1 t2 k3
    R: np.ndarray  # 3x3 rectification (identity for a monocular camera)
    P: np.ndarray  # 3x4 projection
    distortion_model: str = "plumb_bob"

    def __post_init__(self) -> None:
        for name, shape in (("K", (3, 3)), ("R", (3, 3)), ("P", (3, 4))):
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.shape != shape:
                raise ValueError(f"camera_info.{name}: expected shape {shape}, got {value.shape}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"camera_info.{name}: contains NaN or inf")
            object.__setattr__(self, name, value)
        object.__setattr__(self, "D", np.asarray(self.D, dtype=np.float64).reshape(-1))
        if self.D.size not in DISTORTION_LENGTHS:
            raise ValueError(
                f"camera_info.D: {self.D.size} coefficients (expected one of "
                f"{', '.join(map(str, DISTORTION_LENGTHS))})"
            )
        if not np.all(np.isfinite(self.D)):
            raise ValueError("camera_info.D: contains NaN or inf")
        if self.width <= 0 or self.height <= 0:
            raise ValueError(
                f"camera_info.width/height: must be > 0, got {self.width}x{self.height}"
            )
        if self.K[0, 0] <= 0 or self.K[1, 1] <= 0:
            raise ValueError(
                f"camera_info.K: focal lengths must be > 0, got {self.K[0, 0]}, {self.K[1, 1]}"
            )

    @classmethod
    def from_intrinsics(
        cls, name: str, width: int, height: int, K: np.ndarray, D: np.ndarray
    ) -> CameraInfo:
        P = np.zeros((3, 4))
        P[:3, :3] = K
        return cls(camera_name=name, width=width, height=height, K=K, D=D, R=np.eye(3), P=P)

    def to_yaml(self) -> str:
        def mat(m: np.ndarray) -> dict[str, object]:
            m2 = np.atleast_2d(m)
            return {
                "rows": int(m2.shape[0]),
                "cols": int(m2.shape[1]),
                "data": [float(x) for x in m2.reshape(-1)],
            }

        return yaml.safe_dump(
            {
                "image_width": int(self.width),
                "image_height": int(self.height),
                "camera_name": self.camera_name,
                "camera_matrix": mat(self.K),
                "distortion_model": self.distortion_model,
                "distortion_coefficients": mat(self.D.reshape(1, -1)),
                "rectification_matrix": mat(self.R),
                "projection_matrix": mat(self.P),
            },
            sort_keys=False,
        )

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_yaml())
        return path

    @classmethod
    def read(cls, path: str | Path) -> CameraInfo:
        """Load a camera_info YAML. Raises ValueError naming the file and the field for anything
        missing, malformed or invalid."""
        path = Path(path)
        try:
            d = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"{path}: cannot read camera_info ({exc})") from None
        if not isinstance(d, dict):
            raise ValueError(f"{path}: not a camera_info mapping (got {type(d).__name__})")

        def field(key: str) -> object:
            if key not in d:
                raise ValueError(f"{path}: missing {key}")
            return d[key]

        def integer(key: str) -> int:
            value = field(key)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{path}: {key}: expected an integer, got {value!r}")
            return value

        def mat(key: str) -> np.ndarray:
            m = field(key)
            try:
                return np.asarray(m["data"], dtype=np.float64).reshape(m["rows"], m["cols"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(
                    f"{path}: {key}: expected {{rows, cols, data}} with rows x cols numbers ({exc})"
                ) from None

        fields = {
            "camera_name": str(d.get("camera_name", path.stem)),
            "width": integer("image_width"),
            "height": integer("image_height"),
            "K": mat("camera_matrix"),
            "D": mat("distortion_coefficients"),
            "R": mat("rectification_matrix"),
            "P": mat("projection_matrix"),
            "distortion_model": str(d.get("distortion_model", "plumb_bob")),
        }
        try:
            return cls(**fields)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None

    def undistorter(self):  # noqa: ANN201
        """A function image -> undistorted image (remap tables precomputed here, once, for the
        calibration's image size; the function raises ValueError for a frame of another size).
        Raises ValueError for a distortion model the pinhole remap cannot undo."""
        import cv2

        if self.distortion_model not in UNDISTORTABLE_MODELS:
            raise ValueError(
                f"camera_info.distortion_model: cannot undistort {self.distortion_model!r} "
                f"(supported: {', '.join(UNDISTORTABLE_MODELS)})"
            )
        map1, map2 = cv2.initUndistortRectifyMap(
            self.K, self.D, self.R, self.P[:3, :3], (self.width, self.height), cv2.CV_16SC2
        )

        def undistort(img: np.ndarray) -> np.ndarray:
            if img.shape[:2] != (self.height, self.width):
                raise ValueError(
                    f"image: {img.shape[1]}x{img.shape[0]} does not match the "
                    f"calibration's {self.width}x{self.height}"
                )
            return cv2.remap(img, map1, map2, cv2.INTER_LINEAR)

        return undistort


def load_calibrations(directory: str | Path, cameras: tuple[str, ...]) -> dict[str, Path]:
    """The calibration file ``<directory>/<cam>.yaml`` of each camera that has one (camera ->
    path, in ``cameras`` order). Raises ValueError when ``directory`` is not a directory or
    holds a file for none of the cameras (most likely the wrong folder)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"calibration_dir: {str(directory)!r} is not a directory")
    found = {c: directory / f"{c}.yaml" for c in cameras if (directory / f"{c}.yaml").is_file()}
    if not found:
        raise ValueError(
            f"calibration_dir: {directory} has none of {', '.join(f'{c}.yaml' for c in cameras)}"
        )
    return found
