"""``stairways data ...``: generate, import and inspect market data."""

from __future__ import annotations

import typer

app = typer.Typer(help="Generate, import and inspect market data.", no_args_is_help=True)
