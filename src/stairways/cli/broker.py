"""``stairways broker ...``: check a broker connection and flatten an account.

``check`` connects to the user's own IB Gateway or TWS, prints the account, positions and open
orders, and places nothing. ``flatten`` cancels every open order and closes every position
(the emergency stop). Both are paper unless the broker configuration says ``mode: live`` and
``--live`` is given. The commands only parse, build and call into :mod:`stairways.brokers`.
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from typing import Any

import typer

from stairways.brokers.base import AccountSummary, OrderSnapshot, Position
from stairways.brokers.settings import BrokerConfig, load_broker_config
from stairways.data.importing import ImportOptions, ImportSummary, import_from_source
from stairways.errors import InputError

app = typer.Typer(help="Check a broker connection; flatten an account.", no_args_is_help=True)

_CONFIG = typer.Option(
    None, "--broker-config", help="Broker YAML file (kind, mode, ibkr host/port/client ids)."
)
_MODE = typer.Option("paper", "--mode", help="paper (default) or live.")
_LIVE = typer.Option(False, "--live", help="Required, with mode live, to touch a live account.")
_HOST = typer.Option(None, "--host", help="Gateway host (overrides ibkr.host).")
_PORT = typer.Option(None, "--port", help="Gateway API port (overrides the standard port).")


def broker_config(
    path: Path | None,
    *,
    mode: str | None = None,
    kind: str | None = None,
    host: str | None = None,
    port: int | None = None,
) -> BrokerConfig:
    """The broker configuration with the command-line overrides applied (validated)."""
    overrides: dict[str, Any] = {}
    if mode is not None:
        if mode not in ("paper", "live"):
            raise InputError(f"--mode must be paper or live, got {mode!r}")
        overrides["mode"] = mode
    if kind is not None:
        overrides["kind"] = kind
    if host is not None:
        overrides["ibkr.host"] = host
    if port is not None:
        overrides["ibkr.port"] = port
    return load_broker_config(path, overrides)


def _quiet_ib_async() -> None:
    """ib_async logs every message at INFO; keep its warnings unless --verbose asked for more."""
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        logging.getLogger("ib_async").setLevel(logging.WARNING)


def _money(x: float) -> str:
    return "n/a" if x != x else f"${x:,.2f}"


def _echo_account(acct: AccountSummary) -> None:
    kind = "paper" if acct.paper else "LIVE"
    typer.echo(f"account {acct.account} ({kind})")
    typer.echo(f"  net liquidation {_money(acct.net_liquidation)}, cash {_money(acct.cash)}")


def _echo_positions(positions: list[Position]) -> None:
    if not positions:
        typer.echo("positions: none")
        return
    typer.echo("positions:")
    for p in positions:
        typer.echo(f"  {p.symbol:<6} {p.quantity:>10g} shares  average cost {_money(p.avg_cost)}")


def _echo_orders(orders: list[OrderSnapshot]) -> None:
    if not orders:
        typer.echo("open orders: none")
        return
    typer.echo("open orders:")
    for o in orders:
        limit = f" limit {_money(o.limit_price)}" if o.limit_price is not None else ""
        ref = o.client_order_id or "(no orderRef: placed outside Stairways)"
        typer.echo(
            f"  {o.symbol:<6} {o.quantity:>+10g} {o.order_type.value}{limit}  {o.state.value}, "
            f"filled {o.filled:g}  id {o.broker_order_id}  ref {ref}"
        )


@app.command("check")
def check(
    mode: str = _MODE,
    host: str | None = _HOST,
    port: int | None = _PORT,
    live: bool = _LIVE,
    config: Path | None = _CONFIG,
) -> None:
    """Connect to IB Gateway/TWS, print account, positions and open orders; place nothing."""
    from stairways.brokers.ibkr.adapter import IbkrBroker

    _quiet_ib_async()
    cfg = broker_config(config, mode=mode, kind="ibkr", host=host, port=port)
    broker = IbkrBroker(cfg, role="check", live=live)
    broker.connect()
    try:
        typer.echo(
            f"connected to {broker.endpoint}, server version {broker.ib.client.serverVersion()}"
        )
        _echo_account(broker.account())
        _echo_positions(broker.positions())
        _echo_orders(broker.all_open_orders())
        typer.echo("nothing was placed")
    finally:
        broker.close()


@app.command("flatten")
def flatten(
    mode: str | None = typer.Option(None, "--mode", help="Override the configured mode."),
    host: str | None = _HOST,
    port: int | None = _PORT,
    live: bool = _LIVE,
    wait: float = typer.Option(
        30.0, "--wait", min=0.0, max=600.0, help="Seconds to wait for the closing fills."
    ),
    config: Path | None = _CONFIG,
) -> None:
    """Cancel every open order and close every position (the emergency stop)."""
    cfg = broker_config(config, mode=mode, host=host, port=port)
    if cfg.kind == "sim":
        _flatten_sim(cfg)
        return
    from stairways.brokers.ibkr.adapter import IbkrBroker

    _quiet_ib_async()
    broker = IbkrBroker(cfg, role="flatten", live=live)
    broker.connect()
    try:
        results = broker.flatten(wait_seconds=min(wait, 10.0))
        for r in results:
            verb = "sent" if r.sent else f"NOT sent ({r.reason})"
            typer.echo(f"closing order {r.client_order_id}: {verb}")
        for _ in range(int(wait / 0.25) + 1):
            if not broker.positions():
                break
            broker.events(0.25)
        left = broker.positions()
        _echo_positions(left)
        if left or any(not r.sent for r in results):
            typer.echo("flatten incomplete: positions remain; check TWS and the log", err=True)
            raise typer.Exit(1)
        typer.echo("flat: no open orders, no positions")
    finally:
        broker.close()


def _flatten_sim(cfg: BrokerConfig) -> None:
    from stairways.brokers.sim import SimBroker

    if cfg.sim.state_path is None:
        raise InputError("sim.state_path is not set: there is no simulated account to flatten")
    broker = SimBroker(cfg.sim, cfg.symbols)
    broker.connect()
    try:
        closing = {r.client_order_id for r in broker.flatten()}
        for f in broker.executions():
            if f.client_order_id in closing:
                typer.echo(f"closed {f.symbol} {f.quantity:+g} at {_money(f.price)}")
        _echo_positions(broker.positions())
    finally:
        broker.close()


def import_from_ibkr(
    config: Path | None,
    symbols: list[str],
    start: date,
    end: date,
    store_path: Path,
    options: ImportOptions,
    *,
    skip_complete: bool = True,
    report_path: Path | None = None,
) -> ImportSummary:
    """``data import --ibkr``: historical bars through the importer's validation and store."""
    from stairways.brokers.ibkr.history import IbkrHistory

    _quiet_ib_async()
    cfg = broker_config(config, kind="ibkr")
    with IbkrHistory(cfg) as source:
        summary = import_from_source(
            source,
            symbols,
            start,
            end,
            store_path,
            options,
            skip_complete=skip_complete,
            report_path=report_path,
        )
        typer.echo(f"fetched {len(summary.sources)} window(s) with {source.requests} request(s)")
    return summary
