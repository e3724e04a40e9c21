"""Broker errors, grouped like every Stairways error by what the operator must do.

- :class:`BrokerConfigError` (exit 2): the broker configuration or the flags are wrong (a live
  port without the live flag, a paper port on a live account). Fix them and run again.
- :class:`BrokerConnectionError` (exit 1): the gateway is unreachable, answers on a port that
  is not its API port, or refuses the client id. The message names the host, the port and the
  fix. There is never a fallback to the simulated broker.
- :class:`BrokerStateError` (exit 1): the broker's state disagrees with ours in a way that
  needs a person (for example a persisted simulator file from another configuration).
"""

from __future__ import annotations

from stairways.errors import ConfigError, StairwaysError, TemporaryError


class BrokerConfigError(ConfigError):
    """Broker configuration or flags are wrong (names the key and the fix)."""


class BrokerConnectionError(TemporaryError):
    """Could not connect to the broker (names host, port and what to do)."""


class BrokerStateError(StairwaysError):
    """The broker's state cannot be used as it is; a person must look."""
