from __future__ import annotations

import numpy as np
import pytest

from gigabrain_runtime.model.advantage import advantage_indicator, n_step_advantage


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
