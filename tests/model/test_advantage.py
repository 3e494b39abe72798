from __future__ import annotations

import numpy as np
import pytest

from gigabrain_runtime.model.advantage import (
    advantage_indicator,
    hilr_advantage,
    n_step_advantage,
    takeover_starts,
    value_targets,
)


def test_n_step_advantage_matches_the_definition_by_hand():
    r = np.array([0.0, 0.0, 1.0, 0.0])
    v = np.array([0.5, 0.6, 0.9, 0.2])
    g = 0.9
    a = n_step_advantage(r, v, n=2, gamma=g, terminal=True)
    expected = [
        0.0 + g * 0.0 + g**2 * 0.9 - 0.5,  # t=0: r0 + g r1 + g^2 v2 - v0
        0.0 + g * 1.0 + g**2 * 0.2 - 0.6,  # t=1
        1.0 + g * 0.0 + g**2 * 0.0 - 0.9,  # t=2: v4 beyond a terminal end is 0
        0.0 + 0.0 + 0.0 - 0.2,  # t=3
    ]
    np.testing.assert_allclose(a, expected)


def test_truncated_episode_bootstraps_from_the_last_value():
    r = np.zeros(3)
    v = np.array([0.1, 0.2, 0.7])
    a = n_step_advantage(r, v, n=1, gamma=1.0, terminal=False)
    np.testing.assert_allclose(a, [0.1, 0.5, 0.0])


def test_one_step_with_gamma_zero_is_reward_minus_value():
    r = np.array([1.0, 2.0])
    v = np.array([0.5, 0.5])
    np.testing.assert_allclose(n_step_advantage(r, v, n=1, gamma=0.0), [0.5, 1.5])


def test_indicator_thresholds_strictly_above_eps():
    np.testing.assert_array_equal(
        advantage_indicator(np.array([-1.0, 0.0, 0.1, 2.0]), eps=0.1), [0, 0, 0, 1]
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"rewards": np.zeros(3), "values": np.zeros(4), "n": 1, "gamma": 0.9}, "values"),
        (
            {"rewards": np.array([0.0, np.nan]), "values": np.zeros(2), "n": 1, "gamma": 0.9},
            "rewards",
        ),
        ({"rewards": np.zeros(2), "values": np.zeros(2), "n": 0, "gamma": 0.9}, "n"),
        ({"rewards": np.zeros(2), "values": np.zeros(2), "n": 1, "gamma": 1.5}, "gamma"),
    ],
)
def test_bad_arguments_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"^{field}"):
        n_step_advantage(**kwargs)


def test_a_takeover_ends_the_policys_attempt_as_a_failure():
    """HILR episodes: the operator rescues nearly every one, so the takeover is what says the
    policy failed - the frames before the last takeover are worth 0, those after it the
    discounted success; an episode without a takeover is the plain sparse-reward case."""
    flags = np.array([0, 0, 1, 1, 0, 0, 1, 0, 0], bool)
    assert takeover_starts(flags).tolist() == [2, 6]
    g = 0.5
    np.testing.assert_allclose(value_targets(True, flags, g), [0, 0, 0, 0, 0, 0, g**2, g, 1.0])
    assert not value_targets(False, flags, g).any()
    # a demonstration (the expert drove every frame) and an unassisted success: no takeover
    for clean in (np.ones(4, bool), np.zeros(4, bool)):
        np.testing.assert_allclose(value_targets(True, clean, g), [g**3, g**2, g, 1.0])
    v = np.array([0.2, 0.3, 0.1, 0.4, 0.5, 0.2, 0.6, 0.7, 0.8])
    adv = hilr_advantage(v, True, flags, n=2, gamma=1.0)
    # each attempt is its own terminal episode: frames 0-1 end at the takeover at 2 (value 0)
    np.testing.assert_allclose(adv[:2], [0.0 - 0.2, 0.0 - 0.3])
    np.testing.assert_allclose(adv[2:6], [0.5 - 0.1, 0.2 - 0.4, 0.0 - 0.5, 0.0 - 0.2])
    # the last attempt ends the episode with the success reward
    np.testing.assert_allclose(adv[6:], [0.8 - 0.6, 1.0 - 0.7, 1.0 - 0.8])
    no_takeover = np.zeros(9, bool)
    np.testing.assert_allclose(
        hilr_advantage(v, True, no_takeover, n=2, gamma=0.9),
        n_step_advantage(np.eye(9)[-1], v, n=2, gamma=0.9),
    )
    with pytest.raises(ValueError, match="intervention"):
        hilr_advantage(v, True, flags[:3], n=2, gamma=1.0)
