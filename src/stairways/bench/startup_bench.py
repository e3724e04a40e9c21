"""Start-up time of the processes that train (``stairways bench startup``).

Many short runs (tuning trials, seeds, the power study's arms) each start a process, so its
fixed cost counts as often as there are runs. Measured here, each in a fresh interpreter and
timed from outside (wall clock, best of ``repeats``):

- ``import_torch_s``: ``import torch`` alone, the floor every training process pays;
- ``cli_help_s``: ``stairways train --help``, the command registry plus typer (the registry
  imports no torch, Stable-Baselines3, Optuna or pyplot: ``tests/unit/test_cli_startup.py``);
- ``first_update_s_<optimizer>``: a process that builds the training stack (batched env on a
  random-walk panel, VecMonitor, VecNormalize, the run's PPO model) and finishes its first
  rollout and update, with the optimizer the models use (:class:`LeanAdam`) and with
  ``torch.optim.Adam``, whose first call imports ``torch._dynamo``; their ratio is printed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stairways.errors import StairwaysError

__all__ = ["StartupResult", "run_startup_bench"]

# A training process up to its first update; prints whether torch._dynamo got imported.
_FIRST_UPDATE = """
import sys
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecMonitor, VecNormalize
import torch
from stairways.bench.env_bench import random_walk_panel
from stairways.env.settings import EnvConfig
from stairways.env.vector import BatchedTradingEnv
from stairways.market.settings import MarketConfig
from stairways.rewards.registry import build_reward
from stairways.rewards.settings import RewardConfig
from stairways.training.model import policy_kwargs
from stairways.training.settings import TrainingConfig

torch.set_num_threads(1)
kwargs = policy_kwargs(TrainingConfig())
if sys.argv[1] == "adam":
    kwargs["optimizer_class"] = torch.optim.Adam
env = BatchedTradingEnv(
    random_walk_panel(8), MarketConfig(), EnvConfig(), build_reward(RewardConfig()), 8, seed=0
)
venv = VecNormalize(VecMonitor(env))
model = PPO("MlpPolicy", venv, n_steps=64, batch_size=256, n_epochs=1, policy_kwargs=kwargs,
            device="cpu", seed=0)
model.learn(512)
print("dynamo" if "torch._dynamo" in sys.modules else "no-dynamo")
"""


@dataclass(frozen=True)
class StartupResult:
    """Best wall-clock seconds of each measurement."""

    import_torch_s: float
    cli_help_s: float
    first_update_s_lean: float
    first_update_s_adam: float
    dynamo_lean: bool
    dynamo_adam: bool

    @property
    def ratio(self) -> float:
        """Seconds to the first update with torch's Adam over those with LeanAdam."""
        return self.first_update_s_adam / self.first_update_s_lean


def _timed(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise StairwaysError(
            f"benchmark process {cmd[:3]} failed with exit code {done.returncode}: "
            f"{done.stderr.strip()[-1500:]}"
        )
    return seconds, done.stdout.strip()


def run_startup_bench(
    repeats: int = 3, report: Callable[[str, str], None] | None = None
) -> StartupResult:
    """Measure each start-up in fresh processes, ``repeats`` times, interleaved; keep the best.

    :param repeats: processes per measurement (interleaved, so load changes hit all alike)
    :param report: receives (name, formatted value) lines as they are measured
    """
    if repeats < 1:
        raise StairwaysError(f"repeats must be at least 1, got {repeats}")
    python = sys.executable
    cli = str(Path(python).with_name("stairways"))
    best: dict[str, float] = {}
    dynamo: dict[str, bool] = {}
    # Untimed: compiles the env kernels into numba's disk cache (after a change to the compiled
    # core the first process compiles them, which would be timed as start-up otherwise).
    _timed([python, "-c", _FIRST_UPDATE, "lean"])
    runs = [
        ("import_torch_s", [python, "-c", "import torch"]),
        ("cli_help_s", [cli, "train", "--help"]),
        ("first_update_s_lean", [python, "-c", _FIRST_UPDATE, "lean"]),
        ("first_update_s_adam", [python, "-c", _FIRST_UPDATE, "adam"]),
    ]
    for k in range(repeats):
        # Alternate the order so that neither optimizer always runs first after the others.
        for name, cmd in runs if k % 2 == 0 else runs[::-1]:
            seconds, out = _timed(cmd)
            best[name] = min(best.get(name, float("inf")), seconds)
            if name.startswith("first_update"):
                dynamo[name] = out.splitlines()[-1] == "dynamo"
    result = StartupResult(
        import_torch_s=best["import_torch_s"],
        cli_help_s=best["cli_help_s"],
        first_update_s_lean=best["first_update_s_lean"],
        first_update_s_adam=best["first_update_s_adam"],
        dynamo_lean=dynamo["first_update_s_lean"],
        dynamo_adam=dynamo["first_update_s_adam"],
    )
    if report is not None:
        report("import_torch_s", f"{result.import_torch_s:.2f}")
        report("cli_train_help_s", f"{result.cli_help_s:.2f}")
        report(
            "first_update_s_leanadam",
            f"{result.first_update_s_lean:.2f} (torch._dynamo imported: {result.dynamo_lean})",
        )
        report(
            "first_update_s_torch_adam",
            f"{result.first_update_s_adam:.2f} (torch._dynamo imported: {result.dynamo_adam})",
        )
        report("ratio_torch_adam_over_leanadam", f"{result.ratio:.2f}x")
    return result
