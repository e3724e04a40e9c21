import json
import math
from pathlib import Path

import pytest

from stairways.analysis.checkpoints import rank_checkpoints, rank_run_checkpoints
from stairways.errors import DataValidationError, InputError, MissingResourceError
from stairways.training.checkpoints import checkpoint_steps, list_checkpoints
from stairways.training.monitor import parse_monitor, reward_at


def _monitor_text(rows: list[tuple[float, int]], extra: str = "") -> str:
    head = "#" + json.dumps({"t_start": 1700000000.0, "env_id": "stairways"})
    cols = "r,l,t" + ("," + extra if extra else "")
    lines = [head, cols]
    for i, (r, length) in enumerate(rows):
        line = f"{r},{length},{i + 1.0}"
        if extra:
            line += f",{(i + 1) * 1000}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def _run(tmp_path: Path, rows: list[tuple[float, int]], steps: list[int]) -> Path:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "monitor.csv").write_text(_monitor_text(rows))
    for s in steps:
        (run / "checkpoints" / f"checkpoint_{s}.zip").write_bytes(b"zip")
        (run / "checkpoints" / f"vecnormalize_{s}.pkl").write_bytes(b"pkl")
    return run


def test_checkpoint_score_is_the_rolling_mean_of_episodes_finished_by_then(tmp_path: Path) -> None:
    # episodes of 100 steps: rewards 1..10 end at steps 100, 200, ..., 1000
    rows = [(float(r), 100) for r in range(1, 11)]
    run = _run(tmp_path, rows, [250, 600, 1000])
    table = rank_run_checkpoints(run, top_k=10, window=3)
    by_steps = table.set_index("steps")
    assert by_steps.loc[250, "reward_mean"] == pytest.approx(1.5)  # episodes 1, 2
    assert by_steps.loc[600, "reward_mean"] == pytest.approx(5.0)  # episodes 4, 5, 6
    assert by_steps.loc[1000, "reward_mean"] == pytest.approx(9.0)  # episodes 8, 9, 10
    assert table["steps"].tolist() == [1000, 600, 250]
    assert table["rank"].tolist() == [1, 2, 3]


def test_top_k_keeps_the_best_and_a_falling_curve_ranks_early_checkpoints_first(
    tmp_path: Path,
) -> None:
    rows = [(float(10 - r), 100) for r in range(10)]  # rewards fall 10, 9, ..., 1
    run = _run(tmp_path, rows, [100, 300, 500, 700, 900])
    table = rank_run_checkpoints(run, top_k=2, window=1)
    assert table["steps"].tolist() == [100, 300]
    assert table["reward_mean"].tolist() == [10.0, 8.0]


def test_checkpoint_saved_before_any_episode_ranks_last_without_a_score(tmp_path: Path) -> None:
    run = _run(tmp_path, [(-5.0, 100), (-4.0, 100)], [50, 200])
    table = rank_run_checkpoints(run, top_k=10, window=10)
    assert table["steps"].tolist() == [200, 50]
    assert math.isnan(table.iloc[1]["reward_mean"])
    assert table.iloc[1]["episodes_in_window"] == 0


def test_ties_go_to_the_later_checkpoint(tmp_path: Path) -> None:
    run = _run(tmp_path, [(1.0, 100)] * 4, [100, 200, 300])
    assert rank_run_checkpoints(run, window=100)["steps"].tolist() == [300, 200, 100]


def test_a_timestep_column_is_preferred_over_summed_lengths() -> None:
    text = _monitor_text([(1.0, 10), (2.0, 10)], extra="timesteps")
    monitor = parse_monitor(text, "m.csv")
    assert monitor.timesteps_source == "timesteps"
    assert monitor.episodes["end_step"].tolist() == [1000.0, 2000.0]
    assert reward_at(monitor, 1500, window=5) == (1.0, 1)


def test_monitor_rows_are_taken_in_time_order() -> None:
    text = "\n".join(['#{"t_start": 0}', "r,l,t", "5.0,10,2.0", "1.0,10,1.0", ""])
    monitor = parse_monitor(text, "m.csv")
    assert monitor.episodes["r"].tolist() == [1.0, 5.0]
    assert reward_at(monitor, 10, window=5) == (1.0, 1)


def test_malformed_monitor_names_the_file_line_and_column() -> None:
    text = "\n".join(['#{"t_start": 0}', "r,l,t", "1.0,10,1.0", "oops,10,2.0", ""])
    with pytest.raises(DataValidationError, match=r"m\.csv: line 4 column 'r'"):
        parse_monitor(text, "m.csv")
    with pytest.raises(DataValidationError, match="header"):
        parse_monitor("r,l,t\n1,2,3\n", "m.csv")


def test_missing_run_names_the_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(MissingResourceError, match=str(missing)):
        rank_run_checkpoints(missing)


def test_run_without_checkpoints_is_a_missing_resource(tmp_path: Path) -> None:
    run = _run(tmp_path, [(1.0, 10)], [])
    with pytest.raises(MissingResourceError, match=r"checkpoint_<steps>\.zip"):
        list_checkpoints(run)


def test_run_without_monitor_is_a_missing_resource(tmp_path: Path) -> None:
    run = _run(tmp_path, [(1.0, 10)], [100])
    (run / "monitor.csv").unlink()
    with pytest.raises(MissingResourceError, match=r"monitor\.csv"):
        rank_run_checkpoints(run)


def test_checkpoint_steps_are_read_from_the_file_name() -> None:
    assert checkpoint_steps(Path("checkpoints/checkpoint_5120.zip")) == 5120


def test_rank_rejects_a_zero_top_k(tmp_path: Path) -> None:
    run = _run(tmp_path, [(1.0, 10)], [100])
    monitor = parse_monitor((run / "monitor.csv").read_text(), "m")
    with pytest.raises(InputError, match="top_k"):
        rank_checkpoints(monitor, list_checkpoints(run), top_k=0)
