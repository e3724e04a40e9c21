"""``stairways evaluate`` on a real (tiny) training run: traces, metrics, gates and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from stairways.config import load_config
from stairways.data.store import BarStore
from stairways.data.synthetic import generate, generator_details
from stairways.errors import MissingResourceError
from stairways.evaluation.gates import GATES_FAILED_EXIT_CODE
from stairways.evaluation.traces import read_run_trace
from tests.cli_helpers import stairways

TINY = {
    "name": "tiny",
    "data": {
        "splits": {
            "train": {"start": "2024-01-03", "end": "2024-01-12"},
            "test": {"start": "2024-01-16", "end": "2024-01-19"},
        },
        "synthetic": {"start": "2024-01-02", "end": "2024-01-19"},
    },
    # No drawdown stop: every episode is a whole session, so trace rows are countable.
    "env": {"drawdown_cap": 1.0},
    "training": {
        "total_timesteps": 512,
        "n_envs": 2,
        "n_steps": 128,
        "batch_size": 128,
        "checkpoint_every": 256,
        "tensorboard": False,
    },
}


def write_tiny_config(root: Path, **training: object) -> Path:
    """The tiny config with its store and runs under ``root``, stored as YAML."""
    data = json.loads(json.dumps(TINY))
    data["data"]["store_path"] = str(root / "bars.duckdb")
    data["training"]["runs_dir"] = str(root / "runs")
    data["training"].update(training)
    path = root / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def make_store(config: Path) -> None:
    """Write the synthetic market of the config's range into its store."""
    cfg = load_config(config)
    bars = generate(cfg.data.synthetic, cfg.data.symbols)
    with BarStore(cfg.data.store_path) as store:
        store.write_bars(
            bars, source="synthetic", synthetic=True, details=generator_details(cfg.data.synthetic)
        )


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(config, run directory) of a 512-step run on the tiny synthetic store."""
    from stairways.training.trainer import train

    root = tmp_path_factory.mktemp("tiny")
    config = write_tiny_config(root)
    make_store(config)
    result = train(load_config(config))
    assert result.status == "completed"
    return config, result.run_dir


def gates_yaml(root: Path, min_sharpe: float) -> Path:
    """Gates a four-session tiny run can pass: the plan's three, lowered; the new ones off
    (four sessions are below the bootstrap gates' minimum of 20)."""
    path = root / f"gates_{min_sharpe}.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "evaluation": {
                    "gates": {
                        "min_sharpe": min_sharpe,
                        "min_episode_reward_mean": -1e6,
                        "min_mean_episode_length": 0.0,
                        "significance": False,
                        "excess": False,
                        "min_earned_reward_mean": None,
                        "max_reward_pnl_disagreement": None,
                    }
                }
            }
        )
    )
    return path


