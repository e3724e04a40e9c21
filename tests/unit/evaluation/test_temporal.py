import os
from datetime import date
from pathlib import Path

import pytest

from stairways.config import StairwaysConfig, load_config
from stairways.configbase import validate_model
from stairways.errors import ConfigError, InputError
from stairways.evaluation.jobs import worker_count
from stairways.evaluation.temporal import pair_config, select_pairs


def test_default_pairs_put_the_plans_out_of_sample_test_first() -> None:
    cfg = StairwaysConfig()
    assert select_pairs(cfg, None) == [
        "train2022_2023_test2024",
        "train2022_test2023",
        "train2023_test2024",
    ]
    primary = cfg.evaluation.temporal["train2022_2023_test2024"]
    assert (primary.train.start, primary.train.end) == (date(2022, 1, 3), date(2023, 12, 29))
    assert (primary.test.start, primary.test.end) == (date(2024, 1, 2), date(2024, 12, 31))


def test_unknown_pair_then_input_error_lists_the_configured_ones() -> None:
    with pytest.raises(InputError, match="train2022_test2023"):
        select_pairs(StairwaysConfig(), ["nope"])


def test_pair_config_trains_on_the_pair_and_protects_its_test_range(tmp_path: Path) -> None:
    cfg = StairwaysConfig()
    pair = cfg.evaluation.temporal["train2022_test2023"]
    data = pair_config(cfg, pair, tmp_path)
    out = validate_model(StairwaysConfig, data, "test")
    assert set(out.data.splits) == {"train", "test"}
    assert out.data.splits["train"] == pair.train
    assert out.data.splits["test"] == pair.test
    assert out.data.protected_splits == ("test",)
    assert out.data.features.normalisation_split == "train"
    assert out.training.split == "train"
    assert out.training.runs_dir == tmp_path
    assert out.evaluation.split == "test"


def test_pair_whose_training_ends_after_test_starts_is_refused_at_load(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "evaluation:\n"
        "  temporal:\n"
        "    bad:\n"
        "      train: {start: 2023-01-03, end: 2024-03-01}\n"
        "      test: {start: 2024-01-02, end: 2024-12-31}\n"
        "  temporal_primary: bad\n"
    )
    with pytest.raises(ConfigError, match=r"evaluation\.temporal\.bad.*must end before test"):
        load_config(path)


def test_unknown_primary_pair_is_refused_at_load() -> None:
    with pytest.raises(ConfigError, match="temporal_primary"):
        load_config(None, {"evaluation.temporal_primary": "missing"})


def test_seed_sweep_settings_refuse_repeated_seeds() -> None:
    with pytest.raises(ConfigError, match="distinct"):
        load_config(None, {"evaluation.seeds.seeds": [1, 1]})


def test_worker_count_is_the_smaller_of_jobs_and_cores() -> None:
    assert worker_count(1) == 1
    assert worker_count(1000) == (os.cpu_count() or 1)
    assert worker_count(4, limit=1) == 1
