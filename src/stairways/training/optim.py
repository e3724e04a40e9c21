"""Adam without the import of ``torch._dynamo`` that torch's optimizers make on first use.

``torch.optim.Optimizer`` wraps ``add_param_group``, ``zero_grad``, ``state_dict`` and
``load_state_dict`` in ``torch._disable_dynamo``, and ``Adam.step`` in a wrapper that calls
``torch._dynamo.graph_break()``; the first call of any of them imports the whole TorchDynamo
compiler stack. That import cost about 2 s per process on this machine (more under load):
every training run, tuning trial, seed and evaluation of a model zip paid it at its first
optimizer, for a compiler nothing here uses. Those wrappers only matter inside
``torch.compile``, which Stairways never runs.

:class:`LeanAdam` is ``torch.optim.Adam`` calling the same undecorated methods: same
arithmetic, same state and state dict, bit for bit (``tests/unit/training/test_optim.py``).
Models save it as their ``optimizer_class``; zips saved with ``torch.optim.Adam`` still load.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["LeanAdam"]

_adam_step = inspect.unwrap(torch.optim.Adam.step)
_add_param_group = inspect.unwrap(torch.optim.Optimizer.add_param_group)
_zero_grad = inspect.unwrap(torch.optim.Optimizer.zero_grad)
_state_dict = inspect.unwrap(torch.optim.Optimizer.state_dict)
_load_state_dict = inspect.unwrap(torch.optim.Optimizer.load_state_dict)


class LeanAdam(torch.optim.Adam):
    """``torch.optim.Adam`` without the TorchDynamo wrappers (see the module docstring)."""

    def step(self, closure: Callable[[], float] | None = None) -> Any:
        """One Adam step, with gradients off as torch's wrapper sets them."""
        prev = torch.is_grad_enabled()
        try:
            torch.set_grad_enabled(self.defaults["differentiable"])
            return _adam_step(self, closure)
        finally:
            torch.set_grad_enabled(prev)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """As ``torch.optim.Optimizer.add_param_group``."""
        _add_param_group(self, param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """As ``torch.optim.Optimizer.zero_grad``."""
        _zero_grad(self, set_to_none)

    def state_dict(self) -> dict[str, Any]:
        """As ``torch.optim.Optimizer.state_dict``."""
        out: dict[str, Any] = _state_dict(self)
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """As ``torch.optim.Optimizer.load_state_dict``."""
        _load_state_dict(self, state_dict)
