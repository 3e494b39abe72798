"""n-step TD advantage and the RAMP advantage indicator (NumPy only: it labels recorded episodes).

A(s_t, a_t) = sum_{k<n} gamma^k r_{t+k} + gamma^n v_{t+n} - v_t,     I_t = 1(A_t > eps).

Near the end of an episode the sum is truncated at the last step; past a terminal step the
bootstrap value is 0, past a non-terminal end (a time-out, an aborted recording) it is the last
value estimate.

Human-in-the-loop episodes (:func:`value_targets`, :func:`hilr_advantage`): a takeover ends the
policy's attempt as a failure. Nearly every HILR episode succeeds in the end (the operator
rescues it), so an outcome-only reward says nothing about the policy's own actions; with the
takeover as the policy's failure, the states it gets stuck in are worth little and the actions
that led there get a negative advantage.
"""

from __future__ import annotations

import numpy as np

# the labels' defaults for episodes recorded at 50 fps: 250 frames (5 s, about one grasp
# attempt; hilr/labels.py says why so long) and 0.998 per frame (0.905 per second)
HILR_N_STEP = 250
HILR_GAMMA = 0.998
# which of a recorded dataset's frames train a policy (train --frames): all; those the
# operator controlled (HG-DAgger, Kelly et al. 2019: the corrections alone); those labelled I = 1
SAMPLE_FRAMES = ("all", "operator", "indicator")
# which samples the unconditioned term of ramp_loss learns from: "all" (the paper's objective),
# or "expert" (demonstrations and the operator's corrections; the policy's own actions are then
# learnt only under their indicator, so a weak policy's failures are not cloned unconditioned)
UNCONDITIONED = ("all", "expert")


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


def takeover_starts(intervention: np.ndarray) -> np.ndarray:
    """Frames where the operator took control from the policy (policy -> operator), [K]."""
    flags = np.asarray(intervention, dtype=bool)
    if flags.ndim != 1:
        raise ValueError(f"intervention: expected a 1-D array, got shape {flags.shape}")
    return np.flatnonzero(flags[1:] & ~flags[:-1]) + 1


def value_targets(success: bool, intervention: np.ndarray, gamma: float) -> np.ndarray:
    """The value target [T] of each frame of a human-in-the-loop episode: the discounted
    chance of finishing it with no further help. ``gamma`` ** (frames to the end) where the
    episode succeeded and no takeover comes after the frame, else 0: a takeover ends the
    policy's attempt as a failure (the operator judged it one; RLIF, Luo et al. 2023, reward
    the intervention the same way), whatever the operator then achieved."""
    flags = np.asarray(intervention, dtype=bool)
    t_len = len(flags)
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma: must be in [0, 1], got {gamma!r}")
    if not success or t_len == 0:
        return np.zeros(t_len)
    targets = gamma ** np.arange(t_len - 1, -1, -1, dtype=np.float64)
    starts = takeover_starts(flags)
    if len(starts):
        targets[: starts[-1]] = 0.0
    return targets


def hilr_advantage(
    values: np.ndarray, success: bool, intervention: np.ndarray, *, n: int, gamma: float
) -> np.ndarray:
    """n-step TD advantages [T] of a human-in-the-loop episode, with the rewards of
    :func:`value_targets`: each takeover ends the policy's attempt before it (a terminal
    state of value 0, no reward), and the last attempt ends the episode with reward 1 on its
    last frame if it succeeded. The frames the operator drove get advantages too (the labels
    give them I = 1 anyway)."""
    v = np.asarray(values, dtype=np.float64)
    flags = np.asarray(intervention, dtype=bool)
    if flags.shape != v.shape:
        raise ValueError(f"intervention: shape {flags.shape} does not match values {v.shape}")
    bounds = [0, *takeover_starts(flags).tolist(), len(v)]
    out = np.zeros(len(v))
    for i, (a, b) in enumerate(zip(bounds, bounds[1:])):
        rewards = np.zeros(b - a)
        if success and i == len(bounds) - 2 and b > a:
            rewards[-1] = 1.0
        out[a:b] = n_step_advantage(rewards, v[a:b], n=n, gamma=gamma, terminal=True)
    return out


def episode_labels(
    values: np.ndarray,
    success: bool,
    intervention: np.ndarray,
    *,
    n_step: int,
    gamma: float,
    eps: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(advantage [T], indicator [T]) of a recorded episode from its per-frame values:
    :func:`hilr_advantage`, then I = 1(A > eps) or the operator had control (the correction
    is the behaviour the next policy should take, as RECAP labels interventions)."""
    adv = hilr_advantage(values, success, intervention, n=n_step, gamma=gamma)
    operator = np.asarray(intervention, dtype=bool).astype(np.int8)
    return adv, np.maximum(advantage_indicator(adv, eps), operator)
