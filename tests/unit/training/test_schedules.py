import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stairways.configbase import validate_model
from stairways.errors import ConfigError
from stairways.training.schedules import (
    LinearSchedule,
    PiecewiseSchedule,
    StepSchedule,
    TimestepClock,
    schedule_bounds,
    schedule_function,
)
from stairways.training.settings import TrainingConfig


def test_number_in_yaml_is_a_constant_schedule() -> None:
    fn = schedule_function(3e-4, total_timesteps=100)
    assert [fn(0), fn(50), fn(10**9)] == [3e-4, 3e-4, 3e-4]


def test_linear_without_end_step_spans_the_whole_run() -> None:
    fn = schedule_function(LinearSchedule(start=1.0, end=0.0), total_timesteps=1000)
    assert fn(0) == 1.0
    assert fn(250) == pytest.approx(0.75)
    assert fn(1000) == 0.0
    assert fn(5000) == 0.0


def test_piecewise_holds_each_value_until_the_next_point() -> None:
    spec = PiecewiseSchedule(points=((0, 1e-4), (50_000, 7e-5), (150_000, 3e-5)))
    fn = schedule_function(spec, total_timesteps=10)
    assert fn(49_999) == 1e-4
    assert fn(50_000) == 7e-5
    assert fn(149_999) == 7e-5
    assert fn(150_000) == 3e-5


def test_piecewise_with_interpolation_joins_points_by_lines() -> None:
    spec = PiecewiseSchedule(points=((0, 1.0), (100, 3.0)), interpolate=True)
    fn = schedule_function(spec, total_timesteps=10)
    assert fn(50) == pytest.approx(2.0)
    assert fn(200) == 3.0


def test_piecewise_not_starting_at_zero_is_refused_with_the_key_path() -> None:
    with pytest.raises(ConfigError, match=r"learning_rate.*first point must be at timestep 0"):
        validate_model(
            TrainingConfig,
            {"learning_rate": {"kind": "piecewise", "points": [[10, 1e-4]]}},
            "t.yaml",
        )


def test_learning_rate_schedule_reaching_zero_is_refused() -> None:
    with pytest.raises(ConfigError, match="learning_rate must stay in"):
        validate_model(
            TrainingConfig, {"learning_rate": {"kind": "linear", "start": 1e-3, "end": 0}}, "t"
        )


@given(
    start=st.floats(1e-6, 1.0),
    end=st.floats(1e-6, 1.0),
    total=st.integers(1, 10**7),
    step=st.integers(0, 2 * 10**7),
)
def test_linear_value_stays_between_its_endpoints(
    start: float, end: float, total: int, step: int
) -> None:
    fn = schedule_function(LinearSchedule(start=start, end=end), total_timesteps=total)
    lo, hi = schedule_bounds(LinearSchedule(start=start, end=end))
    assert lo - 1e-12 <= fn(step) <= hi + 1e-12


@given(
    values=st.lists(st.floats(1e-6, 1.0), min_size=1, max_size=6),
    gaps=st.lists(st.integers(1, 10**6), min_size=6, max_size=6),
    step=st.integers(0, 10**7),
)
def test_piecewise_value_is_the_last_point_at_or_before_the_step(
    values: list[float], gaps: list[int], step: int
) -> None:
    at = [0]
    for g in gaps[: len(values) - 1]:
        at.append(at[-1] + g)
    spec = PiecewiseSchedule(points=tuple(zip(at, values, strict=True)))
    expected = [v for a, v in zip(at, values, strict=True) if a <= step][-1]
    assert schedule_function(spec, 1)(step) == expected


def test_step_schedule_reads_the_clock_not_sb3_progress() -> None:
    clock = TimestepClock()
    spec = PiecewiseSchedule(points=((0, 1.0), (100, 2.0)))
    sched = StepSchedule(schedule_function(spec, 1000), clock)
    assert sched(1.0) == 1.0
    clock.timesteps = 150
    # SB3 would pass progress 1.0 again at the start of a resumed learn() call.
    assert sched(1.0) == 2.0


def test_step_schedule_override_replaces_the_base_value_when_set() -> None:
    clock = TimestepClock(10)
    sched = StepSchedule(lambda s: 5.0, clock, override=lambda s: None if s < 100 else 1.0)
    assert sched(0.3) == 5.0
    clock.timesteps = 100
    assert sched(0.3) == 1.0


def test_step_schedule_survives_pickling_as_sb3_saves_it() -> None:
    import cloudpickle

    clock = TimestepClock(40)
    sched = StepSchedule(schedule_function(LinearSchedule(start=1.0, end=0.0), 80), clock)
    restored = pickle.loads(cloudpickle.dumps(sched))
    assert restored(1.0) == pytest.approx(0.5)


def test_schedules_survive_the_resolved_config_round_trip(tmp_path: object) -> None:
    from pathlib import Path

    from stairways.config import dump_config, load_config

    cfg = load_config(
        None,
        {
            "training.learning_rate": {"kind": "piecewise", "points": [[0, 1e-4], [500, 5e-5]]},
            "training.clip_range": {"kind": "linear", "start": 0.3, "end": 0.1},
        },
    )
    path = Path(str(tmp_path)) / "c.yaml"
    path.write_text(dump_config(cfg))
    again = load_config(path)
    assert again.training == cfg.training
    assert isinstance(again.training.learning_rate, PiecewiseSchedule)
