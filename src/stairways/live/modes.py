"""Which mode a live run is in, and the conditions live trading needs (each refused by name).

Paper is the default: ``--stage paper`` at a paper port, or any rehearsal (simulated broker,
controllable clock), which never touches an account. Trading real money (``--stage micro_10``
or ``scale_50`` with ``--broker ibkr``) needs every one of these, and a refusal lists each one
that failed, by name:

- ``live port``: the broker configuration says ``mode: live`` and connects to a live port
  (TWS 7496, IB Gateway 4001);
- ``--live flag``: the explicit flag on the command line;
- ``vault credentials``: the IB Gateway login (``ib_gateway_user``, ``ib_gateway_password``)
  in the secrets vault;
- ``ladder stage``: the model is registered and its ladder stage allows trading at that stage
  (:func:`stairways.live.registry.live_allowed`).

A paper run at IBKR needs a paper port, no ``--live``, and a model the ladder has in paper (or
higher). A model whose files do not match their registered fingerprint is refused when it is
loaded (:func:`stairways.live.registry.load_model_ref`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from stairways.brokers.settings import LIVE_PORTS, PAPER_PORTS, BrokerConfig
from stairways.errors import InputError
from stairways.security.names import IB_GATEWAY_PASSWORD, IB_GATEWAY_USER

__all__ = [
    "LIVE_STAGES",
    "TRADING_STAGES",
    "ModeCheck",
    "ModeRefusedError",
    "check_mode",
    "live_conditions",
]

TRADING_STAGES = ("paper", "micro_10", "scale_50")
LIVE_STAGES = ("micro_10", "scale_50")
CREDENTIALS = (IB_GATEWAY_USER, IB_GATEWAY_PASSWORD)


class ModeRefusedError(InputError):
    """A live run refused: the message names every condition that failed."""


@dataclass(frozen=True)
class ModeCheck:
    """One condition of a run's mode, passed or not, with the reason."""

    name: str
    passed: bool
    detail: str


def live_conditions(
    *,
    stage: str,
    broker: BrokerConfig,
    live_flag: bool,
    vault_names: Callable[[], Collection[str]],
    ladder: Callable[[], tuple[bool, str]],
) -> list[ModeCheck]:
    """The conditions of an IBKR run at ``stage``, each checked (none short-circuits).

    :param vault_names: the secret names in the vault (raises when there is no vault)
    :param ladder: (allowed, reason) of the model's ladder stage at ``stage``
    """
    checks: list[ModeCheck] = []
    port = broker.ibkr_port()
    if stage in LIVE_STAGES:
        ok = broker.mode == "live" and port in LIVE_PORTS.values()
        checks.append(
            ModeCheck(
                "live port",
                ok,
                f"mode {broker.mode}, port {port}"
                + ("" if ok else f"; live needs mode: live and a live port {dict(LIVE_PORTS)}"),
            )
        )
        checks.append(
            ModeCheck(
                "--live flag",
                live_flag,
                "given" if live_flag else "not given: pass --live to trade real money",
            )
        )
        try:
            names = set(vault_names())
            missing = [n for n in CREDENTIALS if n not in names]
            checks.append(
                ModeCheck(
                    "vault credentials",
                    not missing,
                    "present"
                    if not missing
                    else f"missing {', '.join(missing)}: `stairways secrets set NAME`",
                )
            )
        except InputError as err:
            checks.append(ModeCheck("vault credentials", False, str(err)))
    else:
        ok = broker.mode == "paper" and port in PAPER_PORTS.values() and not live_flag
        checks.append(
            ModeCheck(
                "paper port",
                ok,
                f"mode {broker.mode}, port {port}"
                + (
                    ""
                    if ok
                    else f"; stage {stage} trades a paper account (mode: paper, a paper port "
                    f"{dict(PAPER_PORTS)}, no --live)"
                ),
            )
        )
    allowed, why = ladder()
    checks.append(ModeCheck("ladder stage", allowed, why))
    return checks


def check_mode(checks: list[ModeCheck], stage: str) -> None:
    """Raise :class:`ModeRefusedError` naming every failed condition; return when all passed."""
    failed = [c for c in checks if not c.passed]
    if failed:
        lines = "\n".join(f"  {c.name}: {c.detail}" for c in failed)
        raise ModeRefusedError(
            f"refusing to trade at stage {stage}: {len(failed)} condition(s) failed\n{lines}"
        )


def refuse_unknown_stage(stage: str) -> None:
    """A stage that is not a trading stage is bad input."""
    if stage not in TRADING_STAGES:
        raise InputError(f"unknown stage {stage!r}; choose one of {', '.join(TRADING_STAGES)}")
