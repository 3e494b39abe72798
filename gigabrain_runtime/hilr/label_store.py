"""An episode's advantage labels on disk: ``advantage.npz`` next to its bag (``bag label
--advantage`` writes it, ``bag export`` reads it): the frame rate they were made at, value,
n-step TD advantage and indicator I per frame, and the training run whose world model valued
the frames."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

LABELS_FILE = "advantage.npz"


@dataclass(frozen=True)
class EpisodeLabels:
    fps: int
    value: np.ndarray  # float32 [T]
    advantage: np.ndarray  # float32 [T]
    indicator: np.ndarray  # int8 [T]
    source: str  # the training run whose world model valued the frames

    def write(self, episode: Path) -> Path:
        path = Path(episode) / LABELS_FILE
        np.savez(
            path,
            fps=np.int64(self.fps),
            value=self.value.astype(np.float32),
            advantage=self.advantage.astype(np.float32),
            indicator=self.indicator.astype(np.int8),
            source=np.array(self.source),
        )
        return path


def read_labels(episode: Path) -> EpisodeLabels | None:
    """The episode's advantage labels, or None where it has none."""
    path = Path(episode) / LABELS_FILE
    if not path.is_file():
        return None
    with np.load(path) as z:
        return EpisodeLabels(
            fps=int(z["fps"]),
            value=z["value"],
            advantage=z["advantage"],
            indicator=z["indicator"],
            source=str(z["source"]),
        )
