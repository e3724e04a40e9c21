"""Statistics for verdicts: seeded session bootstraps and Student-t intervals.

Everything here is a pure function of its inputs and a seed, so a verdict computed twice on the
same trace is the same verdict.

- Session bootstrap: resample the evaluated sessions with replacement (each session is one day
  and one independent episode: every session starts flat from the same capital), ``resamples``
  times, with ``numpy.random.default_rng(seed)``. Paired statistics (agent minus baseline) use
  the same resampled sessions for both sides, so the day-to-day market variation they share
  cancels out.
- One-sided lower bound at confidence ``c``: the ``1 - c`` quantile of the bootstrap
  distribution (percentile method). A mean whose 95 % lower bound is above 0 is positive at the
  5 % level.
- Two-sided interval at confidence ``c``: the ``(1 - c) / 2`` and ``(1 + c) / 2`` quantiles.
- Student-t interval of a mean of ``n`` values (used across training seeds, where ``n`` is a
  handful and a bootstrap would be meaningless): ``mean +- t_{(1 + c) / 2, n - 1} * s / sqrt(n)``
  with the t quantile computed here from the regularised incomplete beta function.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from stairways.errors import InputError

DEFAULT_RESAMPLES = 10_000
DEFAULT_SEED = 0
DEFAULT_CONFIDENCE = 0.95


def _check(confidence: float, resamples: int) -> None:
    if not 0.5 <= confidence < 1.0:
        raise InputError(f"confidence must be in [0.5, 1), got {confidence}")
    if resamples < 100:
        raise InputError(f"bootstrap resamples must be at least 100, got {resamples}")


def resample_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    """Bootstrap indices, shape ``(resamples, n)``, drawn from ``default_rng(seed)``.

    The draw is a function of its three arguments, so the last few are kept (read-only): one
    evaluation bootstraps the same sessions a dozen times (each policy's mean and Sharpe ratio,
    the agent against each baseline), and drawing 10,000 x 252 indices costs about 20 ms.
    """
    if n < 1:
        raise InputError("a bootstrap needs at least one session")
    return _draw_indices(int(n), int(resamples), int(seed))


@functools.lru_cache(maxsize=4)
def _draw_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(resamples, n), dtype=np.int64)
    idx.flags.writeable = False
    return idx


def bootstrap_means(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Mean of every bootstrap resample of ``values`` (one per row of ``idx``)."""
    return np.asarray(values, dtype=np.float64)[idx].mean(axis=1)


def sharpe_of_rows(samples: np.ndarray, periods_per_year: float) -> np.ndarray:
    """Annualised Sharpe ratio of every row: ``mean / std(ddof=1) * sqrt(periods)``.

    A row without variance has a ratio of 0 when its mean is 0 and +-inf otherwise, so a
    resample of identical gains counts as the extreme it is rather than being dropped.
    """
    mean = samples.mean(axis=1)
    sd = samples.std(axis=1, ddof=1)
    out = np.zeros_like(mean)
    # Identical values leave a rounding-error std: count them as constant.
    flat = sd <= 1e-12 * np.abs(mean)
    out[~flat] = mean[~flat] / sd[~flat] * math.sqrt(periods_per_year)
    out[flat & (mean > 0.0)] = np.inf
    out[flat & (mean < 0.0)] = -np.inf
    return out


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided interval and a one-sided lower bound."""

    estimate: float
    low: float
    high: float
    lower_bound: float
    confidence: float


def _quantiles(dist: np.ndarray, estimate: float, confidence: float) -> Interval:
    finite = dist[~np.isnan(dist)]
    alpha = 1.0 - confidence
    # Quantiles pick resampled values (no interpolation), so infinite ratios stay well defined.
    low, high, lower = np.quantile(
        finite, [alpha / 2.0, 1.0 - alpha / 2.0, alpha], method="inverted_cdf"
    )
    return Interval(
        estimate=estimate,
        low=float(low),
        high=float(high),
        lower_bound=float(lower),
        confidence=confidence,
    )


def mean_interval(
    values: np.ndarray,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> Interval:
    """Bootstrap interval and lower bound of the mean of per-session ``values``."""
    _check(confidence, resamples)
    v = np.asarray(values, dtype=np.float64)
    idx = resample_indices(len(v), resamples, seed)
    return _quantiles(bootstrap_means(v, idx), float(v.mean()), confidence)


def paired_mean_interval(
    treatment: np.ndarray,
    baseline: np.ndarray,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> Interval:
    """Bootstrap interval of the mean of ``treatment - baseline`` over the same sessions."""
    a = np.asarray(treatment, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    if a.shape != b.shape:
        raise InputError(f"paired values need the same sessions, got {a.shape} and {b.shape}")
    return mean_interval(a - b, confidence=confidence, resamples=resamples, seed=seed)


def sharpe_interval(
    daily_returns: np.ndarray,
    periods_per_year: float,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> Interval | None:
    """Bootstrap interval of the annualised Sharpe ratio of daily returns (None below 2 days
    or when the ratio itself is undefined: a constant non-zero return)."""
    _check(confidence, resamples)
    r = np.asarray(daily_returns, dtype=np.float64)
    if len(r) < 2:
        return None
    estimate = sharpe_of_rows(r[None, :], periods_per_year)[0]
    if math.isinf(estimate):
        return None
    idx = resample_indices(len(r), resamples, seed)
    dist = sharpe_of_rows(r[idx], periods_per_year)
    return _quantiles(dist, float(estimate), confidence)


# ----- Student t --------------------------------------------------------------------------------


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(c) > tiny else 1.0 + aa / tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(c) > tiny else 1.0 + aa / tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            return h
    raise ArithmeticError(f"incomplete beta did not converge (a={a}, b={b}, x={x})")


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(ln_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def student_t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    if df <= 0:
        raise InputError(f"degrees of freedom must be positive, got {df}")
    x = df / (df + t * t)
    tail = 0.5 * _betainc(df / 2.0, 0.5, x)
    return 1.0 - tail if t > 0 else tail


def student_t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (bisection)."""
    if not 0.0 < p < 1.0:
        raise InputError(f"quantile level must be in (0, 1), got {p}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -student_t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while student_t_cdf(hi, df) < p:
        hi *= 2.0
        if hi > 1e12:
            raise ArithmeticError(f"t quantile {p} with df {df} is out of range")
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if student_t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class MeanCI:
    """Mean, sample standard deviation and Student-t interval of a handful of values."""

    n: int
    mean: float
    std: float
    low: float
    high: float
    confidence: float


def t_interval(values: np.ndarray, confidence: float = DEFAULT_CONFIDENCE) -> MeanCI:
    """Student-t interval of the mean of ``values`` (at least two)."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2:
        raise InputError(f"an interval of a mean needs at least two values, got {len(v)}")
    if not 0.5 <= confidence < 1.0:
        raise InputError(f"confidence must be in [0.5, 1), got {confidence}")
    mean = float(v.mean())
    std = float(v.std(ddof=1))
    half = student_t_quantile((1.0 + confidence) / 2.0, len(v) - 1) * std / math.sqrt(len(v))
    return MeanCI(
        n=len(v), mean=mean, std=std, low=mean - half, high=mean + half, confidence=confidence
    )
