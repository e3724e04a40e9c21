"""The live loop's forward pass: an SB3 feed-forward policy's actor evaluated with numpy.

One observation through torch costs about half a millisecond on this machine, nearly all of it
per-call overhead (module dispatch, tensor wrapping, the distribution object); the arithmetic
of a 26 -> 64 -> 64 -> 9 network is a few microseconds. :class:`FastPolicy` takes the weights
out of the loaded SB3 policy at load time (the model file stays the one SB3 zip the registry
fingerprints) and evaluates the same layers in float32 into preallocated buffers: the logits,
and the deterministic action as their argmax (SB3's ``Categorical.mode()``).

Only what it reproduces is accepted: an ``ActorCriticPolicy`` with a flatten feature
extractor, a ``Discrete`` action space, and an actor of ``Linear`` layers and the activations
listed in :data:`ACTIVATIONS`. Anything else (a recurrent policy, GELU, a custom extractor)
gets :class:`UnsupportedPolicyError` with the reason, and the caller keeps SB3's own forward pass.
The tests compare actions and probabilities with SB3's on many observations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from stairways.errors import StairwaysError

__all__ = ["ACTIVATIONS", "FastPolicy", "UnsupportedPolicyError"]

Activation = Callable[[np.ndarray, np.ndarray], None]


class UnsupportedPolicyError(StairwaysError):
    """The policy has a part the numpy forward pass does not reproduce (the reason says which)."""


def _identity(x: np.ndarray, tmp: np.ndarray) -> None:
    return None


def _tanh(x: np.ndarray, tmp: np.ndarray) -> None:
    np.tanh(x, out=x)


def _relu(x: np.ndarray, tmp: np.ndarray) -> None:
    np.maximum(x, np.float32(0.0), out=x)


def _leaky(slope: float) -> Activation:
    s = np.float32(slope)

    def act(x: np.ndarray, tmp: np.ndarray) -> None:
        # torch: x if x >= 0 else slope * x (slope < 1, so that is the larger of the two)
        np.multiply(x, s, out=tmp)
        np.maximum(x, tmp, out=x)

    return act


def _elu(alpha: float) -> Activation:
    a = np.float32(alpha)

    def act(x: np.ndarray, tmp: np.ndarray) -> None:
        # torch: x if x > 0 else alpha * expm1(x)
        np.minimum(x, np.float32(0.0), out=tmp)
        np.expm1(tmp, out=tmp)
        np.multiply(tmp, a, out=tmp)
        np.maximum(x, np.float32(0.0), out=x)
        np.add(x, tmp, out=x)

    return act


# torch module class name -> builder of the in-place numpy activation (from the module)
ACTIVATIONS: dict[str, Callable[[Any], Activation]] = {
    "Identity": lambda m: _identity,
    "Tanh": lambda m: _tanh,
    "ReLU": lambda m: _relu,
    "LeakyReLU": lambda m: _leaky(float(m.negative_slope)),
    "ELU": lambda m: _elu(float(m.alpha)),
}


@dataclass(frozen=True)
class _Layer:
    weight_t: np.ndarray  # (in, out) float32, C order
    bias: np.ndarray  # (out,) float32
    act: Activation
    out: np.ndarray  # (out,) float32 buffer
    tmp: np.ndarray  # (out,) float32 scratch for the activation


class FastPolicy:
    """The actor of a feed-forward SB3 policy in numpy, for one observation at a time.

    :param layers: (weight (out, in), bias (out,), activation module name, module) per
        layer, the action head last with activation ``Identity``
    :param obs_dim: length of the (normalised) observation
    """

    def __init__(self, layers: list[tuple[np.ndarray, np.ndarray, str, Any]], obs_dim: int):
        built: list[_Layer] = []
        width = obs_dim
        for weight, bias, act_name, module in layers:
            w = np.asarray(weight, dtype=np.float32)
            if w.ndim != 2 or w.shape[1] != width:
                raise UnsupportedPolicyError(
                    f"layer {len(built)} takes {w.shape[1] if w.ndim == 2 else '?'} inputs, "
                    f"the layer before gives {width}"
                )
            if act_name not in ACTIVATIONS:
                raise UnsupportedPolicyError(
                    f"activation {act_name} has no numpy forward pass "
                    f"(supported: {', '.join(sorted(ACTIVATIONS))})"
                )
            out = w.shape[0]
            built.append(
                _Layer(
                    weight_t=np.ascontiguousarray(w.T),
                    bias=np.ascontiguousarray(np.asarray(bias, dtype=np.float32).reshape(out)),
                    act=ACTIVATIONS[act_name](module),
                    out=np.zeros(out, dtype=np.float32),
                    tmp=np.zeros(out, dtype=np.float32),
                )
            )
            width = out
        self.layers = tuple(built)
        self.obs_dim = obs_dim
        self.n_actions = width
        self._x = np.zeros(obs_dim, dtype=np.float32)

    @classmethod
    def from_sb3(cls, policy: Any) -> FastPolicy:
        """The actor of a loaded SB3 ``ActorCriticPolicy`` (UnsupportedPolicyError says why not)."""
        import torch
        from gymnasium import spaces
        from stable_baselines3.common.policies import ActorCriticPolicy
        from stable_baselines3.common.torch_layers import FlattenExtractor

        if type(policy) is not ActorCriticPolicy:
            raise UnsupportedPolicyError(
                f"{type(policy).__name__} is not a feed-forward ActorCriticPolicy"
            )
        if not isinstance(policy.action_space, spaces.Discrete):
            raise UnsupportedPolicyError(f"action space {policy.action_space} is not Discrete")
        obs_space = policy.observation_space
        if not isinstance(obs_space, spaces.Box) or len(obs_space.shape) != 1:
            raise UnsupportedPolicyError(f"observation space {obs_space} is not a flat Box")
        if type(policy.pi_features_extractor) is not FlattenExtractor:
            raise UnsupportedPolicyError(
                f"feature extractor {type(policy.pi_features_extractor).__name__} is not "
                "a FlattenExtractor"
            )
        layers: list[tuple[np.ndarray, np.ndarray, str, Any]] = []
        pending: tuple[np.ndarray, np.ndarray] | None = None
        for module in policy.mlp_extractor.policy_net:
            if isinstance(module, torch.nn.Linear):
                if pending is not None:
                    layers.append((*pending, "Identity", None))
                if module.bias is None:
                    raise UnsupportedPolicyError("a Linear layer of the actor has no bias")
                pending = (
                    module.weight.detach().cpu().numpy().copy(),
                    module.bias.detach().cpu().numpy().copy(),
                )
            elif pending is not None and type(module).__name__ in ACTIVATIONS:
                layers.append((*pending, type(module).__name__, module))
                pending = None
            else:
                raise UnsupportedPolicyError(
                    f"actor module {type(module).__name__} has no numpy forward pass"
                )
        if pending is not None:
            layers.append((*pending, "Identity", None))
        head = policy.action_net
        if not isinstance(head, torch.nn.Linear) or head.bias is None:
            raise UnsupportedPolicyError(f"action head {type(head).__name__} is not a Linear layer")
        layers.append(
            (
                head.weight.detach().cpu().numpy().copy(),
                head.bias.detach().cpu().numpy().copy(),
                "Identity",
                None,
            )
        )
        fast = cls(layers, int(obs_space.shape[0]))
        if fast.n_actions != int(policy.action_space.n):
            raise UnsupportedPolicyError(
                f"the action head gives {fast.n_actions} logits for {policy.action_space.n} actions"
            )
        return fast

    def logits(self, obs: np.ndarray) -> np.ndarray:
        """The action logits of one normalised observation (a buffer reused by the next call)."""
        if (
            type(obs) is np.ndarray
            and obs.dtype == np.float32
            and obs.shape == self._x.shape
            and obs.flags.c_contiguous
        ):
            x = obs  # read only: the layers write their own buffers
        else:
            x = self._x
            np.copyto(x, obs.reshape(-1), casting="same_kind")
        for layer in self.layers:
            np.dot(x, layer.weight_t, out=layer.out)
            np.add(layer.out, layer.bias, out=layer.out)
            layer.act(layer.out, layer.tmp)
            x = layer.out
        return x

    def act(self, obs: np.ndarray) -> int:
        """The deterministic action: the most probable one (ties: the lowest index, as torch)."""
        return int(self.logits(obs).argmax())

    def probabilities(self, obs: np.ndarray) -> np.ndarray:
        """Action probabilities (softmax of the logits), float64, a new array."""
        z = self.logits(obs).astype(np.float64)
        e = np.exp(z - z.max())
        out: np.ndarray = e / e.sum()
        return out
