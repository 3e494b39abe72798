"""The backend seam: ``infer(observation) -> ActionChunk`` and the world model's prediction.

One class per backend (torch, onnxruntime, tensorrt) implements this protocol; everything
around it (validation, normalisation, the latency timer, the ROS node) is shared and never asks
which backend it holds.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from gigabrain_runtime.inference.manifest import EngineManifest
from gigabrain_runtime.inference.types import (
    ActionChunk,
    ActionGuide,
    Mode,
    Observation,
    WorldPrediction,
)


@runtime_checkable
class Backend(Protocol):
    name: str
    manifest: EngineManifest

    def infer(
        self,
        observation: Observation,
        *,
        mode: Mode | str = Mode.EFFICIENT,
        noise: np.ndarray | None = None,
        trace: bool = False,
        guide: ActionGuide | None = None,
    ) -> ActionChunk:
        """One action chunk. ``mode`` standard needs ``observation.world``. ``noise`` [H, A]
        replaces the backend's own draw (parity tests). ``trace`` keeps every intermediate in
        ``chunk.trace``. ``guide``: real-time chunking's frozen prefix and soft mask (the
        previous chunk) for the sampler. Raises ValueError naming the field for any bad input."""
        ...

    def predict_world(
        self,
        observation: Observation,
        actions: np.ndarray,
        *,
        noise: np.ndarray | None = None,
    ) -> WorldPrediction:
        """The world model's future latent state and value after executing ``actions``
        ([H, dof], embodiment units)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class PhaseTimed(Protocol):
    """A backend that can time one chunk phase by phase (the eager torch backend; compiled
    engines run as one graph and cannot): ``bench --phases``."""

    def phase_times(
        self, observation: Observation, *, mode: Mode | str = Mode.EFFICIENT
    ) -> dict[str, float]:
        """ms per phase: "embed", "prefix", "flow 0" ... (the device synchronised at each)."""
        ...
