"""The simulated task with ground truth: where an episode starts, and whether it succeeded.

A scene's ``task:`` section (``sim/data/<robot>.yaml``) is data: the instruction, the object to
pick and the one to place it in, the workspace region each is drawn from, the arm's start-pose
jitter around home, the success rule and the time limit. :func:`sample_start` turns a seed into
an episode's start (the same seed, the same start, on any machine); :class:`SuccessDetector`
decides success from the simulator's state alone: the picked object resting inside the place
object (its centre within ``radius`` of the place object's axis, below ``max_height`` above it,
slower than ``max_speed``) with the gripper open (at least ``gripper_open``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# how long success must hold (the cube at rest in the bowl) before an episode ends a success
SETTLE_S = 0.5


@dataclass(frozen=True, kw_only=True)
class SuccessRule:
    radius: float  # m, picked object's centre from the place object's axis (horizontal)
    max_height: float  # m, picked object's centre above the place object's origin
    max_speed: float  # m/s, picked object's speed: resting
    gripper_open: float  # gripper opening at least this: released

    def __post_init__(self) -> None:
        for name in ("radius", "max_height", "max_speed", "gripper_open"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"task.success.{name}: must be a number > 0, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class TaskSpec:
    instruction: str
    pick: str
    place: str
    regions: dict[str, tuple[tuple[float, float], tuple[float, float]]]  # object -> (x, y) ranges
    min_separation: float  # m between the objects' centres
    start_jitter: float  # rad, uniform per arm joint around home
    gripper: str  # the gripper joint (starts at home, not jittered)
    success: SuccessRule
    time_limit_s: float

    def __post_init__(self) -> None:
        if not self.instruction:
            raise ValueError("task.instruction: must not be empty")
        for obj in (self.pick, self.place):
            if obj not in self.regions:
                raise ValueError(f"task.regions: no region for {obj!r}")
        for obj, ((x0, x1), (y0, y1)) in self.regions.items():
            if not (x0 <= x1 and y0 <= y1):
                raise ValueError(f"task.regions.{obj}: expected [[x0, x1], [y0, y1]], low first")
        if self.min_separation < 0 or self.start_jitter < 0:
            raise ValueError("task: min_separation and start_jitter must be >= 0")
        if not self.time_limit_s > 0:
            raise ValueError(f"task.time_limit_s: must be > 0, got {self.time_limit_s}")

    @classmethod
    def from_scene(cls, scene: dict[str, Any]) -> TaskSpec:
        raw = scene.get("task")
        name = scene.get("name", "?")
        if not isinstance(raw, dict):
            raise ValueError(f"scene {name}: no task defined (a 'task:' section)")
        try:
            return cls(
                instruction=str(raw["instruction"]),
                pick=str(raw["pick"]),
                place=str(raw["place"]),
                regions={
                    str(k): (tuple(map(float, v[0])), tuple(map(float, v[1])))
                    for k, v in raw["regions"].items()
                },
                min_separation=float(raw.get("min_separation", 0.0)),
                start_jitter=float(raw.get("start_jitter", 0.0)),
                gripper=str(raw["gripper"]),
                success=SuccessRule(**raw["success"]),
                time_limit_s=float(raw["time_limit_s"]),
            )
        except KeyError as exc:
            raise ValueError(f"scene {name}: task.{exc.args[0]} missing") from None
        except TypeError as exc:
            raise ValueError(f"scene {name}: task: {exc}") from None


@dataclass(frozen=True)
class EpisodeStart:
    """Where one episode starts: object centres (x, y) and the arm's joints."""

    seed: int
    objects: dict[str, tuple[float, float]]
    arm: np.ndarray  # embodiment order


def sample_start(
    spec: TaskSpec,
    seed: int,
    home: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    gripper_index: int,
) -> EpisodeStart:
    """The start of episode ``seed``: objects uniform over their regions at least
    ``min_separation`` apart (redrawn until they are), the arm at home plus uniform jitter on
    every joint but the gripper, inside the limits."""
    rng = np.random.default_rng(seed)
    for _ in range(1000):
        objects = {
            name: (float(rng.uniform(*xr)), float(rng.uniform(*yr)))
            for name, (xr, yr) in spec.regions.items()
        }
        if np.hypot(*np.subtract(objects[spec.pick], objects[spec.place])) >= spec.min_separation:
            break
    else:
        raise ValueError("task.regions: no two places min_separation apart in 1000 draws")
    jitter = rng.uniform(-spec.start_jitter, spec.start_jitter, len(home))
    jitter[gripper_index] = 0.0
    arm = np.clip(np.asarray(home, dtype=np.float64) + jitter, lower, upper)
    return EpisodeStart(seed=seed, objects=objects, arm=arm)


@dataclass(frozen=True)
class Verdict:
    success: bool
    reason: str  # what is missing, or "cube in bowl"


class SuccessDetector:
    """Success from positions alone: ``check(pick_pos, pick_vel, place_pos, gripper)``."""

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec

    def check(
        self, pick: np.ndarray, pick_velocity: np.ndarray, place: np.ndarray, gripper: float
    ) -> Verdict:
        rule, s = self.spec.success, self.spec
        values = np.concatenate([np.ravel(pick), np.ravel(pick_velocity), np.ravel(place)])
        if not (np.all(np.isfinite(values)) and np.isfinite(gripper)):
            # every comparison below is False for NaN: without this a diverged state "succeeds"
            return Verdict(False, "simulator state not finite")
        off = float(np.hypot(pick[0] - place[0], pick[1] - place[1]))
        if off > rule.radius:
            return Verdict(False, f"{s.pick} {off * 100:.1f} cm from the {s.place}'s centre")
        if pick[2] - place[2] > rule.max_height:
            return Verdict(False, f"{s.pick} above the {s.place}, not in it")
        speed = float(np.linalg.norm(pick_velocity))
        if speed > rule.max_speed:
            return Verdict(False, f"{s.pick} still moving ({speed:.3f} m/s)")
        if gripper < rule.gripper_open:
            return Verdict(False, "gripper closed")
        return Verdict(True, f"{s.pick} in {s.place}")
