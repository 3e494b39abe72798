"""Quantile normalisation statistics from a dataset, in the ``norm_stats.json`` format the
official pipeline (openpi's ``compute_norm_stats``, GigaBrain-0) writes and this runtime reads
(``inference/normalization.py``): per dimension mean, std, q01, q99 of the state and the action,
padded to the model's state dimension with zeros."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

NAME = "norm_stats.json"


def _entry(x: np.ndarray, width: int) -> dict[str, list[float]]:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] > width:
        raise ValueError(f"norm stats: expected [frames, <= {width}] values, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("norm stats: the data contains NaN or inf")
    out = {}
    for name, values in (
        ("mean", x.mean(axis=0)),
        ("std", x.std(axis=0)),
        ("q01", np.quantile(x, 0.01, axis=0)),
        ("q99", np.quantile(x, 0.99, axis=0)),
    ):
        padded = np.zeros(width)
        padded[: x.shape[1]] = values
        out[name] = padded.tolist()
    return out


def compute_norm_stats(states: np.ndarray, actions: np.ndarray, width: int) -> dict[str, Any]:
    return {
        "norm_stats": {
            "observation.state": _entry(states, width),
            "action": _entry(actions, width),
        }
    }


def write_norm_stats(stats: dict[str, Any], directory: Path) -> Path:
    path = Path(directory) / NAME
    path.write_text(json.dumps(stats, indent=2) + "\n")
    return path
