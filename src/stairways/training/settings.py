"""Configuration of training runs: algorithm, hyperparameters, schedules, curricula and gates.

Every PPO hyperparameter lives here so a run is fully described by its YAML. Ranges follow
SB3's own assertions and the PPO paper's sensible bounds; a bad value fails at load time with
the key path.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from stairways.configbase import Frozen
from stairways.training.curriculum import CurriculumConfig
from stairways.training.schedules import ScheduleSpec, schedule_bounds

__all__ = [
    "BACKEND_DEFAULTS",
    "BACKEND_SETTINGS",
    "DEFAULT_BACKEND",
    "SB3_SETTINGS",
    "THROUGHPUT_SETTINGS",
    "NetArch",
    "NormalizeConfig",
    "PolicyConfig",
    "QualityGatesConfig",
    "SpeedBumpConfig",
    "TrainingBackend",
    "TrainingConfig",
    "backend_settings",
]

TrainingBackend = Literal["sb3", "fused"]

# The default backend: fused. Measured by `stairways bench learning --workers 2` on four
# planted-signal markets x three training seeds at 20,000 timesteps (README, "Training
# backends"): with the signal sb3 passed the gates 10/12 (median daily Sharpe 10.78, worst 2.06)
# and fused 12/12 (median 11.29, worst 8.03); without it 0/12 each; and fused trains about ten
# times as many steps per second (`stairways bench train`). The power study on fused
# (docs/power_study.json): no signal 0/60 pass, default strength 8/8, baselines 0/60.
DEFAULT_BACKEND: TrainingBackend = "fused"

BACKEND_SETTINGS: tuple[str, ...] = ("n_envs", "n_steps", "batch_size", "n_epochs", "learning_rate")
"""The training settings whose default depends on the backend: a value the config gives is
kept, an unset one takes its backend's default when the config loads (and the resolved config a
run records shows it)."""

# SB3's settings: 8 x 128 = 1024 samples per update, about 50 updates in a 50k-step run. With
# 256 steps (25 updates) the mean reward of the last 20 training episodes ended near -1.3 rather
# than near 0 (seeds 0-1, synthetic market; see tests/integration/test_learning.py).
SB3_SETTINGS: Mapping[str, int | float] = MappingProxyType(
    {"n_envs": 8, "n_steps": 128, "batch_size": 256, "n_epochs": 10, "learning_rate": 3e-4}
)

# The fused backend's settings: 64 envs x 16 steps per rollout (1,024 samples, as SB3's 8 x
# 128), each updated as one full batch for two epochs at a learning rate of 3e-3. What PPO
# learns in a fixed number of timesteps follows the number of policy iterations (rollouts) more
# than the gradient steps per iteration: on the planted-signal market, 4,096-sample rollouts
# (five iterations in 20,000 timesteps) missed the reward gate at learning rates 3e-4 and 3e-3
# (their policies traded two to three times as often as SB3's), while 1,024-sample rollouts
# passed. A full-batch step costs about one and a half of SB3's 256-sample steps on this CPU,
# and two of them replace SB3's 40.
THROUGHPUT_SETTINGS: Mapping[str, int | float] = MappingProxyType(
    {"n_envs": 64, "n_steps": 16, "batch_size": 1024, "n_epochs": 2, "learning_rate": 3e-3}
)

BACKEND_DEFAULTS: Mapping[str, Mapping[str, int | float]] = MappingProxyType(
    {"sb3": SB3_SETTINGS, "fused": THROUGHPUT_SETTINGS}
)


def _backend_default(key: str) -> Any:
    """A default factory: ``key``'s default for the backend validated before it."""

    def factory(data: dict[str, Any]) -> Any:
        # A backend that failed validation is reported by its own error; the default backend's
        # value only lets the other fields validate meanwhile.
        backend = data.get("backend", DEFAULT_BACKEND)
        return BACKEND_DEFAULTS.get(backend, BACKEND_DEFAULTS[DEFAULT_BACKEND])[key]

    return factory


