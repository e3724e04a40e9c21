from pathlib import Path

import numpy as np
import pytest

from stairways.errors import DataValidationError, MissingResourceError
from stairways.evaluation.traces import (
    Trace,
    read_run_trace,
    read_trace,
    trace_path,
    validate_trace,
    write_trace,
)
from tests.unit.evaluation.factory import make_trace


def test_written_trace_reads_back_identical_with_metadata(tmp_path: Path) -> None:
    trace = make_trace([[1.0, 2.0, 3.0], [4.0, -1.0]], fill_qty=[[1.0, 0.0, -1.0], [0.0, 0.0]])
    path = write_trace(trace, tmp_path / "traces.parquet")
    back = read_trace(path)
    assert back.meta == trace.meta
    assert len(back.frame) == 5
    assert list(back.frame.columns) == list(trace.frame.columns)
    np.testing.assert_array_equal(back.frame["step"], [0, 1, 2, 0, 1])
    assert str(back.frame["ts"].dtype) == "datetime64[ns, UTC]"
    assert back.frame["fill_price__NVDA"].isna().sum() == 3


def test_missing_trace_then_missing_resource_error_names_run_and_command(tmp_path: Path) -> None:
    with pytest.raises(MissingResourceError) as err:
        read_run_trace(tmp_path / "runs" / "r1", "test", "final")
    msg = str(err.value)
    assert "eval/test/final/traces.parquet" in msg
    assert f"stairways evaluate {tmp_path / 'runs' / 'r1'} --split test --checkpoint final" in msg


def test_missing_column_then_validation_error_names_column() -> None:
    trace = make_trace([[1.0, 2.0]])
    with pytest.raises(DataValidationError, match="position__MSFT"):
        validate_trace(trace.frame.drop(columns=["position__MSFT"]), trace.meta, "t.parquet")


def test_step_gap_then_validation_error_names_row() -> None:
    trace = make_trace([[1.0, 2.0, 3.0]])
    frame = trace.frame.copy()
    frame.loc[2, "step"] = 5
    with pytest.raises(DataValidationError, match="row 2"):
        validate_trace(frame, trace.meta, "t.parquet")


def test_nan_equity_then_validation_error() -> None:
    trace = make_trace([[1.0, 2.0, 3.0]])
    frame = trace.frame.copy()
    frame.loc[1, "equity"] = np.nan
    with pytest.raises(DataValidationError, match="equity row 1"):
        validate_trace(frame, trace.meta, "t.parquet")


def test_negative_fee_then_validation_error_and_nothing_written(tmp_path: Path) -> None:
    trace = make_trace([[1.0, 2.0]])
    frame = trace.frame.copy()
    frame.loc[1, "fees"] = -1.0
    target = tmp_path / "traces.parquet"
    with pytest.raises(DataValidationError, match="fees row 1 is negative"):
        write_trace(Trace(frame=frame, meta=trace.meta), target)
    assert not target.exists()


def test_parquet_without_trace_metadata_then_validation_error(tmp_path: Path) -> None:
    path = tmp_path / "foreign.parquet"
    make_trace([[1.0, 2.0]]).frame.to_parquet(path)
    with pytest.raises(DataValidationError, match="metadata"):
        read_trace(path)


def test_baseline_traces_live_under_the_checkpoint_report(tmp_path: Path) -> None:
    agent = trace_path(tmp_path, "test", "final")
    flat = trace_path(tmp_path, "test", "final", "flat")
    assert agent == tmp_path / "eval" / "test" / "final" / "traces.parquet"
    assert flat == tmp_path / "eval" / "test" / "final" / "baselines" / "flat" / "traces.parquet"
