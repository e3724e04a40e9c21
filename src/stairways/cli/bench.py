"""``stairways bench ...``: benchmarks that print throughput figures."""

from __future__ import annotations

import typer

app = typer.Typer(help="Benchmarks that print throughput figures.", no_args_is_help=True)
