"""Where the vault passphrase comes from: a systemd credential, the environment, or a prompt.

Never from the command line (it would show in ``ps`` and the shell history). The sources are
tried in this order:

1. ``$CREDENTIALS_DIRECTORY/stairways-vault-passphrase``: a systemd credential
   (``LoadCredential=stairways-vault-passphrase:/path`` or ``SetCredentialEncrypted=``);
2. ``$STAIRWAYS_VAULT_PASSPHRASE``;
3. an interactive prompt on the controlling terminal, when there is one.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from stairways.errors import InputError
from stairways.security.secret import Secret

__all__ = [
    "CREDENTIAL_NAME",
    "MIN_NEW_PASSPHRASE_LENGTH",
    "PASSPHRASE_ENV",
    "Prompt",
    "passphrase_from_environment",
    "terminal_prompt",
]

CREDENTIAL_NAME = "stairways-vault-passphrase"
PASSPHRASE_ENV = "STAIRWAYS_VAULT_PASSPHRASE"
MIN_NEW_PASSPHRASE_LENGTH = 12

Prompt = Callable[[str], str]


def terminal_prompt() -> Prompt | None:
    """``getpass`` on the controlling terminal, or None when the process has no terminal."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return None
    os.close(fd)
    return getpass.getpass


def _strip_line_end(text: str) -> str:
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith("\n") else text


def passphrase_from_environment(
    vault: Path,
    *,
    creating: bool = False,
    prompt: Prompt | None = None,
    environ: Mapping[str, str] | None = None,
) -> Secret:
    """The vault passphrase from the first source that has one (see the module docstring).

    :param vault: the vault file (named in prompts and errors)
    :param creating: a new vault is being created: a prompt asks twice, and a passphrase shorter
        than :data:`MIN_NEW_PASSPHRASE_LENGTH` is refused
    :param prompt: reads a line without echo; None means there is no terminal to ask on
    :param environ: the environment (``os.environ`` when None)
    """
    env = os.environ if environ is None else environ
    value: str | None = None
    origin = ""
    cred_dir = env.get("CREDENTIALS_DIRECTORY", "").strip()
    if cred_dir:
        cred = Path(cred_dir) / CREDENTIAL_NAME
        if cred.is_file():
            try:
                value = _strip_line_end(cred.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError) as err:
                raise InputError(
                    f"cannot read the vault passphrase credential {cred}: {err.__class__.__name__}"
                ) from None
            origin = f"the systemd credential {cred}"
    if value is None and env.get(PASSPHRASE_ENV):
        value = env[PASSPHRASE_ENV]
        origin = f"${PASSPHRASE_ENV}"
    if value is None and prompt is not None:
        value = prompt(f"Passphrase of the vault {vault}: ")
        origin = "the prompt"
        if creating:
            again = prompt("The same passphrase again: ")
            if again != value:
                raise InputError(f"the two passphrases differ; vault {vault} was not created")
    if value is None:
        raise InputError(
            f"no passphrase for the vault {vault}: put it in a systemd credential named "
            f"{CREDENTIAL_NAME} ($CREDENTIALS_DIRECTORY), export {PASSPHRASE_ENV}, or run the "
            "command from a terminal to be asked for it"
        )
    if not value:
        raise InputError(f"the vault passphrase from {origin} is empty")
    if creating and len(value) < MIN_NEW_PASSPHRASE_LENGTH:
        raise InputError(
            f"the passphrase from {origin} is too short for a new vault: use at least "
            f"{MIN_NEW_PASSPHRASE_LENGTH} characters; vault {vault} was not created"
        )
    return Secret(value)
