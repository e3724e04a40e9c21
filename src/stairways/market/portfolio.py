"""Portfolio accounting over a batch: cash, positions, average cost, P&L, fees and drawdown.

Average-cost accounting. A fill of ``q`` shares at price ``p`` with commission ``c``:
cash falls by ``q p + c``; fees (commissions) rise by ``c``; shares that reduce a position
realise ``(p - avg) * closed`` (sign-adjusted for shorts); shares that add to or open a position
move the average cost. Marking at prices ``m`` sets ``equity = cash + sum(shares * m)``,
``unrealised = sum(shares * (m - avg))``, the peak equity, the drawdown ``1 - equity / peak``
and the maximum drawdown. These identities hold after every fill and mark:

- ``equity == cash + sum(shares * mark)``
- ``realised + unrealised - fees == equity - starting capital``

Spread and impact are inside the fill price (so inside realised and unrealised P&L); they are
accumulated separately only to attribute costs. The compiled row functions are what the env
kernel calls; :class:`Portfolio` runs the same functions over a batch.
"""

from __future__ import annotations

import numpy as np

from stairways.errors import InputError
from stairways.market.costs import STEPS
from stairways.market.jit import core_jit

PF_CASH = 0
PF_REALISED = 1
PF_FEES = 2  # commissions charged to cash
PF_SPREAD = 3  # spread cost paid inside fill prices
PF_IMPACT = 4  # impact cost paid inside fill prices
PF_EQUITY = 5
PF_PEAK = 6
PF_DRAWDOWN = 7
PF_MAX_DRAWDOWN = 8
PF_UNREALISED = 9
PF_START = 10
PF_NOTIONAL = 11  # traded notional at fill prices
PF_FILLS = 12  # number of orders filled
PF_WIDTH = 13


@core_jit
def pf_reset(row: np.ndarray, shares: np.ndarray, avg: np.ndarray, capital: float) -> None:
    """Start a fresh account with ``capital`` in cash and no positions."""
    row[:] = 0.0
    row[PF_CASH] = capital
    row[PF_EQUITY] = capital
    row[PF_PEAK] = capital
    row[PF_START] = capital
    shares[:] = 0.0
    avg[:] = 0.0


@core_jit(inline=True)
def pf_fill(
    row: np.ndarray,
    shares: np.ndarray,
    avg: np.ndarray,
    j: int,
    qty: float,
    price: float,
    commission: float,
    spread_cost: float,
    impact_cost: float,
) -> None:
    """Apply one fill of ``qty`` shares of ticker ``j`` at ``price`` (costs already computed)."""
    if qty == 0.0:
        return
    s = shares[j]
    row[PF_CASH] -= qty * price + commission
    row[PF_FEES] += commission
    row[PF_SPREAD] += spread_cost
    row[PF_IMPACT] += impact_cost
    row[PF_NOTIONAL] += abs(qty) * price
    row[PF_FILLS] += 1.0
    # Fractional steps summed in floats carry noise (0.0122 + 0.0123 is not 0.0245 exactly):
    # the position goes back on an 8-decimal grid, so a full close lands on 0.0. Whole shares
    # are exact integers and the rounding leaves them as they are.
    new = round(s + qty, 8)
    if s == 0.0 or (s > 0.0) == (qty > 0.0):
        # opening or adding: the average cost moves (a fill below the grid opens nothing)
        avg[j] = (s * avg[j] + qty * price) / new if new != 0.0 else 0.0
        shares[j] = new
        return
    closed = min(abs(qty), abs(s))
    direction = 1.0 if s > 0.0 else -1.0
    row[PF_REALISED] += (price - avg[j]) * closed * direction
    if new == 0.0:
        avg[j] = 0.0
    elif (new > 0.0) != (s > 0.0):
        # flipped through flat: the remainder opens at the fill price
        avg[j] = price
    shares[j] = new


@core_jit(inline=True)
def pf_mark(row: np.ndarray, shares: np.ndarray, avg: np.ndarray, marks: np.ndarray) -> float:
    """Mark to ``marks``: update equity, unrealised P&L, peak, drawdown; return equity."""
    value = 0.0
    unreal = 0.0
    for j in range(shares.shape[0]):
        value += shares[j] * marks[j]
        unreal += shares[j] * (marks[j] - avg[j])
    equity = row[PF_CASH] + value
    row[PF_EQUITY] = equity
    row[PF_UNREALISED] = unreal
    if equity > row[PF_PEAK]:
        row[PF_PEAK] = equity
    dd = 1.0 - equity / row[PF_PEAK] if row[PF_PEAK] > 0.0 else 1.0
    row[PF_DRAWDOWN] = dd
    if dd > row[PF_MAX_DRAWDOWN]:
        row[PF_MAX_DRAWDOWN] = dd
    return equity


