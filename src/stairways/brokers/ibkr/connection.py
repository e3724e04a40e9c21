"""Opening an ib_async connection to TWS or IB Gateway with errors a person can act on.

Every failure names the host, the port and the fix, and none of them falls back to the
simulated broker:

- nothing listens on the port (connection refused, unreachable host);
- something listens but never completes the TWS API handshake (not an API port, or the API
  is disabled in the gateway's settings);
- the gateway refuses the client id because another session uses it (IB error 326);
- the login's account is live while the configuration says paper, or the other way round.

The client-side message budget is ib_async's own throttle (at most ``max_messages_per_second``
messages in any one-second window; IB disconnects clients above 50).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from ib_async import IB

from stairways.brokers.errors import BrokerConfigError, BrokerConnectionError
from stairways.brokers.settings import LIVE_PORTS, PAPER_PORTS, BrokerConfig

log = logging.getLogger(__name__)

CLIENT_ID_IN_USE = 326


def is_paper_account(account: str) -> bool:
    """IBKR paper trading accounts start with ``D`` (``DU...``, ``DF...``); live ones do not."""
    return account.upper().startswith("D")


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom to connect."""

    host: str
    port: int
    client_id: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port} (client id {self.client_id})"


def _port_hint(cfg: BrokerConfig) -> str:
    table = PAPER_PORTS if cfg.mode == "paper" else LIVE_PORTS
    return f"IB Gateway {cfg.mode} port {table['gateway']}, TWS {cfg.mode} port {table['tws']}"


def open_ib(
    cfg: BrokerConfig,
    endpoint: Endpoint,
    *,
    ib_factory: Callable[[], IB] = IB,
) -> tuple[IB, str]:
    """Connect, synchronise and check the account; return the client and the account id.

    :param cfg: broker configuration (mode, account, timeouts, message budget)
    :param endpoint: host, port and client id
    :param ib_factory: builds the ib_async client (tests keep the default)
    """
    ib = ib_factory()
    ib.RequestTimeout = cfg.ibkr.request_timeout_seconds
    ib.client.MaxRequests = cfg.ibkr.max_messages_per_second
    ib.client.RequestsInterval = 1
    codes: list[tuple[int, str]] = []

    def on_error(req_id: int, code: int, text: str, contract: object) -> None:
        codes.append((code, text))

    ib.errorEvent += on_error
    where = f"{endpoint.host}:{endpoint.port}"
    try:
        ib.connect(
            endpoint.host,
            endpoint.port,
            clientId=endpoint.client_id,
            timeout=cfg.ibkr.connect_timeout_seconds,
            account=cfg.ibkr.account,
            raiseSyncErrors=True,
        )
    except ConnectionRefusedError:
        raise BrokerConnectionError(
            f"nothing accepts connections at {where}: start IB Gateway or TWS, log in, enable "
            f"the API (Configure > Settings > API > Enable ActiveX and Socket Clients) and "
            f"check the port ({_port_hint(cfg)}); set ibkr.host and ibkr.port in the broker "
            "configuration (--broker-config), or pass --host/--port to broker check"
        ) from None
    except (TimeoutError, ConnectionError) as err:
        ib.disconnect()
        if any(code == CLIENT_ID_IN_USE for code, _ in codes):
            raise BrokerConnectionError(
                f"{where} refused client id {endpoint.client_id}: it is already in use by "
                "another session (IB error 326). Stop the other Stairways process of this "
                "role, or set another id under ibkr.client_ids in the broker configuration"
            ) from None
        raise BrokerConnectionError(
            f"no TWS API answer from {where} within {cfg.ibkr.connect_timeout_seconds:g} s "
            f"({type(err).__name__}): the port is not an IB API port or the API is disabled. "
            f"Use {_port_hint(cfg)}, and enable the API in the gateway's settings"
        ) from None
    except OSError as err:
        raise BrokerConnectionError(
            f"cannot reach {where}: {err.strerror or err}. Check the host name and that the "
            "gateway's machine is up (and, for a remote gateway, the trusted IPs in its API "
            "settings)"
        ) from None
    finally:
        ib.errorEvent -= on_error
    try:
        account = _choose_account(cfg, ib.managedAccounts(), where)
    except BrokerConfigError:
        ib.disconnect()
        raise
    log.info("connected to %s as client %d, account %s", where, endpoint.client_id, account)
    return ib, account


def _choose_account(cfg: BrokerConfig, accounts: list[str], where: str) -> str:
    if not accounts:
        raise BrokerConnectionError(f"{where} reports no managed account; check the login")
    if cfg.ibkr.account:
        if cfg.ibkr.account not in accounts:
            raise BrokerConfigError(
                f"ibkr.account {cfg.ibkr.account} is not managed by the login at {where} "
                f"(it manages {', '.join(accounts)}); fix ibkr.account"
            )
        account = cfg.ibkr.account
    elif len(accounts) == 1:
        account = accounts[0]
    else:
        raise BrokerConfigError(
            f"the login at {where} manages several accounts ({', '.join(accounts)}); "
            "name one in ibkr.account"
        )
    paper = is_paper_account(account)
    if cfg.mode == "paper" and not paper:
        raise BrokerConfigError(
            f"{where} is logged in to live account {account}, but the broker configuration "
            f"says mode: paper. Log the gateway in to your paper account (paper ports: IB "
            f"Gateway {PAPER_PORTS['gateway']}, TWS {PAPER_PORTS['tws']}); live trading needs "
            "mode: live and --live"
        )
    if cfg.mode == "live" and paper:
        raise BrokerConfigError(
            f"{where} is logged in to paper account {account}, but the broker configuration "
            f"says mode: live. Point ibkr.port at the live gateway (IB Gateway "
            f"{LIVE_PORTS['gateway']}, TWS {LIVE_PORTS['tws']}) or set mode: paper"
        )
    return account
