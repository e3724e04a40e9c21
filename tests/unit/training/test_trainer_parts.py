from pathlib import Path

import pytest

from stairways.errors import InputError
from stairways.training.checkpoints import companion_files
from stairways.training.monitor import MONITOR_KEYS, truncate_monitor


def test_checkpoint_companions_share_its_timesteps(tmp_path: Path) -> None:
    files = companion_files(tmp_path / "checkpoints" / "checkpoint_3072.zip")
    assert files.timesteps == 3072
    assert files.vecnormalize.name == "vecnormalize_3072.pkl"
    assert files.reward_state.name == "reward_state_3072.json"


def test_final_model_companions_are_the_final_files(tmp_path: Path) -> None:
    files = companion_files(tmp_path / "final_model.zip")
    assert files.vecnormalize == tmp_path / "final_vecnormalize.pkl"
    assert files.reward_state == tmp_path / "final_reward_state.json"


def test_other_model_names_look_for_suffixed_companions(tmp_path: Path) -> None:
    files = companion_files(tmp_path / "base.zip")
    assert files.vecnormalize == tmp_path / "base_vecnormalize.pkl"


def _monitor(path: Path, rows: list[str]) -> None:
    header = ",".join(["r", "l", "t", *MONITOR_KEYS])
    path.write_text('#{"t_start": 5.0, "env_id": "x"}\n' + header + "\n" + "".join(rows))


def _row(reward: float, timesteps: int) -> str:
    return f"{reward},10,1.0,0,0,0,0,0,0,0,{timesteps}\n"


def test_truncation_keeps_rows_up_to_the_checkpoint_and_the_header(tmp_path: Path) -> None:
    p = tmp_path / "monitor.csv"
    _monitor(p, [_row(1.0, 100), _row(2.0, 200), _row(3.0, 300), "4.0,10"])
    header = truncate_monitor(p, 200)
    assert header == {"t_start": 5.0, "env_id": "x"}
    lines = p.read_text().splitlines()
    assert len(lines) == 4
    assert lines[-1].startswith("2.0,")


def test_truncation_refuses_a_monitor_with_other_columns(tmp_path: Path) -> None:
    p = tmp_path / "monitor.csv"
    p.write_text('#{"t_start": 5.0}\nr,l,t\n1.0,10,1.0\n')
    with pytest.raises(InputError, match="not written by this version"):
        truncate_monitor(p, 200)
