"""``stairways config ...``: the configs shipped inside the package."""

from __future__ import annotations

from pathlib import Path

import typer

from stairways import resources

app = typer.Typer(help="List or copy the shipped configs.", no_args_is_help=True)


@app.command("list")
def list_command() -> None:
    """Print the shipped config files (relative names) and the folder they are read from."""
    typer.echo(f"shipped configs in {resources.config_dir()}:")
    for name in resources.shipped_config_names():
        typer.echo(f"  {name}")


@app.command("copy")
def copy_command(
    dest: Path = typer.Argument(Path("config"), help="Folder to copy into (default ./config)."),
    force: bool = typer.Option(False, "--force", help="Replace files that differ."),
) -> None:
    """Copy the shipped configs into DEST, so `--config config/reward_v3.yaml` works here."""
    written = resources.copy_configs(dest, overwrite=force)
    total = len(resources.shipped_config_names())
    typer.echo(
        f"copied {len(written)} of {total} shipped configs into {dest} "
        f"({total - len(written)} already there and identical)"
    )
