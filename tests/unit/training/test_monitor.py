"""One rule for a damaged monitor.csv, the same for every reader."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stairways.analysis.checkpoints import rank_run_checkpoints
from stairways.errors import DataValidationError, MissingResourceError
from stairways.training.monitor import (
    MONITOR_KEYS,
    parse_monitor,
    read_monitor,
    truncate_monitor,
)
from stairways.training.rundir import DataProvenance, Manifest, RunDirectory
from stairways.training.runs import list_runs

HEADER = '#{"t_start": 5.0, "env_id": "x"}\n' + ",".join(["r", "l", "t", *MONITOR_KEYS]) + "\n"


def _line(reward: float, timesteps: int) -> str:
    # SB3's csv writer ends every line with \r\n
    return f"{reward},10,{timesteps / 100},0,0,0,0,0,0,0,{timesteps}\r\n"


def _run(tmp_path: Path, monitor_text: str) -> RunDirectory:
    run = RunDirectory.create(tmp_path, "cfg", 0, datetime(2024, 1, 2, tzinfo=UTC))
    run.write_manifest(
        Manifest(
            run_name=run.name,
            config_name="cfg",
            algo="ppo",
            seed=0,
            total_timesteps=1000,
            start_time="2024-01-02T00:00:00+00:00",
            git_commit="abc",
            git_dirty=False,
            python="3.11",
            platform="linux",
            versions={},
            torch_threads=1,
            data=DataProvenance(
                symbols=["NVDA", "MSFT"],
                split="train",
                split_range={},
                splits={},
                panel_fingerprint="f",
                n_sessions=1,
                synthetic=True,
                store_path="s",
            ),
        )
    )
    run.monitor_path.write_text(monitor_text, newline="")
    (run.checkpoints_dir).mkdir()
    (run.checkpoints_dir / "checkpoint_300.zip").write_bytes(b"zip")
    return run


def test_a_line_cut_short_by_a_kill_is_dropped_the_same_way_by_runs_list_and_trace(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = HEADER + _line(1.0, 100) + _line(2.0, 200) + _line(4.0, 300)[:12]
    run = _run(tmp_path, text)
    with caplog.at_level(logging.WARNING, logger="stairways.training.monitor"):
        (summary,) = list_runs(tmp_path, window=10)
        ranking = rank_run_checkpoints(run.path, window=10)
    assert summary.problem is None
    assert summary.episodes == 2 and summary.rolling_reward == 1.5
    assert ranking["episodes_in_window"].tolist() == [2]
    assert ranking["reward_mean"].tolist() == [1.5]
    assert caplog.text.count("line 5 has no newline") == 2


def test_a_damaged_middle_line_is_the_same_error_for_runs_list_and_trace(tmp_path: Path) -> None:
    text = HEADER + _line(1.0, 100) + "2.0,10\r\n" + _line(4.0, 300)
    run = _run(tmp_path, text)
    (summary,) = list_runs(tmp_path, window=10)
    with pytest.raises(DataValidationError) as err:
        rank_run_checkpoints(run.path, window=10)
    assert summary.problem == str(err.value)
    assert "line 4 has 2 fields, the header has 11" in str(err.value)


def test_a_complete_file_is_read_whole() -> None:
    log = parse_monitor(HEADER + _line(1.0, 100) + _line(2.0, 200), "m.csv")
    assert log.rewards == [1.0, 2.0]
    assert log.dropped_last_line is None
    assert log.episodes["end_step"].tolist() == [100.0, 200.0]


@settings(max_examples=60, deadline=None)
@given(
    rewards=st.lists(
        st.floats(min_value=-1e3, max_value=1e3, allow_nan=False), min_size=1, max_size=6
    ),
    cut=st.integers(min_value=0, max_value=60),
)
def test_a_cut_last_line_is_never_read_as_a_number(rewards: list[float], cut: int) -> None:
    lines = [_line(round(r, 6), 100 * (i + 1)) for i, r in enumerate(rewards)]
    last = lines[-1]
    cut = min(cut, len(last) - 1)  # at least the newline is lost
    text = HEADER + "".join(lines[:-1]) + last[:cut]
    log = parse_monitor(text, "m.csv")
    # every row read is one that was written whole; the cut one never appears
    assert log.rewards == [round(r, 6) for r in rewards[:-1]]
    assert log.episodes["timesteps"].tolist() == [100 * (i + 1) for i in range(len(rewards) - 1)]


def test_resume_truncation_drops_later_episodes_and_the_cut_line(tmp_path: Path) -> None:
    p = tmp_path / "monitor.csv"
    p.write_text(HEADER + _line(1.0, 100) + _line(2.0, 200) + _line(3.0, 300)[:20], newline="")
    header = truncate_monitor(p, 150)
    assert header == {"t_start": 5.0, "env_id": "x"}
    assert p.read_bytes().decode() == HEADER + _line(1.0, 100)
    untouched = p.stat().st_mtime_ns
    truncate_monitor(p, 150)  # nothing to drop: the file is left as it is
    assert p.stat().st_mtime_ns == untouched


def test_a_missing_monitor_names_the_run(tmp_path: Path) -> None:
    with pytest.raises(MissingResourceError, match=r"has no monitor\.csv"):
        read_monitor(tmp_path)


def test_a_binary_monitor_is_a_clear_error(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "monitor.csv").write_bytes(b"\x80\x81\xff" * 10)
    with pytest.raises(DataValidationError, match="not a text file"):
        read_monitor(run)


def test_the_header_must_be_a_json_object() -> None:
    with pytest.raises(DataValidationError, match="line 1 header"):
        parse_monitor("#[1, 2]\nr,l,t\n", "m.csv")
    assert json.loads(HEADER[1 : HEADER.index("\n")])["t_start"] == 5.0
