"""Options shared by subcommands."""

from __future__ import annotations

from pathlib import Path

import typer

from stairways.config import StairwaysConfig, load_config

ConfigOption = typer.Option(
    None, "--config", "-c", help="YAML config file (defaults are used when omitted)."
)
StoreOption = typer.Option(None, "--store", help="Bar store file (overrides data.store_path).")


def build_config(config: Path | None, store: Path | None = None) -> StairwaysConfig:
    """Load the config and apply the store override."""
    overrides = {"data.store_path": str(store)} if store is not None else {}
    return load_config(config, overrides)
