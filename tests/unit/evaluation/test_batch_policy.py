"""The replay's batch policy takes exactly the actions of SB3's ``policy.predict``."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from stable_baselines3 import PPO

from stairways.errors import StairwaysError
from stairways.evaluation.runner import batch_policy, categorical_mode


def _model(seed: int = 0, activation: type[torch.nn.Module] = torch.nn.Tanh) -> PPO:
    env = gym.make("CartPole-v1")
    # the trading env's shape: 26 inputs, 9 actions
    env.observation_space = gym.spaces.Box(-10.0, 10.0, (26,), np.float32)
    env.action_space = gym.spaces.Discrete(9)
    return PPO(
        "MlpPolicy",
        env,
        n_steps=64,
        batch_size=64,
        seed=seed,
        device="cpu",
        policy_kwargs={"net_arch": [32, 32], "activation_fn": activation},
    )


MODELS = {
    (seed, act): _model(seed, act) for seed in (0, 1) for act in (torch.nn.Tanh, torch.nn.ReLU)
}


@settings(max_examples=25, deadline=None)
@given(
    key=st.sampled_from(sorted(MODELS, key=str)),
    rows=st.integers(1, 300),
    scale=st.sampled_from([0.01, 1.0, 10.0]),
    seed=st.integers(0, 2**31 - 1),
)
def test_fast_actions_equal_predict(
    key: tuple[int, type[torch.nn.Module]], rows: int, scale: float, seed: int
) -> None:
    model = MODELS[key]
    obs = (np.random.default_rng(seed).normal(size=(rows, 26)) * scale).astype(np.float32)
    act = batch_policy(model)
    expected, _ = model.policy.predict(obs, deterministic=True)
    got = act(obs, np.zeros(rows, dtype=bool))
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def test_ties_resolve_as_predict_does() -> None:
    model = _model()
    with torch.no_grad():  # every logit equal, then two equal maxima
        model.policy.action_net.weight.zero_()
        model.policy.action_net.bias.zero_()
    obs = np.random.default_rng(0).normal(size=(50, 26)).astype(np.float32)
    act = batch_policy(model)
    np.testing.assert_array_equal(act(obs, np.zeros(50, bool)), np.zeros(50, dtype=np.int64))
    with torch.no_grad():
        model.policy.action_net.bias.copy_(torch.tensor([0, 0, 0, 1, 0, 0, 0, 1, 0.0]))
    expected, _ = model.policy.predict(obs, deterministic=True)
    np.testing.assert_array_equal(act(obs, np.zeros(50, bool)), expected)
    assert set(expected.tolist()) == {3}


def test_only_feed_forward_discrete_policies_take_the_fast_path() -> None:
    assert categorical_mode(_model().policy) is not None
    box = PPO("MlpPolicy", "Pendulum-v1", n_steps=64, batch_size=64, device="cpu")
    assert categorical_mode(box.policy) is None  # continuous actions: predict is used


def test_wrong_observation_width_is_refused() -> None:
    act = batch_policy(_model())
    with pytest.raises(StairwaysError, match=r"shape \(12,\), the policy takes \(26,\)"):
        act(np.zeros((4, 12), dtype=np.float32), np.zeros(4, bool))


def test_kept_buffers_neither_change_the_observations_nor_leak_between_calls() -> None:
    model = MODELS[(1, torch.nn.ReLU)]
    act = batch_policy(model)
    rng = np.random.default_rng(4)
    for rows in (7, 300, 7, 1, 300):
        obs = (rng.normal(size=(rows, 26)) * 3.0).astype(np.float32)
        before = obs.copy()
        expected, _ = model.policy.predict(obs, deterministic=True)
        np.testing.assert_array_equal(act(obs, np.zeros(rows, dtype=bool)), expected)
        np.testing.assert_array_equal(obs, before)
