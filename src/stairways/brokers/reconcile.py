"""Reconciliation after a (re)connect: do the broker's positions follow from what we know?

The broker's explicit position report is authoritative. What we know is the journal's (or the
adapter's own ledger's) positions plus the executions it has not recorded yet, matched to our
orders by client order id (IBKR ``orderRef``). If ``known + new fills == broker`` for every
symbol the state is explained; otherwise the difference is reported symbol by symbol and new
trading halts until a person looks. Nothing is guessed or adjusted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from stairways.brokers.base import Execution

# Positions are whole shares (or IB's fractional steps); anything below this is float noise.
TOLERANCE = 1e-6


@dataclass(frozen=True)
class Reconciliation:
    """Outcome of one reconciliation.

    :param expected: known positions plus the new fills, per symbol
    :param broker: the broker's positions, per symbol
    :param differences: symbol -> (broker, expected) where they differ
    :param new_fills: executions not known before, in time order
    :param foreign_fills: new executions whose client order id is not ours (manual trades)
    """

    expected: Mapping[str, float]
    broker: Mapping[str, float]
    differences: Mapping[str, tuple[float, float]]
    new_fills: tuple[Execution, ...]
    foreign_fills: tuple[Execution, ...]

    @property
    def explained(self) -> bool:
        """Whether the broker's positions follow from our own orders and what we know.

        A manual trade (an execution of an order we did not place) explains the numbers but
        not who made it, so it is not explained: a person must look.
        """
        return not self.differences and not self.foreign_fills

    def message(self) -> str:
        """One line per difference, for the halt event, the journal and the operator."""
        if self.explained:
            return "positions reconciled: " + (
                ", ".join(f"{s} {q:g}" for s, q in sorted(self.broker.items()) if q) or "flat"
            )
        parts: list[str] = [
            f"{s}: broker holds {b:g}, journal plus new fills give {e:g} (difference {b - e:+g})"
            for s, (b, e) in sorted(self.differences.items())
        ]
        if self.foreign_fills:
            refs = sorted({f.client_order_id or f.broker_order_id for f in self.foreign_fills})
            parts.append(f"executions not placed by Stairways: {', '.join(refs)}")
        return "unexplained position difference; new trading halted. " + "; ".join(parts)


def reconcile(
    broker_positions: Mapping[str, float],
    known_positions: Mapping[str, float],
    executions: Iterable[Execution],
    known_execution_ids: Iterable[str],
    is_ours: Iterable[str] | None = None,
) -> Reconciliation:
    """Compare the broker's positions with the known positions plus unseen executions.

    :param broker_positions: signed shares per symbol reported by the broker
    :param known_positions: signed shares per symbol after every known execution
    :param executions: executions the broker reports (any that are known are skipped)
    :param known_execution_ids: execution ids already counted in ``known_positions``
    :param is_ours: client order ids we placed; new executions of other orders are listed as
        foreign (they still count, so a manual trade shows as foreign, not as a difference)
    """
    seen = set(known_execution_ids)
    ours = None if is_ours is None else set(is_ours)
    new: dict[str, Execution] = {}
    for ex in executions:
        if ex.exec_id not in seen and ex.exec_id not in new:
            new[ex.exec_id] = ex
    fills = tuple(sorted(new.values(), key=lambda e: (e.time, e.exec_id)))
    foreign = tuple(f for f in fills if ours is not None and f.client_order_id not in ours)
    expected: dict[str, float] = {s: float(q) for s, q in known_positions.items()}
    for f in fills:
        expected[f.symbol] = expected.get(f.symbol, 0.0) + f.quantity
    broker = {s: float(q) for s, q in broker_positions.items()}
    diffs: dict[str, tuple[float, float]] = {}
    for symbol in sorted(set(expected) | set(broker)):
        b, e = broker.get(symbol, 0.0), expected.get(symbol, 0.0)
        if abs(b - e) > TOLERANCE:
            diffs[symbol] = (b, e)
    return Reconciliation(
        expected={s: q for s, q in expected.items() if abs(q) > TOLERANCE},
        broker={s: q for s, q in broker.items() if abs(q) > TOLERANCE},
        differences=diffs,
        new_fills=fills,
        foreign_fills=foreign,
    )
