"""n-step TD advantage and the RAMP advantage indicator (NumPy only: it labels recorded episodes).

A(s_t, a_t) = sum_{k<n} gamma^k r_{t+k} + gamma^n v_{t+n} - v_t,     I_t = 1(A_t > eps).

Near the end of an episode the sum is truncated at the last step; past a terminal step the
bootstrap value is 0, past a non-terminal end (a time-out, an aborted recording) it is the last
value estimate.
"""

from __future__ import annotations

import numpy as np


def n_step_advantage(
    rewards: np.ndarray,
    values: np.ndarray,
    *,
    n: int,
    gamma: float,
    terminal: bool = True,
) -> np.ndarray:
    """Advantages [T] for one episode.

    rewards, values: float arrays [T]; ``n`` >= 1 steps; ``gamma`` in [0, 1]. ``terminal``:
    whether the episode ended in a terminal state (success or failure) rather than being cut.
    Raises ValueError naming the argument on bad shapes, NaN values or out-of-range n/gamma.
    """
    r = np.asarray(rewards, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"rewards: expected a 1-D array, got shape {r.shape}")
    if v.shape != r.shape:
        raise ValueError(f"values: shape {v.shape} does not match rewards {r.shape}")
    if not np.all(np.isfinite(r)):
        raise ValueError("rewards: contains NaN or inf")
    if not np.all(np.isfinite(v)):
        raise ValueError("values: contains NaN or inf")
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n: must be an integer >= 1, got {n!r}")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma: must be in [0, 1], got {gamma!r}")
    t_len = r.shape[0]
    if t_len == 0:
        return np.zeros(0)
    bootstrap_end = 0.0 if terminal else v[-1]
    # values beyond the episode: the bootstrap value
    v_ext = np.concatenate([v, np.full(n, bootstrap_end)])
    r_ext = np.concatenate([r, np.zeros(n)])
    discounts = gamma ** np.arange(n)
    returns = np.zeros(t_len)
    for k in range(n):
        returns += discounts[k] * r_ext[k : k + t_len]
    return returns + gamma**n * v_ext[n : n + t_len] - v


def advantage_indicator(advantages: np.ndarray, eps: float = 0.0) -> np.ndarray:
    """I = 1(A > eps) as int8 [T]."""
    a = np.asarray(advantages, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError("advantages: contains NaN or inf")
    return (a > eps).astype(np.int8)
