"""The canonical in-memory bar table shared by importers, the store, features and the env.

A bar frame is a pandas DataFrame with exactly :data:`BAR_COLUMNS`: ``ts`` is the bar's start
instant as ``datetime64[ns, UTC]``; prices and volume are float64; ``vwap`` is NaN and
``trade_count`` is <NA> when the source does not provide them. Rows are sorted by symbol, ts.
"""

from __future__ import annotations

import pandas as pd

SYMBOLS_DEFAULT: tuple[str, ...] = ("NVDA", "MSFT")
BAR_COLUMNS: tuple[str, ...] = (
    "symbol",
    "ts",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "vwap",
    "trade_count",
)
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")


def empty_bars() -> pd.DataFrame:
    """An empty bar frame with the canonical dtypes."""
    return conform(pd.DataFrame({c: [] for c in BAR_COLUMNS}))


def conform(frame: pd.DataFrame) -> pd.DataFrame:
    """Cast a frame that already has the canonical columns to the canonical dtypes and order."""
    out = pd.DataFrame(
        {
            "symbol": frame["symbol"].astype(str),
            "ts": pd.to_datetime(frame["ts"], utc=True).astype("datetime64[ns, UTC]"),
            "open": frame["open"].astype("float64"),
            "high": frame["high"].astype("float64"),
            "low": frame["low"].astype("float64"),
            "close": frame["close"].astype("float64"),
            "volume": frame["volume"].astype("float64"),
            "vwap": frame["vwap"].astype("float64"),
            "trade_count": frame["trade_count"].astype("Int64"),
        }
    )
    return out.sort_values(["symbol", "ts"], kind="stable").reset_index(drop=True)