@core_jit
def _fill_batch(
    state: np.ndarray,
    shares: np.ndarray,
    avg: np.ndarray,
    qty: np.ndarray,
    price: np.ndarray,
    commission: np.ndarray,
    spread: np.ndarray,
    impact: np.ndarray,
) -> None:
    for i in range(qty.shape[0]):
        for j in range(qty.shape[1]):
            pf_fill(
                state[i],
                shares[i],
                avg[i],
                j,
                qty[i, j],
                price[i, j],
                commission[i, j],
                spread[i, j],
                impact[i, j],
            )


@core_jit
def _mark_batch(state: np.ndarray, shares: np.ndarray, avg: np.ndarray, marks: np.ndarray) -> None:
    for i in range(state.shape[0]):
        pf_mark(state[i], shares[i], avg[i], marks[i])


class Portfolio:
    """A batch of ``n`` accounts over ``n_tickers`` tickers, all starting with the same capital.

    :param n: number of accounts (one per env)
    :param n_tickers: number of tickers
    :param starting_capital: cash at the start, dollars
    """

    def __init__(self, n: int, n_tickers: int, starting_capital: float) -> None:
        if n < 1 or n_tickers < 1 or not starting_capital > 0.0:
            raise InputError("Portfolio needs n >= 1, n_tickers >= 1 and positive capital")
        self.state = np.zeros((n, PF_WIDTH), dtype=np.float64)
        self.shares = np.zeros((n, n_tickers), dtype=np.float64)
        self.avg_cost = np.zeros((n, n_tickers), dtype=np.float64)
        self.starting_capital = float(starting_capital)
        for i in range(n):
            pf_reset(self.state[i], self.shares[i], self.avg_cost[i], self.starting_capital)

    def fill(
        self,
        qty: np.ndarray,
        price: np.ndarray,
        commission: np.ndarray,
        spread_cost: np.ndarray | None = None,
        impact_cost: np.ndarray | None = None,
    ) -> None:
        """Apply fills, each argument shaped (n, n_tickers); zero quantities are no-ops."""
        shape = self.shares.shape
        q = np.asarray(qty, dtype=np.float64)
        if q.shape != shape:
            raise InputError(f"fill quantities have shape {q.shape}, expected {shape}")
        if np.any(np.abs(q * STEPS - np.round(q * STEPS)) > 1e-6):
            raise InputError(
                f"fill quantities must be whole shares or steps of {1.0 / STEPS:g} shares"
            )
        c = np.asarray(commission, dtype=np.float64)
        if np.any(c < 0.0):
            raise InputError("commissions must not be negative")
        zeros = np.zeros(shape)
        _fill_batch(
            self.state,
            self.shares,
            self.avg_cost,
            np.ascontiguousarray(q),
            np.ascontiguousarray(np.broadcast_to(np.asarray(price, dtype=np.float64), shape)),
            np.ascontiguousarray(np.broadcast_to(c, shape)),
            np.ascontiguousarray(zeros if spread_cost is None else spread_cost, dtype=np.float64),
            np.ascontiguousarray(zeros if impact_cost is None else impact_cost, dtype=np.float64),
        )

    def mark(self, prices: np.ndarray) -> np.ndarray:
        """Mark every account to ``prices`` (n, n_tickers) and return the equities (n,)."""
        p = np.ascontiguousarray(np.broadcast_to(prices, self.shares.shape), dtype=np.float64)
        _mark_batch(self.state, self.shares, self.avg_cost, p)
        return self.equity

    @property
    def cash(self) -> np.ndarray:
        """Cash per account."""
        return self.state[:, PF_CASH].copy()

    @property
    def equity(self) -> np.ndarray:
        """Equity at the last mark."""
        return self.state[:, PF_EQUITY].copy()

    @property
    def realised(self) -> np.ndarray:
        """Realised P&L (at fill prices, before commissions)."""
        return self.state[:, PF_REALISED].copy()

    @property
    def unrealised(self) -> np.ndarray:
        """Unrealised P&L at the last mark."""
        return self.state[:, PF_UNREALISED].copy()

    @property
    def fees(self) -> np.ndarray:
        """Commissions charged so far."""
        return self.state[:, PF_FEES].copy()

    @property
    def peak_equity(self) -> np.ndarray:
        """Highest marked equity (starting capital at first)."""
        return self.state[:, PF_PEAK].copy()

    @property
    def drawdown(self) -> np.ndarray:
        """Drawdown from the peak at the last mark, as a fraction."""
        return self.state[:, PF_DRAWDOWN].copy()

    @property
    def max_drawdown(self) -> np.ndarray:
        """Largest drawdown seen at any mark."""
        return self.state[:, PF_MAX_DRAWDOWN].copy()
