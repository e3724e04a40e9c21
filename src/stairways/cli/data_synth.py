"""``stairways data synth``: generate the seeded synthetic market and write it to the bar store."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from stairways.cli.common import ConfigOption, StoreOption
from stairways.config import load_config
from stairways.data.store import BarStore
from stairways.data.synthetic import generate, generator_details

_START = typer.Option(None, "--start", formats=["%Y-%m-%d"], help="First date (2022-01-03).")
_END = typer.Option(None, "--end", formats=["%Y-%m-%d"], help="Last date (2024-12-31).")


def synth(
    seed: int | None = typer.Option(None, "--seed", help="Generator seed (data.synthetic.seed)."),
    signal_strength: float | None = typer.Option(
        None, "--signal-strength", help="Planted-signal strength; 0 turns it off."
    ),
    signal: str | None = typer.Option(
        None, "--signal", help="Planted signal: lead_lag, vwap_reversion or both."
    ),
    start: datetime | None = _START,
    end: datetime | None = _END,
    replace: bool = typer.Option(
        False, "--replace", help="Overwrite stored bars that differ (for example another seed)."
    ),
    store: Path | None = StoreOption,
    config: Path | None = ConfigOption,
) -> None:
    """Generate NVDA and MSFT 1-minute bars with a planted signal and store them as synthetic."""
    overrides: dict[str, Any] = {}
    if store is not None:
        overrides["data.store_path"] = str(store)
    for key, value in (
        ("seed", seed),
        ("signal_strength", signal_strength),
        ("signal", signal),
        ("start", start.date().isoformat() if start else None),
        ("end", end.date().isoformat() if end else None),
    ):
        if value is not None:
            overrides[f"data.synthetic.{key}"] = value
    cfg = load_config(config, overrides)
    syn = cfg.data.synthetic
    started = time.perf_counter()
    bars = generate(syn, cfg.data.symbols)
    generated = time.perf_counter() - started
    with BarStore(cfg.data.store_path) as bar_store:
        result = bar_store.write_bars(
            bars,
            source="synthetic",
            synthetic=True,
            details=generator_details(syn),
            replace=replace,
        )
    elapsed = time.perf_counter() - started
    local = bars["ts"].dt.tz_convert("America/New_York")
    typer.echo(
        f"synthetic market: seed {syn.seed}, signal {syn.signal} x{syn.signal_strength:g}, "
        f"{syn.start}..{syn.end}"
    )
    typer.echo(f"store: {cfg.data.store_path} (labelled synthetic)")
    for symbol, group in bars.groupby("symbol", sort=True):
        days = local[group.index].dt.date
        typer.echo(
            f"  {symbol}: {len(group):,} bars, {days.nunique()} sessions "
            f"{days.min()}..{days.max()}, close {group['close'].min():.2f}.."
            f"{group['close'].max():.2f}, mean volume/session "
            f"{group['volume'].sum() / days.nunique():,.0f}"
        )
    typer.echo(
        f"rows: {result.rows_in:,} offered, {result.rows_inserted:,} inserted, "
        f"{result.rows_replaced:,} replaced, {result.rows_unchanged:,} unchanged"
    )
    typer.echo(f"time: {generated:.2f} s to generate, {elapsed:.2f} s in total")
