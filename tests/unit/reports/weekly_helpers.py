"""Writing journal records in the live loop's format, for the weekly-report tests.

Each session is a list of round trips ``(symbol, quantity, buy price, sell price, fee per
fill)``; the helper writes the session start, decisions, fills and the end record with figures
computed from those fills, as :mod:`stairways.live.loop` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

from stairways.journal import EXCHANGE_TZ, Journal

Trip = tuple[str, float, float, float, float]
CAPITAL = 100_000.0


def write_session(
    journal: Journal,
    day: date,
    trips: Sequence[Trip],
    *,
    rehearsal: bool = True,
    model_id: str = "run1-final-abcdef12",
    drawdown: float = 0.01,
    serial: int = 1,
    actions: Sequence[int] = (1, 2, 0),
) -> str:
    """Write one session; returns its id."""
    sid = f"{'R' if rehearsal else 'L'}{day:%y%m%d}pabcdef-{serial}"
    base = {"session_id": sid, "rehearsal": rehearsal}
    t = datetime.combine(day, time(9, 30), tzinfo=EXCHANGE_TZ)
    journal.append(
        "config",
        {
            **base,
            "type": "live_session",
            "day": day.isoformat(),
            "stage": "paper",
            "model_id": model_id,
            "fingerprint": "abcdef1234567890",
            "run_dir": "/runs/run1",
            "checkpoint": "final",
            "data_fingerprint": "0123456789abcdef",
            "config_name": "tiny",
            "broker": "sim" if rehearsal else "ibkr",
            "clock": "manual" if rehearsal else "exchange",
            "symbols": ["MSFT", "NVDA"],
            "capital": CAPITAL,
        },
        t,
    )
    fees = pnl = 0.0
    k = 0
    for i, a in enumerate(actions):
        journal.append(
            "decision",
            {
                **base,
                "observation_hash": f"{i:08x}",
                "decision_id": f"{sid}-{i:03d}",
                "bar": i,
                "action": a,
                "used": True,
                "targets_after": [float(i % 2), 0.0],
            },
            t + timedelta(minutes=i + 1),
        )
    for sym, qty, buy, sell, fee in trips:
        for q, px in ((qty, buy), (-qty, sell)):
            k += 1
            journal.append(
                "fill",
                {
                    **base,
                    "exec_id": f"{sid}-x{k}",
                    "client_order_id": f"{sid}-o{k}",
                    "symbol": sym,
                    "quantity": q,
                    "price": px,
                    "fee": fee,
                },
                t + timedelta(minutes=10 + k),
            )
            fees += fee
        pnl += qty * (sell - buy) - 2 * fee
    journal.append(
        "config",
        {
            **base,
            "type": "live_session_end",
            "reason": "session closed",
            "figures": {"pnl": pnl, "fees": fees, "max_drawdown": drawdown, "equity": CAPITAL},
            "positions": {"MSFT": 0.0, "NVDA": 0.0},
            "decisions": len(actions),
        },
        t + timedelta(hours=6, minutes=30),
    )
    return sid
