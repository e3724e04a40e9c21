from pathlib import Path

from stairways.evaluation.diagnostics.decision_matrix import Verdict
from stairways.evaluation.diagnostics.freeze_early import (
    CheckpointOutcome,
    FreezeEarlyResult,
    GeneralisationCheck,
    judge_freeze_early,
)
from stairways.evaluation.diagnostics.leakage import LeakageArm, LeakageResult, judge_leakage
from stairways.evaluation.diagnostics.report import (
    SuiteResults,
    build_blocks,
    findings_from,
    render_html,
    render_markdown,
    suite_passed,
    write_report,
)
from stairways.evaluation.diagnostics.reward_abc import ArmResult, RewardABCResult, judge_abc
from stairways.evaluation.diagnostics.settings import (
    FreezeEarlyConfig,
    LeakageConfig,
    RewardABCConfig,
)
from tests.unit.evaluation.diagnostics.helpers import outcomes


def _abc(shim_curve: list[float], internal_curve: list[float]) -> RewardABCResult:
    arms = tuple(
        ArmResult(
            name=name,
            config=f"{name}.yaml",
            run_dir=f"runs/{name}",
            training_rewards=tuple(curve),
            training_lengths=tuple([390] * len(curve)),
            outcomes=outcomes([0.2, 0.4], [1.0, 3.0]),
            metrics={"sharpe": 0.5},
        )
        for name, curve in (
            ("reward_v3", [1.0, 2.0]),
            ("reward_shim", shim_curve),
            ("reward_internal", internal_curve),
        )
    )
    return RewardABCResult(
        eval_split="eval_feb2024",
        evaluation_reward="v3 (internal)",
        arms=arms,
        judgement=judge_abc(arms, RewardABCConfig()),
    )


def _freeze(rewards: list[float], training: float, in_sample: bool, oos: bool) -> FreezeEarlyResult:
    cfg = FreezeEarlyConfig()
    ckpts = tuple(
        CheckpointOutcome(
            target_steps=s,
            steps=s,
            checkpoint=f"checkpoint_{s}.zip",
            training_reward=training,
            training_episodes=20,
            outcomes=outcomes([r, r + 0.1, r - 0.1], [5.0, 6.0, 4.0]),
        )
        for s, r in zip((5000, 10000, 15000), rewards, strict=True)
    )
    return FreezeEarlyResult(
        run_dir="runs/freeze",
        eval_split="eval_feb2024",
        min_episode_reward_mean=cfg.min_episode_reward_mean,
        min_episode_length=cfg.min_episode_length,
        checkpoints=ckpts,
        generalisation=GeneralisationCheck(
            in_sample_split="train",
            out_of_sample_split="eval_feb2024",
            in_sample_passed=in_sample,
            out_of_sample_passed=oos,
            in_sample_gates={},
            out_of_sample_gates={},
        ),
        judgement=judge_freeze_early(ckpts, cfg),
    )


def _leakage(control_edge: float, timesteps: int = 15_000) -> LeakageResult:
    cfg = LeakageConfig()
    base = {0: [1.0, -1.0], 1: [0.5, 0.0], 2: [2.0, -0.5]}
    lagged = {0: [0.9, -1.2], 1: [0.4, 0.1], 2: [1.9, -0.3]}
    wobble = {0: 0.3, 1: -0.2, 2: 0.1}
    arms = tuple(
        LeakageArm(
            name=name,
            seed=seed,
            description=name,
            run_dir=f"{name}-{seed}",
            outcomes=outcomes([0.0] * 2, pnl),
        )
        for name, runs in (
            ("baseline", base),
            ("lagged", lagged),
            (
                "lookahead",
                {k: [x + control_edge + wobble[k] for x in v] for k, v in base.items()},
            ),
        )
        for seed, pnl in runs.items()
    )
    return LeakageResult(
        eval_split="eval_feb2024",
        lag_bars=1,
        lookahead_bars=1,
        shuffled_offsets=True,
        max_start_offset=60,
        total_timesteps=timesteps,
        seeds=(0, 1, 2),
        arms=arms,
        judgement=judge_leakage(arms, cfg, timesteps),
    )


