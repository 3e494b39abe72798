"""Test helpers shared across test modules."""

from __future__ import annotations

import numpy as np


def make_observation(embodiment: str = "piper", seed: int = 0, size: int = 224, **overrides):
    from gigabrain_runtime.inference.types import Observation
    from gigabrain_runtime.robots.embodiment import get_embodiment

    emb = get_embodiment(embodiment)
    rng = np.random.default_rng(seed)
    fields = {
        "images": {c: rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for c in emb.cameras},
        "state": (emb.lower + emb.upper) / 2,
        "instruction": "pick up the red cube",
        "embodiment": embodiment,
    }
    fields.update(overrides)
    return Observation(**fields)
