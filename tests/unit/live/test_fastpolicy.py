"""The live loop's numpy forward pass against SB3's torch policy with the same weights."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

from stairways.live.fastpolicy import FastPolicy, UnsupportedPolicyError


class _Box(gym.Env[np.ndarray, int]):
    def __init__(self, dim: int, actions: int) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (dim,), np.float32)
        self.action_space = gym.spaces.Discrete(actions)

    def reset(self, *, seed: int | None = None, options: Any = None) -> Any:
        return np.zeros(self.observation_space.shape, np.float32), {}

    def step(self, action: int) -> Any:
        return np.zeros(self.observation_space.shape, np.float32), 0.0, True, False, {}


def _policy(activation: type[torch.nn.Module], net_arch: Any, dim: int = 26, n: int = 9) -> Any:
    model = PPO(
        "MlpPolicy",
        _Box(dim, n),
        policy_kwargs={"net_arch": net_arch, "activation_fn": activation},
        seed=3,
        device="cpu",
    )
    policy = model.policy
    # Spread the logits as a trained policy's are (fresh heads are near uniform).
    with torch.no_grad():
        policy.action_net.weight.mul_(50.0)
    policy.set_training_mode(False)
    return policy


def _torch(policy: Any, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with torch.inference_mode():
        dist = policy.get_distribution(torch.from_numpy(obs))
        return dist.get_actions(deterministic=True).numpy(), dist.distribution.probs.numpy()


@pytest.mark.parametrize(
    ("activation", "net_arch"),
    [
        (torch.nn.Tanh, {"pi": [64, 64], "vf": [64, 64]}),
        (torch.nn.ReLU, {"pi": [32, 16], "vf": [8]}),
        (torch.nn.LeakyReLU, [48, 48, 48]),
        (torch.nn.ELU, {"pi": [40], "vf": [40]}),
        (torch.nn.Tanh, {"pi": [], "vf": [64]}),
    ],
)
def test_fast_policy_gives_sb3s_actions_and_probabilities(
    activation: type[torch.nn.Module], net_arch: Any
) -> None:
    policy = _policy(activation, net_arch)
    fast = FastPolicy.from_sb3(policy)
    rng = np.random.default_rng(7)
    obs = (rng.standard_normal((4000, 26)) * 2.5).astype(np.float32)
    want_actions, want_probs = _torch(policy, obs)
    got_actions = np.array([fast.act(o) for o in obs])
    got_probs = np.stack([fast.probabilities(o) for o in obs])
    assert np.array_equal(got_actions, want_actions)
    np.testing.assert_allclose(got_probs, want_probs, rtol=0, atol=2e-6)
    # The actions are not all one (the comparison would then say little).
    assert len(set(got_actions.tolist())) >= 5


def test_fast_policy_buffers_do_not_leak_between_calls() -> None:
    policy = _policy(torch.nn.Tanh, [16, 16], dim=5, n=3)
    fast = FastPolicy.from_sb3(policy)
    a = np.full(5, 0.5, np.float32)
    b = np.full(5, -3.0, np.float32)
    first = fast.logits(a).copy()
    fast.logits(b)
    assert np.array_equal(fast.logits(a), first)


def test_logits_read_the_observation_as_given_and_never_write_it() -> None:
    policy = _policy(torch.nn.ReLU, {"pi": [], "vf": [8]}, dim=6, n=4)  # the head alone
    fast = FastPolicy.from_sb3(policy)
    obs = np.random.default_rng(1).standard_normal(12).astype(np.float32)
    contiguous = obs[:6].copy()
    before = contiguous.copy()
    want = fast.logits(contiguous).copy()
    assert contiguous.tobytes() == before.tobytes()
    assert fast.logits(contiguous.astype(np.float64)).tobytes() == want.tobytes()
    strided = np.repeat(contiguous, 2)[::2]
    assert fast.logits(strided).tobytes() == want.tobytes()
    assert fast.logits(contiguous.reshape(1, 6)).tobytes() == want.tobytes()
    assert fast.act(contiguous) == int(np.argmax(want))


def test_gelu_policy_is_refused_with_the_reason() -> None:
    policy = _policy(torch.nn.GELU, [16])
    with pytest.raises(UnsupportedPolicyError, match="GELU"):
        FastPolicy.from_sb3(policy)


def test_a_box_action_space_is_refused() -> None:
    env = _Box(4, 2)
    env.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)  # type: ignore[assignment]
    model = PPO("MlpPolicy", env, seed=0, device="cpu")
    with pytest.raises(UnsupportedPolicyError, match="not Discrete"):
        FastPolicy.from_sb3(model.policy)