class NetArch(Frozen):
    """Hidden layer sizes of the policy (pi) and value (vf) networks."""

    pi: tuple[int, ...] = (64, 64)
    vf: tuple[int, ...] = (64, 64)

    @field_validator("pi", "vf")
    @classmethod
    def _positive(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(n < 1 or n > 4096 for n in v):
            raise ValueError(f"layer sizes must lie in [1, 4096], got {list(v)}")
        return v


class PolicyConfig(Frozen):
    """Network shape. ``net_arch`` may be a list (shared sizes) or a {pi, vf} mapping."""

    net_arch: NetArch = NetArch()
    activation: Literal["tanh", "relu", "elu", "leaky_relu", "gelu"] = "tanh"
    ortho_init: bool = True
    lstm_hidden_size: int = Field(default=64, ge=1, le=4096, description="recurrent_ppo only")
    n_lstm_layers: int = Field(default=1, ge=1, le=8, description="recurrent_ppo only")

    @field_validator("net_arch", mode="before")
    @classmethod
    def _list_means_both(cls, v: object) -> object:
        if isinstance(v, list | tuple):
            return {"pi": list(v), "vf": list(v)}
        return v


class NormalizeConfig(Frozen):
    """SB3 VecNormalize: running mean/std of observations and of discounted returns."""

    observations: bool = True
    rewards: bool = True
    clip_obs: float = Field(default=10.0, gt=0.0, le=1e6)
    clip_reward: float = Field(default=10.0, gt=0.0, le=1e6)
    epsilon: float = Field(default=1e-8, gt=0.0, le=1.0)


class QualityGatesConfig(Frozen):
    """Thresholds on the rolling episode reward; a miss logs a warning and is recorded."""

    mid_run_fraction: float = Field(default=0.5, gt=0.0, lt=1.0, description="Of total timesteps")
    mid_run_min_reward: float | None = None
    final_min_reward: float | None = None


class SpeedBumpConfig(Frozen):
    """Stop a run whose rolling Sharpe (mean/std) of episode rewards falls below a threshold.

    Off by default: every run starts from a random policy that pays real trading costs (about
    $190 a session), and a 50k-step run has only a few hundred episodes, so the last 1000 hold
    the whole run including that start. Measured with the default v3 reward (seeds 0-2), the
    rolling Sharpe at 30k timesteps was -2.3 to -2.9 on runs that were learning the planted
    signal (and went on to earn out of sample): the rule would have stopped every one of them.
    It is enabled in config/curriculum/phase2_oos.yaml, whose refined reward pays time and
    completion bonuses that keep a sound run's episode rewards positive.
    """

    enabled: bool = False
    window: int = Field(default=1000, ge=2, le=1_000_000, description="Last N episode rewards")
    min_timesteps: int = Field(default=30_000, ge=0, description="Not checked before this")
    min_episodes: int = Field(default=30, ge=2, description="Not checked with fewer episodes")
    threshold: float = Field(default=-0.5, ge=-100.0, le=100.0)


class TrainingConfig(Frozen):
    """One PPO run: algorithm, hyperparameters, schedules, curriculum, checkpoints and gates."""

    algo: Literal["ppo", "recurrent_ppo"] = "ppo"
    # fused (the default): stairways.training.fused_ppo, PPO over whole rollouts of the batched
    # env as arrays. sb3: SB3's PPO.learn(). Both write the same model zip and statistics files.
    # n_envs, n_steps, batch_size, n_epochs and learning_rate default per backend
    # (BACKEND_DEFAULTS); backend must stay the first of them, their factories read it.
    backend: TrainingBackend = DEFAULT_BACKEND
    split: str = Field(default="train", description="Data split the run trains on")
    total_timesteps: int = Field(default=50_000, ge=1, le=10_000_000_000)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    n_envs: int = Field(
        default_factory=_backend_default("n_envs"),
        ge=1,
        le=4096,
        description="Sessions stepped at once",
    )
    n_steps: int = Field(
        default_factory=_backend_default("n_steps"),
        ge=1,
        le=1_000_000,
        description="Steps per env per rollout",
    )
    batch_size: int = Field(default_factory=_backend_default("batch_size"), ge=2, le=10_000_000)
    n_epochs: int = Field(default_factory=_backend_default("n_epochs"), ge=1, le=1000)
    # A horizon of about ten 1-minute bars: it matches the planted signal's half-life and lets
    # PPO credit trading costs to the trade. With 0.99 a default 50k-step run on the synthetic
    # market did not improve its episode reward; with 0.9 it did (see the training report).
    gamma: float = Field(default=0.9, gt=0.0, le=1.0)
    gae_lambda: float = Field(default=0.95, ge=0.0, le=1.0)
    learning_rate: ScheduleSpec = Field(default_factory=_backend_default("learning_rate"))
    clip_range: ScheduleSpec = 0.2
    clip_range_vf: float | None = Field(default=None, gt=0.0)
    ent_coef: float = Field(default=0.01, ge=0.0, le=1.0)
    vf_coef: float = Field(default=0.5, ge=0.0, le=10.0)
    max_grad_norm: float = Field(default=0.5, gt=0.0, le=1000.0)
    target_kl: float | None = Field(default=None, gt=0.0, le=10.0)
    policy: PolicyConfig = PolicyConfig()
    normalize: NormalizeConfig = NormalizeConfig()
    curriculum: CurriculumConfig = CurriculumConfig()
    gates: QualityGatesConfig = QualityGatesConfig()
    speed_bump: SpeedBumpConfig = SpeedBumpConfig()
    checkpoint_every: int = Field(default=10_000, ge=1, description="Timesteps between saves")
    # 20 sessions: a 50k-step run has 200-300 episodes, so a window of 100 overlapped most of
    # the run at both ends and hid the learning curve (and the best checkpoint) in the average.
    rolling_window: int = Field(default=20, ge=1, le=1_000_000, description="Episodes averaged")
    torch_threads: int = Field(default=1, ge=1, le=256, description="Fixed for determinism")
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    tensorboard: bool = True
    runs_dir: Path = Path("runs")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        lo, hi = schedule_bounds(self.learning_rate)
        if lo <= 0.0 or hi > 1.0:
            raise ValueError(f"learning_rate must stay in (0, 1], schedule spans [{lo}, {hi}]")
        lo, hi = schedule_bounds(self.clip_range)
        if lo <= 0.0 or hi > 10.0:
            raise ValueError(f"clip_range must stay in (0, 10], schedule spans [{lo}, {hi}]")
        given = "backend" in self.model_fields_set
        which = "training.backend 'fused'" + ("" if given else " (the default)")
        if self.backend == "fused" and self.algo != "ppo":
            raise ValueError(
                f"{which} trains algo 'ppo' only, not {self.algo!r}; "
                "set training.backend: sb3 for recurrent_ppo"
            )
        if self.backend == "fused" and self.device != "cpu":
            # Rollouts run the policy in numpy on the CPU; the update shares its weights.
            raise ValueError(
                f"{which} runs on the CPU: set training.device 'cpu' (not "
                f"{self.device!r}), or set training.backend: sb3 for a GPU"
            )
        rollout = self.n_steps * self.n_envs
        if rollout < 2:
            raise ValueError("n_steps * n_envs must be at least 2 (SB3 needs two samples)")
        if self.batch_size > rollout:
            defaulted = [
                k for k in ("n_envs", "n_steps", "batch_size") if k not in self.model_fields_set
            ]
            hint = (
                f" ({', '.join(defaulted)}: the {self.backend} backend's default; set them "
                "together)"
                if defaulted
                else ""
            )
            raise ValueError(
                f"batch_size {self.batch_size} exceeds the rollout size n_steps * n_envs = "
                f"{self.n_steps} * {self.n_envs} = {rollout}{hint}"
            )
        return self

    @property
    def rollout_size(self) -> int:
        """Samples per rollout (n_steps * n_envs)."""
        return self.n_steps * self.n_envs


def backend_settings(tc: TrainingConfig) -> dict[str, Any]:
    """``tc``'s values of :data:`BACKEND_SETTINGS` (a schedule as its JSON form)."""
    dumped = tc.model_dump(mode="json", include=set(BACKEND_SETTINGS))
    return {k: dumped[k] for k in BACKEND_SETTINGS}
