"""Options shared by subcommands."""

from __future__ import annotations

from pathlib import Path

import typer

from stairways.config import StairwaysConfig, load_config

ConfigOption = typer.Option(
    None, "--config", "-c", help="YAML config file (defaults are used when omitted)."
)
StoreOption = typer.Option(None, "--store", help="Bar store file (overrides data.store_path).")


def build_config(
    config: Path | None, store: Path | None = None, overrides: dict[str, object] | None = None
) -> StairwaysConfig:
    """Load the config and apply the store override and any dotted-key overrides."""
    merged: dict[str, object] = dict(overrides or {})
    if store is not None:
        merged["data.store_path"] = str(store)
    return load_config(config, merged)
