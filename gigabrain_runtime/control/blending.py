"""How the next chunk takes over from the running one: the ``execution`` modes.

* ``sync``: GigaBrain-0's own client: execute the first ``execute_steps`` points of a chunk,
  come to rest, and only then observe and infer again (the robot waits for the model).
* ``crossfade``: when a new chunk arrives at time t_a, the command moves from the old chunk's
  plan to the new chunk's plan with a smoothstep weight over ``blend_s`` seconds. Continuous in
  position and velocity at both ends of the window.
* ``temporal_ensemble``: every chunk that still covers time t votes, weighted by
  exp(-k * age_rank) with the newest chunk at rank 0 (ACT's scheme; larger k trusts the newest
  chunk more). Known to oscillate with long delays (arXiv 2506.07339).
* ``rtc``: real-time chunking (arXiv 2506.07339): the vla computes the next chunk guided by
  the running one (the points that execute while it infers frozen, the overlap inpainted),
  so the executor switches to it on arrival without blending.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gigabrain_runtime.control.chunk import TimedChunk

EXECUTION_MODES = ("sync", "crossfade", "temporal_ensemble", "rtc")


def smoothstep(x: float) -> float:
    """3x^2 - 2x^3 on [0, 1]: zero slope at both ends."""
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


def minimum_jerk(s: float) -> float:
    """10 s^3 - 15 s^4 + 6 s^5 on [0, 1]: zero velocity and acceleration at both ends."""
    s = min(max(s, 0.0), 1.0)
    return s * s * s * (10.0 + s * (-15.0 + 6.0 * s))


def crossfade(
    old: TimedChunk | None, new: TimedChunk, t: float, blend_start_s: float, blend_s: float
) -> np.ndarray:
    """Target at ``t`` while fading from ``old`` to ``new`` over [blend_start_s, +blend_s]."""
    target_new = new.sample(t)
    if old is None or blend_s <= 0.0:
        return target_new
    w = smoothstep((t - blend_start_s) / blend_s)
    if w >= 1.0:
        return target_new
    return (1.0 - w) * old.sample(t) + w * target_new


def temporal_ensemble(chunks: Sequence[TimedChunk], t: float, k: float) -> np.ndarray:
    """Weighted mean over chunks (newest last in ``chunks``) that have not run out at ``t``."""
    if not chunks:
        raise ValueError("chunks: temporal_ensemble needs at least one chunk")
    live = [c for c in chunks if not c.exhausted(t)] or [chunks[-1]]
    weights = np.exp(-k * np.arange(len(live))[::-1].astype(np.float64))  # newest: rank 0
    samples = np.stack([c.sample(t) for c in live])
    return (weights[:, None] * samples).sum(axis=0) / weights.sum()
