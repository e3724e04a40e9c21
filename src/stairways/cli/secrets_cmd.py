"""``stairways secrets``: store, read, list and remove secrets in the encrypted vault.

Values come from standard input or a prompt, never from an argument; the passphrase from
``$CREDENTIALS_DIRECTORY``, ``$STAIRWAYS_VAULT_PASSPHRASE`` or a prompt. The vault file is
``security.vault_path`` in the config or ``$STAIRWAYS_VAULT``.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

import typer

from stairways.cli.common import ConfigOption, build_config
from stairways.errors import InputError
from stairways.security.access import open_vault
from stairways.security.names import JOURNAL_MAC_KEY, check_name
from stairways.security.passphrase import terminal_prompt
from stairways.security.secret import Secret
from stairways.security.vault import generate_secret_value

app = typer.Typer(
    help="The encrypted secrets vault: API keys, the journal's MAC key, logins.",
    no_args_is_help=True,
)

NameArgument = typer.Argument(..., help="Secret name, for example polygon_api_key.")


def _read_value(name: str) -> Secret:
    """The value from standard input (one trailing newline dropped) or, on a terminal, a prompt."""
    if sys.stdin is not None and not sys.stdin.isatty():
        text = sys.stdin.read()
        if text.endswith("\r\n"):
            text = text[:-2]
        elif text.endswith("\n"):
            text = text[:-1]
        if not text:
            raise InputError(
                f"no value on standard input for secret {name!r}: pipe it in, for example "
                f'`printf %s "$KEY" | stairways secrets set {name}`, or run from a terminal'
            )
        return Secret(text)
    value = getpass.getpass(f"Value of secret {name}: ")
    if not value:
        raise InputError(f"empty value for secret {name!r}; nothing was stored")
    if getpass.getpass("The same value again: ") != value:
        raise InputError(f"the two values differ; secret {name!r} was not stored")
    return Secret(value)


@app.command("set")
def set_secret(
    name: str = NameArgument,
    generate: bool = typer.Option(
        False, "--generate", help="Store a new random value (32 random bytes) instead."
    ),
    replace: bool = typer.Option(False, "--replace", help="Overwrite an existing secret."),
    config: Path | None = ConfigOption,
) -> None:
    """Store a secret (the vault is created, mode 0600, if it does not exist)."""
    cfg = build_config(config)
    check_name(name)
    value = Secret(generate_secret_value()) if generate else _read_value(name)
    vault = open_vault(cfg.security.vault_path, prompt=terminal_prompt(), create_missing=True)
    existed = name in vault
    if existed and not replace:
        warning = ""
        if name == JOURNAL_MAC_KEY:
            warning = " (a journal keyed with the old value can no longer be written or verified)"
        raise InputError(
            f"secret {name!r} already exists in vault {vault.path}; pass --replace to overwrite "
            f"it{warning}"
        )
    vault.set(name, value)
    verb = "replaced" if existed else "stored"
    typer.echo(f"{verb} secret {name} in vault {vault.path}", err=True)


@app.command("get")
def get_secret(name: str = NameArgument, config: Path | None = ConfigOption) -> None:
    """Print a secret's value on standard output."""
    cfg = build_config(config)
    check_name(name)
    vault = open_vault(cfg.security.vault_path, prompt=terminal_prompt(), reading=name)
    typer.echo(vault.get(name).reveal())


@app.command("list")
def list_secrets(config: Path | None = ConfigOption) -> None:
    """Print the names of the stored secrets (never their values)."""
    cfg = build_config(config)
    vault = open_vault(cfg.security.vault_path, prompt=terminal_prompt())
    names = vault.names()
    for name in names:
        typer.echo(name)
    if not names:
        typer.echo(f"vault {vault.path} holds no secrets", err=True)


@app.command("rm")
def remove_secret(name: str = NameArgument, config: Path | None = ConfigOption) -> None:
    """Remove a secret from the vault."""
    cfg = build_config(config)
    check_name(name)
    vault = open_vault(cfg.security.vault_path, prompt=terminal_prompt(), reading=name)
    vault.remove(name)
    typer.echo(f"removed secret {name} from vault {vault.path}", err=True)
