"""What goes into a backend and what comes out (NumPy only)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

import numpy as np


class Mode(str, Enum):
    """Efficient: world model bypassed. Standard: conditioned on the world model's prediction."""

    EFFICIENT = "efficient"
    STANDARD = "standard"

    @classmethod
    def parse(cls, value: str | Mode) -> Mode:
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"mode: unknown mode {value!r} (known: {', '.join(MODES)})") from None


MODES = tuple(m.value for m in Mode)  # the names a command line, a console or a config takes


@dataclass(frozen=True, kw_only=True)
class WorldPrediction:
    """The world model's predicted future: visual tokens z, value v, proprioception p."""

    z_tokens: np.ndarray  # float32 [N_z, D_z]
    value: float
    proprio: np.ndarray  # float64 [dof], embodiment units
    inference_ms: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Observation:
    """One synchronised observation.

    images: camera name -> uint8 [S, S, 3] RGB at the engine's image size (the ROS node resizes);
    state: joint positions [dof] in the embodiment's joint order and units; world: required in
    standard mode.
    """

    images: Mapping[str, np.ndarray]
    state: np.ndarray
    instruction: str
    embodiment: str
    world: WorldPrediction | None = None


@dataclass(frozen=True)
class ActionGuide:
    """Real-time chunking's guide for the next chunk (arXiv 2506.07339).

    actions: [H, dof] robot units, the previous chunk on the NEW chunk's time grid (point k due
    k + 1 control periods after the new observation), its last point held past its end;
    weights: [H] in [0, 1] - 1 where the point will have executed before the new chunk can
    take over (the inference delay), falling to 0 where the previous chunk ends."""

    actions: np.ndarray
    weights: np.ndarray


@dataclass(frozen=True, kw_only=True)
class PolicyTrace:
    """Every intermediate of one chunk, named as GigaBrain-0's reference fixtures name them
    (``predict --intermediates DIR`` writes them), for debugging a checkpoint offline."""

    images: np.ndarray  # uint8 [slots, S, S, 3]: what each camera slot saw
    image_mask: np.ndarray  # bool [slots]
    state_normalized: np.ndarray  # float32 [n]: the model dimensions, normalised
    prompt: str
    token_ids: np.ndarray  # int64 [max_text_tokens]
    attention_mask: np.ndarray  # bool [max_text_tokens]
    actions_normalized: np.ndarray  # float32 [H, A]: the model's raw output
    actions_unnormalized: np.ndarray  # float32 [H, n]: before delta -> absolute
    final_actions: np.ndarray  # float32 [H, n]: absolute targets in the model's dimensions


@dataclass(frozen=True, kw_only=True)
class ActionChunk:
    """H future joint targets in embodiment units, one row per control step."""

    actions: np.ndarray  # float64 [H, dof]
    joint_names: tuple[str, ...]
    # float32 [points, 2]: (u, v) in [0, 1] over the FIRST camera's letterboxed model-input
    # image (perception/overlay.py maps them back onto the camera image)
    trajectory: np.ndarray
    mode: Mode
    value: float | None = None
    inference_ms: float = 0.0
    prompt: str = ""  # the text the model was given
    num_tokens: int = 0  # its length in tokens, special tokens included
    trace: PolicyTrace | None = None  # with infer(..., trace=True)
    extras: dict[str, float] = field(default_factory=dict)
