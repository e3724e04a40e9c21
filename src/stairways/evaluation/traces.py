"""The trace format: one row per environment step of a replayed evaluation.

Every analysis (metrics, gates, action-trace notebooks, reports) reads this one format. A trace
is a Parquet file whose schema metadata (key ``stairways.trace``) records the tickers, the reward
components, the starting capital and where the trace came from. Columns:

- ``session_date`` (datetime64[ns], midnight), ``session`` (int64, index in the split),
  ``step`` (int64, 0-based within the session), ``ts`` (datetime64[ns, UTC], the bar at which
  the action was decided), ``action`` (int64, index in the action set), ``action_changed``
  (int64, 1 when the action changed a target, 0 when it held)
- ``step_pnl`` (equity change of the step, net of every cost), ``gross_pnl`` (before costs:
  ``step_pnl + fees + spread_cost + impact_cost``), ``fees`` (commissions charged on top of
  fill prices), ``spread_cost`` and ``impact_cost`` (inside fill prices), ``notional`` (traded
  value at fill prices), ``equity`` (after the step), ``drawdown`` (``1 - equity / peak`` of
  the session), ``reward``
- per ticker ``SYM``: ``target__SYM`` (target in {-1, 0, +1} of the full size),
  ``position__SYM`` (shares held after the step), ``price__SYM`` (mark: the bar close),
  ``fill_qty__SYM`` (signed shares filled in the step), ``fill_price__SYM`` (NaN when nothing
  filled)
- per reward component ``name``: ``reward__name``
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from stairways.errors import DataValidationError, MissingResourceError

log = logging.getLogger(__name__)

TRACE_FILE = "traces.parquet"
TRACE_SCHEMA_VERSION = 1
META_KEY = b"stairways.trace"
SEP = "__"

INT_COLUMNS: tuple[str, ...] = ("session", "step", "action", "action_changed")
FLOAT_COLUMNS: tuple[str, ...] = (
    "step_pnl",
    "gross_pnl",
    "fees",
    "spread_cost",
    "impact_cost",
    "notional",
    "equity",
    "drawdown",
    "reward",
)
TICKER_FIELDS: tuple[str, ...] = (
    "target",
    "position",
    "price",
    "fill_qty",
    "fill_price",
)
COST_COLUMNS: tuple[str, ...] = ("fees", "spread_cost", "impact_cost", "notional")
# Columns that may hold NaN: a fill price only exists when something filled.
NULLABLE_TICKER_FIELDS: frozenset[str] = frozenset({"fill_price"})


def ticker_column(field_name: str, symbol: str) -> str:
    """Column name of a per-ticker field, for example ``position__NVDA``."""
    return f"{field_name}{SEP}{symbol}"


def component_column(name: str) -> str:
    """Column name of a reward component, for example ``reward__pnl``."""
    return f"reward{SEP}{name}"


@dataclass(frozen=True)
class TraceMeta:
    """What a trace is: tickers, reward components, capital and provenance.

    :param symbols: tickers in column order
    :param reward_components: names of the reward components, in column order
    :param starting_capital: equity at the start of every session (episode)
    :param split: evaluated split name
    :param policy: ``agent`` or a baseline name (``flat``, ``buy_and_hold_NVDA``, ...)
    :param checkpoint: checkpoint name or file the agent was loaded from ("" for baselines)
    :param run: run directory the trace belongs to ("" when not from a run)
    :param extra: free-form provenance (panel fingerprint, synthetic flag, ...)
    """

    symbols: tuple[str, ...]
    reward_components: tuple[str, ...]
    starting_capital: float
    split: str
    policy: str = "agent"
    checkpoint: str = ""
    run: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    schema_version: int = TRACE_SCHEMA_VERSION

    def to_json(self) -> str:
        """The metadata as a JSON string (stored in the Parquet schema)."""
        data = asdict(self)
        data["symbols"] = list(self.symbols)
        data["reward_components"] = list(self.reward_components)
        data["extra"] = dict(self.extra)
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str) -> TraceMeta:
        """Parse stored metadata; anything malformed is a DataValidationError naming ``source``."""
        try:
            data = json.loads(text)
            return cls(
                symbols=tuple(str(s) for s in data["symbols"]),
                reward_components=tuple(str(c) for c in data["reward_components"]),
                starting_capital=float(data["starting_capital"]),
                split=str(data["split"]),
                policy=str(data["policy"]),
                checkpoint=str(data["checkpoint"]),
                run=str(data["run"]),
                extra=dict(data.get("extra", {})),
                schema_version=int(data["schema_version"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise DataValidationError(f"{source}: trace metadata is malformed ({err})") from None


def expected_columns(meta: TraceMeta) -> list[str]:
    """Every column a trace with ``meta`` must have, in file order."""
    cols = ["session_date", "session", "step", "ts", "action", "action_changed", *FLOAT_COLUMNS]
    for name in TICKER_FIELDS:
        cols.extend(ticker_column(name, s) for s in meta.symbols)
    cols.extend(component_column(c) for c in meta.reward_components)
    return cols


@dataclass(frozen=True)
class Trace:
    """A validated trace: the step table and its metadata."""

    frame: pd.DataFrame
    meta: TraceMeta

    @property
    def n_sessions(self) -> int:
        """Number of sessions replayed."""
        return int(self.frame["session"].nunique())

    def ticker(self, field_name: str) -> np.ndarray:
        """A per-ticker field as a float64 array shaped (rows, tickers)."""
        cols = [ticker_column(field_name, s) for s in self.meta.symbols]
        return self.frame[cols].to_numpy(dtype=np.float64)


def ts_ns(frame: pd.DataFrame) -> np.ndarray:
    """The ``ts`` column as int64 nanoseconds since the epoch (UTC)."""
    return np.asarray(pd.DatetimeIndex(frame["ts"]).as_unit("ns").asi8, dtype=np.int64)


def flatten_steps(values: np.ndarray, n_steps: np.ndarray) -> np.ndarray:
    """Rows of a (session, step, ...) array that really happened, session by session.

    :param values: array shaped (S, max_steps, ...)
    :param n_steps: steps taken in each session, shape (S,)
    """
    max_steps = values.shape[1]
    mask = np.arange(max_steps)[None, :] < np.asarray(n_steps)[:, None]
    return values[mask]


def build_trace_frame(
    *,
    meta: TraceMeta,
    dates: np.ndarray,
    n_steps: np.ndarray,
    ts: np.ndarray,
    action: np.ndarray,
    action_changed: np.ndarray,
    per_step: Mapping[str, np.ndarray],
    per_ticker: Mapping[str, np.ndarray],
    components: Mapping[str, np.ndarray],
) -> pd.DataFrame:
    """Assemble a trace table from (session, step, ...) arrays as the replay produces them.

    :param dates: session dates, shape (S,)
    :param n_steps: steps taken per session, shape (S,)
    :param ts: int64 nanoseconds of each step's decision bar, shape (S, max_steps)
    :param action: action indices, shape (S, max_steps)
    :param action_changed: 1 where the action changed a target, shape (S, max_steps)
    :param per_step: the :data:`FLOAT_COLUMNS` arrays, each (S, max_steps)
    :param per_ticker: the :data:`TICKER_FIELDS` arrays, each (S, max_steps, T)
    :param components: reward component arrays, each (S, max_steps), keyed by component name
    """
    n_steps = np.asarray(n_steps, dtype=np.int64)
    s = n_steps.shape[0]
    session = np.repeat(np.arange(s, dtype=np.int64), n_steps)
    step = np.concatenate([np.arange(n, dtype=np.int64) for n in n_steps]) if s else np.zeros(0)
    day = np.asarray(dates).astype("datetime64[D]").astype("datetime64[ns]")
    data: dict[str, Any] = {
        "session_date": pd.to_datetime(np.repeat(day, n_steps)).as_unit("ns"),
        "session": session,
        "step": step.astype(np.int64),
        "ts": pd.to_datetime(flatten_steps(np.asarray(ts, dtype=np.int64), n_steps), utc=True),
        "action": flatten_steps(np.asarray(action), n_steps).astype(np.int64),
        "action_changed": flatten_steps(np.asarray(action_changed), n_steps).astype(np.int64),
    }
    for name in FLOAT_COLUMNS:
        data[name] = flatten_steps(np.asarray(per_step[name], dtype=np.float64), n_steps)
    for name in TICKER_FIELDS:
        flat = flatten_steps(np.asarray(per_ticker[name], dtype=np.float64), n_steps)
        for k, sym in enumerate(meta.symbols):
            data[ticker_column(name, sym)] = flat[:, k]
    for comp in meta.reward_components:
        data[component_column(comp)] = flatten_steps(
            np.asarray(components[comp], dtype=np.float64), n_steps
        )
    frame = pd.DataFrame(data)
    frame["ts"] = frame["ts"].astype("datetime64[ns, UTC]")
    return frame[expected_columns(meta)]


def trace_frame_from_columns(
    *,
    meta: TraceMeta,
    dates: np.ndarray,
    session: np.ndarray,
    step: np.ndarray,
    ts: np.ndarray,
    action: np.ndarray,
    action_changed: np.ndarray,
    floats: np.ndarray,
) -> pd.DataFrame:
    """Assemble a trace table from per-row arrays (rows already in session then step order).

    The same table as :func:`build_trace_frame` gives for the same steps; the float columns
    come as one block that becomes the table's storage without a copy (the joint replay's path).

    :param dates: session dates, shape (S,); ``session`` indexes them
    :param session: session index of each row
    :param step: step within the session of each row
    :param ts: int64 nanoseconds of each row's decision bar
    :param action: action index of each row
    :param action_changed: 1 where the action changed a target
    :param floats: float64 (columns, rows): every column after the first six of
        :func:`expected_columns`, in that order
    """
    columns = expected_columns(meta)
    if floats.shape != (len(columns) - 6, len(session)) or floats.dtype != np.float64:
        raise ValueError(
            f"float block of shape {floats.shape} ({floats.dtype}), expected "
            f"{(len(columns) - 6, len(session))} float64"
        )
    frame = pd.DataFrame(floats.T, columns=columns[6:], copy=False)
    day = np.asarray(dates).astype("datetime64[D]").astype("datetime64[ns]")
    stamps = pd.DatetimeIndex(np.asarray(ts, dtype=np.int64).view("datetime64[ns]"))
    head: list[tuple[str, Any]] = [
        ("session_date", day[np.asarray(session, dtype=np.int64)]),
        ("session", np.asarray(session, dtype=np.int64)),
        ("step", np.asarray(step, dtype=np.int64)),
        ("ts", stamps.tz_localize("UTC")),
        ("action", np.asarray(action, dtype=np.int64)),
        ("action_changed", np.asarray(action_changed, dtype=np.int64)),
    ]
    for pos, (name, values) in enumerate(head):
        frame.insert(pos, name, values)
    return frame


def validate_trace(frame: pd.DataFrame, meta: TraceMeta, source: str) -> pd.DataFrame:
    """Check a trace table against its metadata; return it with canonical dtypes.

    Raises :class:`DataValidationError` naming ``source``, the column and the rule broken.
    """
    if meta.schema_version != TRACE_SCHEMA_VERSION:
        raise DataValidationError(
            f"{source}: trace schema version {meta.schema_version} is not supported "
            f"(expected {TRACE_SCHEMA_VERSION}); re-run `stairways evaluate`"
        )
    if not meta.symbols:
        raise DataValidationError(f"{source}: trace metadata names no tickers")
    missing = [c for c in expected_columns(meta) if c not in frame.columns]
    if missing:
        raise DataValidationError(f"{source}: trace is missing columns {missing}")
    # Copy-on-write: the selection is a new table; columns are converted only where their
    # dtype is not already the canonical one (a fresh replay's table needs no conversion).
    out = frame[expected_columns(meta)]
    if not isinstance(out["ts"].dtype, pd.DatetimeTZDtype):
        raise DataValidationError(f"{source}: column ts must be a UTC timestamp")
    out["ts"] = out["ts"].dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    if not pd.api.types.is_datetime64_dtype(out["session_date"]):
        raise DataValidationError(f"{source}: column session_date must be a naive date-time")
    out["session_date"] = out["session_date"].astype("datetime64[ns]")
    for col in INT_COLUMNS:
        if not pd.api.types.is_integer_dtype(out[col]):
            raise DataValidationError(f"{source}: column {col} must be integer")
        if out[col].dtype != np.int64:
            out[col] = out[col].astype(np.int64)
    nullable = {ticker_column(f, s) for f in NULLABLE_TICKER_FIELDS for s in meta.symbols}
    for col in expected_columns(meta)[6:]:
        if not pd.api.types.is_float_dtype(out[col]):
            raise DataValidationError(f"{source}: column {col} must be float")
        if out[col].dtype != np.float64:
            out[col] = out[col].astype(np.float64)
        values = out[col].to_numpy()
        bad = np.isinf(values) if col in nullable else ~np.isfinite(values)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataValidationError(
                f"{source}: column {col} row {row} is not a finite number ({values[row]})"
            )
    _check_order(out, source)
    costs = out[list(COST_COLUMNS)].to_numpy()
    if (costs < 0).any():
        row, col = np.argwhere(costs < 0)[0]
        raise DataValidationError(
            f"{source}: column {COST_COLUMNS[col]} row {row} is negative ({costs[row, col]})"
        )
    changed = out["action_changed"].to_numpy()
    if not np.isin(changed, (0, 1)).all():
        row = int(np.flatnonzero(~np.isin(changed, (0, 1)))[0])
        raise DataValidationError(f"{source}: column action_changed row {row} is not 0 or 1")
    return out.reset_index(drop=True)


def _check_order(frame: pd.DataFrame, source: str) -> None:
    """Sessions ascend, steps count 0, 1, 2, ... within each session, timestamps increase."""
    session = frame["session"].to_numpy()
    step = frame["step"].to_numpy()
    ts = ts_ns(frame)
    if len(frame) == 0:
        raise DataValidationError(f"{source}: trace has no rows")
    new = np.ones(len(frame), dtype=bool)
    new[1:] = session[1:] != session[:-1]
    if (np.diff(session) < 0).any():
        row = int(np.flatnonzero(np.diff(session) < 0)[0]) + 1
        raise DataValidationError(f"{source}: row {row}: sessions are not in ascending order")
    expected = np.arange(len(frame)) - np.maximum.accumulate(
        np.where(new, np.arange(len(frame)), 0)
    )
    if (step != expected).any():
        row = int(np.flatnonzero(step != expected)[0])
        raise DataValidationError(
            f"{source}: row {row}: step {step[row]} breaks the 0, 1, 2, ... count of its session"
        )
    rising = np.diff(ts) > 0
    bad = ~rising & ~new[1:]
    if bad.any():
        row = int(np.flatnonzero(bad)[0]) + 1
        raise DataValidationError(f"{source}: row {row}: timestamps do not increase in a session")


def encode_trace(trace: Trace, source: str) -> bytes:
    """Validate a trace and encode it as the bytes of its Parquet file.

    :param source: where the file goes (named by validation errors)
    """
    frame = validate_trace(trace.frame, trace.meta, source)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[META_KEY] = trace.meta.to_json().encode()
    table = table.replace_schema_metadata(meta)
    sink = pa.BufferOutputStream()
    # Dictionary encoding buys little on float columns and doubled the write time; LZ4 encodes
    # a year's trace in half the CPU time of zstd for files about a quarter larger (measured).
    pq.write_table(table, sink, compression="lz4", use_dictionary=False)
    data: bytes = sink.getvalue().to_pybytes()
    return data


def write_trace_bytes(data: bytes, path: Path) -> Path:
    """Write an encoded trace file atomically (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def write_trace(trace: Trace, path: Path) -> Path:
    """Validate and write a trace atomically (a temporary file renamed into place)."""
    write_trace_bytes(encode_trace(trace, str(path)), path)
    log.info("wrote %d trace rows to %s", len(trace.frame), path)
    return path


def read_trace(path: Path, *, create_hint: str | None = None) -> Trace:
    """Read and validate a trace file.

    :param path: the traces.parquet file
    :param create_hint: the command that creates the file, quoted when it is missing
    """
    if not path.is_file():
        hint = create_hint or "stairways evaluate RUN_DIR"
        raise MissingResourceError(f"no evaluation trace at {path}; create it with `{hint}`")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise DataValidationError(f"{path}: not a readable Parquet trace ({err})") from None
    raw = (table.schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise DataValidationError(f"{path}: Parquet file has no {META_KEY.decode()} metadata")
    meta = TraceMeta.from_json(raw.decode(), str(path))
    frame = validate_trace(table.to_pandas(), meta, str(path))
    return Trace(frame=frame, meta=meta)


def trace_path(run_dir: Path, split: str, checkpoint_name: str, policy: str = "agent") -> Path:
    """Where ``stairways evaluate`` writes the trace of a run, split, checkpoint and policy."""
    base = run_dir / "eval" / split / checkpoint_name
    if policy == "agent":
        return base / TRACE_FILE
    return base / "baselines" / policy / TRACE_FILE


def read_run_trace(run_dir: Path, split: str, checkpoint_name: str, policy: str = "agent") -> Trace:
    """Read the trace of an evaluated run; missing -> MissingResourceError naming the command."""
    hint = f"stairways evaluate {run_dir} --split {split} --checkpoint {checkpoint_name}"
    return read_trace(trace_path(run_dir, split, checkpoint_name, policy), create_hint=hint)


def symbols_of(columns: Sequence[str], field_name: str) -> list[str]:
    """Tickers present for ``field_name`` among ``columns`` (helps readers of foreign files)."""
    prefix = f"{field_name}{SEP}"
    return [c[len(prefix) :] for c in columns if c.startswith(prefix)]
