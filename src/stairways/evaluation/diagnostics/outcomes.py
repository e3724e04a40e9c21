"""Per-session outcomes of an evaluation and paired comparisons between two of them.

Every diagnostic compares policies session by session on the same split: the difference of
two agents on the same session removes most of the market's day-to-day variation, so the
noise of a comparison is the spread of those paired differences (a paired t-statistic).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, model_validator

from stairways.errors import InputError, InternalError
from stairways.evaluation.traces import Trace

OutcomeMetric = Literal["reward", "net_pnl", "length"]


class Record(BaseModel):
    """Base of the diagnostic result records: frozen, strict keys, JSON keeps inf and NaN."""

    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="constants")


class SessionOutcomes(Record):
    """One value per evaluated session (episode): summed reward, net P&L and steps taken."""

    sessions: tuple[str, ...]
    reward: tuple[float, ...]
    net_pnl: tuple[float, ...]
    length: tuple[int, ...]

    @model_validator(mode="after")
    def _same_length(self) -> SessionOutcomes:
        n = len(self.sessions)
        if not (len(self.reward) == len(self.net_pnl) == len(self.length) == n):
            raise ValueError("sessions, reward, net_pnl and length must have one entry each")
        if len(set(self.sessions)) != n:
            raise ValueError("sessions must be distinct")
        return self

    @property
    def n(self) -> int:
        """Number of sessions."""
        return len(self.sessions)

    def values(self, metric: OutcomeMetric) -> np.ndarray:
        """The per-session values of ``metric`` as float64."""
        return np.asarray(getattr(self, metric), dtype=np.float64)

    def mean(self, metric: OutcomeMetric) -> float:
        """Mean over sessions (NaN without sessions)."""
        return float(np.mean(self.values(metric))) if self.n else math.nan

    def std(self, metric: OutcomeMetric) -> float:
        """Sample standard deviation over sessions (NaN with fewer than two)."""
        return float(np.std(self.values(metric), ddof=1)) if self.n > 1 else math.nan


def session_outcomes(trace: Trace) -> SessionOutcomes:
    """Sum reward and net P&L and count steps per session of a replay trace."""
    f = trace.frame
    grouped = f.groupby("session_date", sort=True)
    reward = grouped["reward"].sum()
    pnl = grouped["step_pnl"].sum()
    length = grouped.size()
    days = [d.date().isoformat() for d in reward.index]
    return SessionOutcomes(
        sessions=tuple(days),
        reward=tuple(float(x) for x in reward.to_numpy()),
        net_pnl=tuple(float(x) for x in pnl.to_numpy()),
        length=tuple(int(x) for x in length.to_numpy()),
    )


class PairedDifference(Record):
    """``treatment - baseline`` per session: mean, standard error and t-statistic.

    ``t`` is ``mean / se``; when every difference is identical (se 0) it is +inf, -inf or 0
    by the sign of the mean, so a constant edge is never mistaken for noise.
    """

    metric: str
    n: int
    mean: float
    se: float
    t: float
    baseline_mean: float
    treatment_mean: float


def paired_difference(
    baseline: SessionOutcomes, treatment: SessionOutcomes, metric: OutcomeMetric
) -> PairedDifference:
    """Paired comparison of two evaluations on the same sessions.

    :raises InternalError: when the two evaluations did not replay the same sessions
    """
    if baseline.sessions != treatment.sessions:
        only_a = sorted(set(baseline.sessions) - set(treatment.sessions))
        only_b = sorted(set(treatment.sessions) - set(baseline.sessions))
        raise InternalError(
            "paired comparison needs the same sessions in both evaluations; "
            f"only in baseline: {only_a[:5]}, only in treatment: {only_b[:5]}"
        )
    if baseline.n < 2:
        raise InputError(f"paired comparison needs at least 2 sessions, got {baseline.n}")
    d = treatment.values(metric) - baseline.values(metric)
    mean = float(np.mean(d))
    se = float(np.std(d, ddof=1) / math.sqrt(len(d)))
    constant = math.copysign(math.inf, mean) if mean != 0 else 0.0
    t = mean / se if se > 0 else constant
    return PairedDifference(
        metric=metric,
        n=len(d),
        mean=mean,
        se=se,
        t=t,
        baseline_mean=baseline.mean(metric),
        treatment_mean=treatment.mean(metric),
    )