def test_evaluate_writes_traces_of_every_step_metrics_and_gates(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tiny_run: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    config, run_dir = tiny_run
    code = stairways(monkeypatch, "evaluate", run_dir, "--config", gates_yaml(tmp_path, -1000.0))
    out = capsys.readouterr().out
    assert code == 0, out
    assert "buy_and_hold_NVDA" in out and "verdict: PASS" in out
    assert "data: SYNTHETIC" in out  # the tiny store holds generated bars

    trace = read_run_trace(run_dir, "test", "final")
    cfg = load_config(config)
    from stairways.data.normalise import Normaliser
    from stairways.evaluation.runner import open_panel

    panel = open_panel(cfg, "test", Normaliser.load(run_dir / "normaliser.json"))
    assert panel.n_sessions == 4
    assert len(trace.frame) == int(panel.lengths.sum())
    assert trace.frame.groupby("session").size().tolist() == panel.lengths.tolist()

    report = run_dir / "eval" / "test" / "final"
    metrics = json.loads((report / "metrics.json").read_text())
    for key in (
        "sum_daily_returns",
        "annualised_return",
        "mean_daily_pnl",
        "daily_sharpe",
        "daily_sharpe_low",
        "daily_sharpe_high",
        "negative_equity_steps",
        "capital_exhausted_after_sessions",
        "earned_reward_mean",
        "reward_pnl_disagreement",
        "sharpe",
        "sortino",
        "max_drawdown",
        "win_rate",
        "trades_per_day",
        "hold_rate",
        "turnover_per_day",
        "fees_share_of_gross",
        "mean_episode_length",
        "episode_reward_mean",
        "episode_reward_std",
    ):
        assert key in metrics["agent"], key
    assert set(metrics["baselines"]) == {"flat", "buy_and_hold_NVDA", "buy_and_hold_MSFT"}
    assert metrics["baselines"]["flat"]["total_pnl"] == 0.0
    assert metrics["baselines"]["flat"]["total_fees"] == 0.0
    assert metrics["agent"]["steps"] == len(trace.frame)
    assert metrics["synthetic"] is True
    assert metrics["labels"]["sum_daily_returns"] == "sum of daily returns on fixed capital"
    assert metrics["bootstrap"] == {"confidence": 0.95, "resamples": 10_000, "seed": 0}
    gates = json.loads((report / "gates.json").read_text())
    assert gates["passed"] is True
    assert [g["metric"] for g in gates["gates"]] == [
        "sharpe",
        "episode_reward_mean",
        "mean_episode_length",
    ]
    # every baseline is judged by the same gates; a gate one of them passes is not informative
    assert set(gates["baselines"]) == {"flat", "buy_and_hold_NVDA", "buy_and_hold_MSFT"}
    assert "mean_episode_length" in gates["not_informative"]
    assert "daily" in gates["sharpe"]["agent"]
    assert "Sharpe ratio, daily (annualised)" in out and "not informative" in out
    for name in ("flat", "buy_and_hold_NVDA", "buy_and_hold_MSFT"):
        assert (report / "baselines" / name / "traces.parquet").is_file()
    # The report folder was published whole: no staging or old copy is left behind.
    assert sorted(p.name for p in report.parent.iterdir()) == ["final"]


def test_evaluate_with_unreachable_gate_exits_3_and_still_writes_outputs(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tiny_run: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    _, run_dir = tiny_run
    code = stairways(
        monkeypatch,
        "evaluate",
        run_dir,
        "--checkpoint",
        "checkpoints/checkpoint_256.zip",
        "--config",
        gates_yaml(tmp_path, 10.0),
    )
    captured = capsys.readouterr()
    assert code == GATES_FAILED_EXIT_CODE
    assert "sharpe" in captured.err and "gates.json" in captured.err
    gates = json.loads((run_dir / "eval/test/checkpoint_256/gates.json").read_text())
    assert gates["passed"] is False
    assert gates["gates"][0]["passed"] is False


def test_replay_fills_equal_the_single_training_env(tiny_run: tuple[Path, Path]) -> None:
    """The batched replay and the single env (the training env class) give the same fills."""
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from stairways.data.normalise import Normaliser
    from stairways.env.trading_env import make_env
    from stairways.evaluation.replay import sequential_replay
    from stairways.evaluation.runner import (
        evaluate_policy_on_panel,
        load_model,
        open_panel,
        resolve_checkpoint,
        run_config,
    )
    from stairways.training.rundir import RunDirectory

    _, run_dir = tiny_run
    run_ = RunDirectory.open(run_dir)
    cfg = run_config(run_)
    ref = resolve_checkpoint(run_, "final")
    panel = open_panel(cfg, "test", Normaliser.load(run_.normaliser_path))
    model = load_model(cfg, ref.files.model)
    frame = evaluate_policy_on_panel(cfg, panel, ref, model=model).trace.frame
    norm = VecNormalize.load(
        str(ref.files.vecnormalize), DummyVecEnv([lambda: make_env(cfg, panel, "evaluation")])
    )
    state = json.loads(ref.files.reward_state.read_text())
    seq = sequential_replay(
        cfg,
        panel,
        lambda o, s, e: model.predict(o, state=s, episode_start=e, deterministic=True),
        normalize_obs=norm.normalize_obs,
        reward_state={"reward": state["reward"], "state": state["state"][:1]},
        sessions=[0, 3],
    )
    for one in seq:
        rows = frame[frame["session"] == one.session]
        np.testing.assert_array_equal(rows["action"], one.actions)
        np.testing.assert_array_equal(rows[["fill_qty__NVDA", "fill_qty__MSFT"]], one.fill_qty)
        np.testing.assert_allclose(rows["equity"], one.equity, rtol=0, atol=1e-9)


def test_trace_of_an_unevaluated_checkpoint_is_missing_with_the_command(
    tiny_run: tuple[Path, Path],
) -> None:
    _, run_dir = tiny_run
    with pytest.raises(MissingResourceError, match=r"stairways evaluate .* --split test"):
        read_run_trace(run_dir, "test", "checkpoint_999")


def test_bad_split_exits_2_and_missing_run_exits_1(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tiny_run: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    _, run_dir = tiny_run
    assert stairways(monkeypatch, "evaluate", run_dir, "--split", "nope") == 2
    assert "nope" in capsys.readouterr().err
    assert stairways(monkeypatch, "evaluate", tmp_path / "no_run") == 1
    assert "not a run directory" in capsys.readouterr().err
    assert stairways(monkeypatch, "evaluate", run_dir, "--checkpoint", "checkpoint_7.zip") == 1
    assert "checkpoint_256.zip" in capsys.readouterr().err


def test_default_gates_on_four_sessions_refuse_the_bootstrap_verdicts(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tiny_run: tuple[Path, Path],
) -> None:
    _, run_dir = tiny_run
    code = stairways(monkeypatch, "evaluate", run_dir)
    out = capsys.readouterr().out
    assert code == GATES_FAILED_EXIT_CODE
    gates = json.loads((run_dir / "eval/test/final/gates.json").read_text())
    by_metric = {g["metric"]: g for g in gates["gates"]}
    assert list(by_metric) == [
        "sharpe",
        "episode_reward_mean",
        "mean_episode_length",
        "significance",
        "excess_over_baselines",
        "earned_reward_mean",
        "reward_pnl_disagreement",
    ]
    for name in ("significance", "excess_over_baselines"):
        assert by_metric[name]["value"] is None and not by_metric[name]["passed"]
        assert "at least 20 sessions" in by_metric[name]["detail"]
    assert "at least 20 sessions" in out


def test_a_warm_evaluation_writes_what_a_cold_one_writes(tiny_run: tuple[Path, Path]) -> None:
    """The second evaluation in a process (panel and baselines from the in-process caches)
    writes the same traces, byte for byte, and the same figures as the first."""
    from stairways.data.panel_builder import clear_panel_cache, panel_cache_size
    from stairways.evaluation.baselines import clear_baseline_cache
    from stairways.evaluation.runner import evaluate_run

    _, run_dir = tiny_run
    clear_panel_cache()
    clear_baseline_cache()
    outputs = []
    for _ in range(2):
        report = evaluate_run(run_dir, checkpoint="final", split="test")
        files = {
            str(p.relative_to(report.out_dir)): p.read_bytes()
            for p in sorted(report.out_dir.rglob("*.parquet"))
        }
        metrics = json.loads((report.out_dir / "metrics.json").read_text())
        for volatile in ("timings", "test_looks"):
            metrics.pop(volatile)
        outputs.append((report.timings["baselines_cached"], files, metrics))
    (cold_cached, cold_files, cold_metrics), (warm_cached, warm_files, warm_metrics) = outputs
    assert (cold_cached, warm_cached) == (0.0, 1.0)
    assert panel_cache_size() >= 1
    assert len(cold_files) == 4  # the agent and three baselines
    assert warm_files == cold_files
    assert warm_metrics == cold_metrics
