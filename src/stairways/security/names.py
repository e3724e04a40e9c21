"""Names of the secrets Stairways reads from the vault, and the rule every secret name follows."""

from __future__ import annotations

import re

from stairways.errors import InputError

__all__ = [
    "IB_GATEWAY_PASSWORD",
    "IB_GATEWAY_USER",
    "JOURNAL_DB_PASSWORD",
    "JOURNAL_MAC_KEY",
    "OPERATOR_TOKEN",
    "POLYGON_API_KEY",
    "approver_key_name",
    "check_name",
]

POLYGON_API_KEY = "polygon_api_key"
JOURNAL_MAC_KEY = "journal_mac_key"
JOURNAL_DB_PASSWORD = "journal_db_password"
# The IB Gateway login that IBC types in when the gateway runs headless. The TWS API socket
# itself takes no password (host, port, client id and account are configuration, not secrets).
IB_GATEWAY_USER = "ib_gateway_user"
IB_GATEWAY_PASSWORD = "ib_gateway_password"
# What the dashboard's operator controls (emergency stop, resume) and remote viewing require.
OPERATOR_TOKEN = "operator_token"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def approver_key_name(approver: str) -> str:
    """The vault name of an approver's signing key (``approver_key.<approver>``)."""
    return check_name(f"approver_key.{approver}")


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid secret name, else raise InputError saying the rule."""
    if not _NAME.match(name):
        raise InputError(
            f"invalid secret name {name!r}: use 1 to 128 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name
