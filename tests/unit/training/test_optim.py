"""LeanAdam: torch's Adam, bit for bit, without importing torch._dynamo."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

from stairways.training.model import policy_kwargs
from stairways.training.optim import LeanAdam
from stairways.training.settings import TrainingConfig


def _net(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(26, 32), torch.nn.Tanh(), torch.nn.Linear(32, 9))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lr": 3e-4},
        {"lr": 1e-3, "eps": 1e-5, "weight_decay": 0.01},
        {"lr": 1e-3, "amsgrad": True, "foreach": False},
    ],
)
def test_lean_adam_matches_torch_adam_bit_for_bit(kwargs: dict[str, object]) -> None:
    nets = [_net(0), _net(0)]
    opts = [
        torch.optim.Adam(nets[0].parameters(), **kwargs),
        LeanAdam(nets[1].parameters(), **kwargs),
    ]
    gen = torch.Generator().manual_seed(1)
    for step in range(25):
        x = torch.randn(64, 26, generator=gen)
        y = torch.randint(0, 9, (64,), generator=gen)
        for net, opt in zip(nets, opts, strict=True):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(x), y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 0.5)
            opt.step()
        for a, b in zip(nets[0].parameters(), nets[1].parameters(), strict=True):
            assert torch.equal(a, b), step
    sa, sb = opts[0].state_dict(), opts[1].state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    for k in sa["state"]:
        for name, value in sa["state"][k].items():
            assert torch.equal(value, sb["state"][k][name]), name
    # a saved state loads into either class
    fresh = LeanAdam(_net(0).parameters(), **kwargs)
    fresh.load_state_dict(sa)
    assert fresh.state_dict()["state"][0]["step"] == sa["state"][0]["step"]


def test_lean_adam_step_leaves_grad_mode_as_it_found_it() -> None:
    net = _net(0)
    opt = LeanAdam(net.parameters())
    net(torch.ones(1, 26)).sum().backward()
    assert torch.is_grad_enabled()
    opt.step()
    assert torch.is_grad_enabled()
    with torch.no_grad():
        opt.step()
        assert not torch.is_grad_enabled()


def test_training_models_use_lean_adam() -> None:
    assert policy_kwargs(TrainingConfig())["optimizer_class"] is LeanAdam


def test_a_training_update_does_not_import_torch_dynamo() -> None:
    code = textwrap.dedent(
        """
        import sys
        from stable_baselines3 import PPO
        from stairways.training.model import policy_kwargs
        from stairways.training.settings import TrainingConfig

        kwargs = policy_kwargs(TrainingConfig())
        model = PPO("MlpPolicy", "CartPole-v1", n_steps=64, batch_size=32, n_epochs=1,
                    policy_kwargs=kwargs, device="cpu")
        model.learn(128)
        model.save(sys.argv[1])
        PPO.load(sys.argv[1], device="cpu")
        print("torch._dynamo" in sys.modules)
        """
    )
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            [sys.executable, "-c", code, str(Path(tmp) / "m.zip")],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "False"