def _suite(**parts: object) -> SuiteResults:
    return SuiteResults(
        config_name="t",
        eval_split="eval_feb2024",
        seed=0,
        total_timesteps=15000,
        **parts,  # type: ignore[arg-type]
    )


def test_all_passing_suite_reports_pass_everywhere_and_no_interpretation(tmp_path: Path) -> None:
    suite = _suite(
        freeze=_freeze([1.0, 1.0, 1.0], 1.0, True, True),
        abc=_abc([0.1, 0.2], [0.1, 0.2]),
        leakage=_leakage(50.0),
    )
    assert suite_passed(suite)
    md, page = write_report(suite, tmp_path)
    text = md.read_text()
    assert "| freeze-early validity | PASS |" in text
    assert "| leakage audit | PASS |" in text
    assert "No rule of the decision matrix is triggered" in text
    assert "TRIGGERED" not in page.read_text()


def test_shim_internal_disagreement_is_reported_as_wrapper_bug_failure() -> None:
    suite = _suite(abc=_abc([0.1, 0.2], [0.1, 0.25]))
    assert not suite_passed(suite)
    text = render_markdown(build_blocks(suite))
    assert "| reward A/B/C | FAIL | WRAPPER BUG" in text
    assert "| shim and internal reward disagree | TRIGGERED | wrapper bug |" in text
    page = render_html(build_blocks(suite), "r")
    assert '<td class="fail">TRIGGERED</td>' in page


def test_undetected_control_is_reported_as_audit_broken() -> None:
    suite = _suite(leakage=_leakage(0.0))
    assert suite.leakage is not None and suite.leakage.judgement.verdict == Verdict.AUDIT_BROKEN
    text = render_markdown(build_blocks(suite))
    assert "| leakage audit | AUDIT BROKEN | AUDIT BROKEN" in text
    assert "| planted look-ahead (positive control) not detected | TRIGGERED |" in text
    assert (
        "| leakage found: the agent does better with features lagged one more bar | undetermined |"
        in text
    )


def test_freeze_failure_with_good_training_reward_reads_as_noise_and_overfit_is_flagged() -> None:
    suite = _suite(freeze=_freeze([0.1, 0.2, 0.1], 0.9, True, False))
    f = findings_from(suite)
    assert f.freeze_early_passed is False and f.training_reward_fine is True
    text = render_markdown(build_blocks(suite))
    assert "early rewards are noise (freeze-early fails while training reward looks fine)" in text
    assert "overfitting to a regime" in text.split("## Interpretation")[1].split("|")[0]


def test_parts_not_run_are_marked_and_leave_rules_undetermined() -> None:
    suite = _suite()
    text = render_markdown(build_blocks(suite))
    assert text.count("NOT RUN") == 5
    assert "| shim and internal reward disagree | undetermined |" in text
    assert suite_passed(suite)


def test_html_escapes_cell_text() -> None:
    page = render_html(build_blocks(_suite(abc=_abc([0.1], [0.1]))), "<title>")
    assert "&lt;title&gt;" in page and "<title><title>" not in page


def test_leakage_table_shows_every_seed_and_the_t_across_seeds() -> None:
    text = render_markdown(build_blocks(_suite(leakage=_leakage(50.0))))
    assert "seed 0: 0 , seed 1: 0.25, seed 2: 0.75" not in text  # numbers are formatted plainly
    assert "| lookahead | lookahead | seed 0: 50.3, seed 1: 50.05, seed 2: 50.85 |" in text
    assert "t (across seeds)" in text and "critical t" in text


def test_a_short_leakage_run_reports_insufficient_budget_and_the_suite_does_not_pass() -> None:
    suite = _suite(leakage=_leakage(50.0, timesteps=1_500))
    assert not suite_passed(suite)
    text = render_markdown(build_blocks(suite))
    assert "| leakage audit | INSUFFICIENT BUDGET | INSUFFICIENT BUDGET" in text
    assert '<td class="broken">INSUFFICIENT BUDGET</td>' in render_html(build_blocks(suite), "r")
