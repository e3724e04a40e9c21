"""The fused vector step (one compiled call for step and bookkeeping) equals the step it replaced.

The reference below is the former ``step_wait``: ``step_batch`` and then the active/done/reward
bookkeeping and info snapshots in numpy. Both run side by side on twin envs from the same seed.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stairways.env import kernels as kn
from stairways.env.settings import EnvConfig
from stairways.env.vector import BatchedTradingEnv, StepInfos
from stairways.errors import InputError
from stairways.market.settings import MarketConfig
from stairways.rewards.registry import build_reward
from stairways.rewards.settings import RewardConfig
from tests.unit.env.panels import random_walk_panel

PANEL = random_walk_panel((12, 9, 15, 7), seed=3, vol=0.004)

# The core's state that carries from step to step: sessions, queues, portfolio, orders, reward.
ACCOUNTING = ("si", "queue", "pf", "shares", "avg", "targets", "pend", "rs", "term_obs")


def _reference_step_wait(venv: BatchedTradingEnv) -> tuple[object, ...]:
    core = venv.core
    active = core.si[:, kn.I_ACTIVE] == 1
    core.step()
    done = core.term | core.trunc
    term_obs = None
    if done.any():
        term_obs = core.term_obs.copy()
        core.refill_exhausted()
    infos = StepInfos(core, active, done, core.trunc.copy(), term_obs)
    return core.obs.copy(), core.rew.astype(np.float32), done, infos


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@settings(max_examples=25, deadline=None)
@given(
    n_envs=st.integers(1, 6),
    mode=st.sampled_from(["train", "evaluation"]),
    reward=st.sampled_from(["v3", "refined"]),
    cap=st.sampled_from([0.002, 0.01, 0.5]),
    seed=st.integers(0, 2**16),
    steps=st.integers(1, 60),
)
def test_fused_step_is_bit_identical_to_the_numpy_bookkeeping(
    n_envs: int, mode: str, reward: str, cap: float, seed: int, steps: int
) -> None:
    def make() -> BatchedTradingEnv:
        return BatchedTradingEnv(
            PANEL,
            MarketConfig(),
            EnvConfig(drawdown_cap=cap),
            build_reward(RewardConfig(name=reward)),
            n_envs,
            mode,
            seed=seed,
        )

    new, old = make(), make()
    assert _same(new.reset(), old.reset())
    actions = np.random.default_rng(seed).integers(0, new.core.n_actions, (steps, n_envs))
    kept: list[tuple[np.ndarray, np.ndarray]] = []
    for k in range(steps):
        new.step_async(actions[k])
        old.core.check_actions(actions[k])
        obs, rew, done, infos = new.step_wait()
        obs0, rew0, done0, infos0 = _reference_step_wait(old)
        assert _same(obs, obs0)
        assert _same(rew, rew0)
        assert _same(done, done0)
        assert _equal(list(infos), list(infos0))
        for name in ACCOUNTING:
            assert _same(getattr(new.core, name), getattr(old.core, name)), name
        kept.extend((a, a.copy()) for a in (obs, rew, done))
        kept.extend((a, a.copy()) for a in (infos.results, infos.components, infos._active))
    # the returned arrays are the caller's: later steps do not change them
    for returned, copy in kept:
        assert _same(returned, copy)


def _equal(u: object, v: object) -> bool:
    if isinstance(u, np.ndarray):
        return isinstance(v, np.ndarray) and _same(u, v)
    if isinstance(u, dict):
        return (
            isinstance(v, dict)
            and u.keys() == v.keys()
            and all(_equal(u[key], v[key]) for key in u)
        )
    if isinstance(u, list | tuple):
        return (
            isinstance(v, list | tuple)
            and len(u) == len(v)
            and all(_equal(a, b) for a, b in zip(u, v, strict=True))
        )
    if isinstance(u, float) and np.isnan(u):
        return isinstance(v, float) and np.isnan(v)
    return type(u) is type(v) and u == v


def test_a_bad_action_raises_and_changes_nothing() -> None:
    venv = BatchedTradingEnv(
        PANEL, MarketConfig(), EnvConfig(), build_reward(RewardConfig()), 2, seed=1
    )
    venv.reset()
    before = venv.core.si.copy(), venv.core.pf.copy()
    venv.step_async(np.array([0, venv.core.n_actions]))
    with pytest.raises(InputError, match="of env 1"):
        venv.step_wait()
    assert _same(venv.core.si, before[0]) and _same(venv.core.pf, before[1])


def _twins(n_envs: int, seed: int) -> tuple[BatchedTradingEnv, BatchedTradingEnv]:
    def make() -> BatchedTradingEnv:
        return BatchedTradingEnv(
            PANEL,
            MarketConfig(),
            EnvConfig(drawdown_cap=0.002),
            build_reward(RewardConfig()),
            n_envs,
            seed=seed,
        )

    return make(), make()


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    form=st.sampled_from(["int32", "uint8", "float", "list", "strided", "2d"]),
)
def test_actions_in_any_integer_form_step_as_int64_actions(seed: int, form: str) -> None:
    """Only a contiguous int64 array is used as given; other forms are checked and copied."""
    n, steps = 3, 40
    fast, slow = _twins(n, seed)
    fast.reset()
    slow.reset()
    actions = np.random.default_rng(seed).integers(0, fast.core.n_actions, (steps, n))
    wide = np.repeat(actions, 2, axis=1)  # column pairs: [:, ::2] is a strided view
    for k in range(steps):
        given_actions: object = {
            "int32": actions[k].astype(np.int32),
            "uint8": actions[k].astype(np.uint8),
            "float": actions[k].astype(np.float64),
            "list": actions[k].tolist(),
            "strided": wide[k, ::2],
            "2d": actions[k].reshape(n, 1),
        }[form]
        obs, rew, done, _ = fast.step(actions[k])
        obs0, rew0, done0, _ = slow.step(given_actions)  # type: ignore[arg-type]
        assert _same(obs, obs0) and _same(rew, rew0) and _same(done, done0)
        for name in ACCOUNTING:
            assert _same(getattr(fast.core, name), getattr(slow.core, name)), name


def test_an_int64_action_array_is_used_without_a_copy_and_others_are_copied() -> None:
    venv, _ = _twins(2, 0)
    core = venv.core
    own = np.array([1, 2], dtype=np.int64)
    assert core.vec_actions(own) is own
    for other in (own.astype(np.int32), own[::-1].copy()[::-1], [1, 2], own.astype(float)):
        got = core.vec_actions(other)  # type: ignore[arg-type]
        assert got is core.actions
        assert core.actions.tolist() == [1, 2]
    with pytest.raises(InputError, match="actions must be 2 integers"):
        core.vec_actions(np.array([0.5, 1.0]))


def test_idle_envs_report_zero_results_and_are_never_done() -> None:
    """Evaluation mode: an env past its last session is idle: inactive, zero rows, not done."""
    venv = BatchedTradingEnv(
        PANEL,
        MarketConfig(),
        EnvConfig(),
        build_reward(RewardConfig()),
        3,
        "evaluation",
        seed=0,
    )
    venv.reset()
    core = venv.core
    idle_seen = False
    for _ in range(int(PANEL.lengths.sum()) + 5):
        active, done, _trunc, rew, obs, out, comps, _ = core.step_collect(
            core.vec_actions(np.zeros(3, dtype=np.int64))
        )
        idle = ~active
        if idle.any():
            idle_seen = True
            assert not done[idle].any()
            assert (rew[idle] == 0).all() and (obs[idle] == 0).all()
            assert (out[idle] == 0).all() and (comps[idle] == 0).all()
    assert idle_seen


def test_the_step_kernels_compile_without_reference_counting() -> None:
    """Pinned: counting the references of the step loop's row views cost a third of a step."""
    for kernel in (kn.step_batch, kn.step_vec, kn.start_many, kn.start_episode):
        assert kernel.targetoptions.get("_nrt") is False, kernel.py_func.__name__
