"""Polygon.io minute aggregates: the v2 aggs response format, over REST or from saved files.

The one reader of the format is here: :func:`aggs_problem` says whether a decoded response is
usable, :func:`aggs_records` takes its bars out, and :func:`aggs_frame` turns them into
:class:`RawBars` for validation. The live client and :func:`read_aggs_file` (a response saved
as ``.json`` or ``.json.gz``) both use them, so the two paths cannot disagree.

``GET {base_url}/v2/aggs/ticker/{symbol}/range/1/minute/{from}/{to}`` returns up to ``limit``
bars per page and a ``next_url`` for the rest; the key is appended to every page. Rate limits
(HTTP 429) and server or network failures are retried with exponential backoff, honouring
``Retry-After``, a bounded number of times before a :class:`TemporaryError`. A refused key
(401/403) is an :class:`ExternalServiceError` naming the environment variable. The key never
appears in logs or messages.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, Self

import httpx
import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from stairways.configbase import Frozen
from stairways.data.validation import ROW_COLUMN, RawBars
from stairways.errors import (
    DataValidationError,
    ExternalServiceError,
    InputError,
    MissingResourceError,
    TemporaryError,
)

log = logging.getLogger(__name__)

API_KEY_ENV = "POLYGON_API_KEY"
_FIELDS = {
    "t": "ts",
    "o": "open",
    "h": "high",
    "l": "low",
    "c": "close",
    "v": "volume",
    "vw": "vwap",
    "n": "trade_count",
}
_REQUIRED_FIELDS = ("t", "o", "h", "l", "c", "v")
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
OK_STATUSES = frozenset({"OK", "DELAYED"})
"""Response statuses that carry bars; anything else (ERROR, NOT_AUTHORIZED, ...) is an error."""
AGGS_SUFFIXES: tuple[str, ...] = (".json", ".json.gz")
"""File names of saved aggregates responses."""

ErrorFactory = Callable[[str], Exception]


def aggs_problem(body: object) -> str | None:
    """Why a decoded aggregates response carries no usable bars, or None when it is fine.

    An object whose ``status`` is not OK or DELAYED is an error response (its ``error`` or
    ``message`` is quoted); ``results``, when present, must be a list.
    """
    if not isinstance(body, dict):
        return f"the JSON is a {type(body).__name__}, not a response object"
    status = body.get("status")
    if status not in OK_STATUSES:
        message = body.get("error") or body.get("message") or "no message"
        return f"status {status}: {message}"
    results = body.get("results")
    if results is not None and not isinstance(results, list):
        return "its results are not a list"
    return None


def aggs_records(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The bars of a usable response (see :func:`aggs_problem`); empty when it has none."""
    results = body.get("results")
    return list(results) if results else []


def aggs_frame(
    records: list[dict[str, Any]], symbol: str, origin: str, error: ErrorFactory
) -> RawBars:
    """Aggregates (``t, o, h, l, c, v`` and optional ``vw, n``) as raw bars numbered by result.

    :param records: the ``results`` of one or more pages, in order
    :param symbol: the ticker the bars belong to
    :param origin: the request or file, used in every message
    :param error: builds the exception raised when a field is missing
    """
    if records:
        if not all(isinstance(r, dict) for r in records):
            raise error(f"{origin}: the results are not all objects")
        frame = pd.DataFrame.from_records(records)
        absent = [k for k in _REQUIRED_FIELDS if k not in frame.columns]
        if absent:
            raise error(f"{origin}: the results lack the field(s) {', '.join(absent)}")
    else:
        frame = pd.DataFrame({k: pd.Series([], dtype="float64") for k in _FIELDS})
    frame = frame.loc[:, [k for k in _FIELDS if k in frame.columns]].rename(columns=_FIELDS)
    frame.insert(0, "symbol", symbol)
    frame[ROW_COLUMN] = np.arange(1, len(frame) + 1, dtype=np.int64)
    return RawBars(origin=origin, frame=frame, row_label="result", epoch_unit="ms")


def read_aggs_file(path: Path, symbol: str | None = None) -> RawBars:
    """A saved aggregates response (``.json`` or ``.json.gz``) as raw bars.

    The ticker comes from the response (``ticker``) or, when it names none, from ``symbol``.
    An error response, a response without results and a file that is not such a response are
    a :class:`DataValidationError` naming the file, raised before anything is written.

    :param path: the file
    :param symbol: the ``--symbol`` given by the user (must agree with the response's ticker)
    """
    origin = str(path)
    try:
        if path.name.lower().endswith(".gz"):
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                text = fh.read()
        else:
            text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, EOFError) as err:
        raise DataValidationError(f"{origin}: cannot be read: {err}") from None
    try:
        body = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataValidationError(
            f"{origin}: is not valid JSON ({err}); a saved Polygon aggregates response is one "
            "JSON object with status, ticker and results"
        ) from None
    problem = aggs_problem(body)
    if problem is not None:
        raise DataValidationError(
            f"{origin}: is a Polygon error response, not bars ({problem}); nothing was "
            "written. Fetch the range again and save the successful response"
        )
    records = aggs_records(body)
    if not records:
        raise DataValidationError(
            f"{origin}: the Polygon response holds no results (resultsCount "
            f"{body.get('resultsCount', 0)}, status {body.get('status')}); nothing was written. "
            "Check the ticker and date range of the request that produced it"
        )
    ticker = body.get("ticker")
    if ticker is not None and not isinstance(ticker, str):
        raise DataValidationError(f"{origin}: ticker {ticker!r} is not text")
    if symbol is not None and ticker is not None and ticker != symbol:
        raise InputError(f"--symbol {symbol} contradicts {origin}, which holds bars for {ticker}")
    chosen = ticker or symbol
    if chosen is None:
        raise DataValidationError(
            f"{origin}: the response names no ticker; pass --symbol TICKER for this file"
        )
    if body.get("next_url"):
        log.info("%s is one page of a longer response; import its other pages too", origin)
    return aggs_frame(records, chosen, origin, DataValidationError)


def polygon_api_key() -> str:
    """The Polygon API key from ``$POLYGON_API_KEY``.

    The CLI reads it through :func:`stairways.security.credentials.credential`, which prefers
    the secrets vault when one is configured and falls back to this variable.
    """
    key = os.environ.get(API_KEY_ENV, "").strip()
    if not key:
        raise MissingResourceError(
            f"the Polygon API key is not set: export {API_KEY_ENV}=<your key> and run again"
        )
    return key


class PolygonConfig(Frozen):
    """Connection and retry settings of the Polygon aggregates client."""

    base_url: str = Field(default="https://api.polygon.io", description="API root")
    adjusted: bool = Field(default=True, description="Split-adjusted prices")
    limit: int = Field(default=50_000, ge=1, le=50_000, description="Bars per page")
    max_retries: int = Field(default=5, ge=0, le=20, description="Retries per request")
    backoff_seconds: float = Field(default=1.0, gt=0.0, le=60.0, description="First backoff")
    max_backoff_seconds: float = Field(default=60.0, gt=0.0, le=900.0, description="Longest wait")
    timeout_seconds: float = Field(default=30.0, gt=0.0, le=600.0, description="Per request")
    max_pages: int = Field(default=200, ge=1, le=10_000, description="Pages per window")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        url = httpx.URL(value)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"base_url must be an http(s) URL, got {value!r}")
        return value.rstrip("/")


class _RedactApiKey(logging.Filter):
    """Blank the key in records of the HTTP libraries (httpx logs every URL it requests)."""

    _pattern = re.compile(r"(apiKey=)[^&\s\"']+")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "apiKey=" in message:
            record.msg = self._pattern.sub(r"\1REDACTED", message)
            record.args = None
        return True


def _install_redaction() -> None:
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactApiKey) for f in logger.filters):
            logger.addFilter(_RedactApiKey())


def _redact(url: httpx.URL) -> str:
    return str(url.copy_remove_param("apiKey"))


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        log.warning("ignoring a Retry-After header that is not a number of seconds: %r", value)
        return None
    return max(seconds, 0.0)


class PolygonAggregates:
    """The Polygon minute-aggregates endpoint as a :class:`~stairways.data.sources.BarSource`.

    :param cfg: connection and retry settings
    :param api_key: the key (see :func:`polygon_api_key`)
    :param transport: httpx transport override (tests pass none: they use a loopback server)
    :param sleep: how to wait between retries (tests record the delays instead)
    """

    name = "polygon"

    def __init__(
        self,
        cfg: PolygonConfig,
        api_key: str,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.cfg = cfg
        self._key = api_key
        self._sleep = sleep
        self._origin = httpx.URL(cfg.base_url)
        _install_redaction()
        self._client = httpx.Client(timeout=cfg.timeout_seconds, transport=transport)
        self.requests = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def describe(self) -> dict[str, object]:
        """Provenance recorded with stored bars."""
        return {"service": "polygon", "base_url": self.cfg.base_url, "adjusted": self.cfg.adjusted}

    def _backoff(self, attempt: int) -> float:
        return float(min(self.cfg.backoff_seconds * 2**attempt, self.cfg.max_backoff_seconds))

    def _get(self, url: httpx.URL, what: str) -> dict[str, Any]:
        """GET ``url`` (key already added) with bounded retries; the decoded JSON body."""
        shown = _redact(url)
        for attempt in range(self.cfg.max_retries + 1):
            self.requests += 1
            try:
                response = self._client.get(url)
            except httpx.TransportError as err:
                reason = f"network error ({type(err).__name__})"
                delay = self._backoff(attempt)
            else:
                status = response.status_code
                if status == 200:
                    return self._decode(response, shown)
                if status in (401, 403):
                    raise ExternalServiceError(
                        f"Polygon refused the API key (HTTP {status}) for {what}: check "
                        f"{API_KEY_ENV} and that your plan includes minute aggregates"
                    )
                if status not in _RETRY_STATUSES:
                    raise ExternalServiceError(
                        f"Polygon answered HTTP {status} for {shown}: {response.text[:200]}"
                    )
                reason = f"HTTP {status}"
                asked = _retry_after(response)
                if asked is not None and asked > self.cfg.max_backoff_seconds:
                    raise TemporaryError(
                        f"Polygon asks to wait {asked:.0f} s (Retry-After) for {what}, longer "
                        f"than max_backoff_seconds={self.cfg.max_backoff_seconds:.0f}; run the "
                        "import again later (stored windows are skipped)"
                    )
                delay = asked if asked is not None else self._backoff(attempt)
            if attempt == self.cfg.max_retries:
                raise TemporaryError(
                    f"Polygon failed with {reason} for {what} after {attempt + 1} attempts; "
                    "run the import again later (stored windows are skipped)"
                )
            log.warning(
                "Polygon %s for %s; retrying in %.1f s (retry %d of %d)",
                reason,
                what,
                delay,
                attempt + 1,
                self.cfg.max_retries,
            )
            self._sleep(delay)
        raise AssertionError("unreachable: the retry loop returns or raises")

    @staticmethod
    def _decode(response: httpx.Response, shown: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            raise ExternalServiceError(
                f"Polygon answered {shown} with a body that is not JSON: {response.text[:200]!r}"
            ) from None
        problem = aggs_problem(body)
        if problem is not None or not isinstance(body, dict):
            raise ExternalServiceError(f"Polygon answered {shown}: {problem}")
        return body

    def _next(self, next_url: str) -> httpx.URL:
        url = httpx.URL(next_url)
        same = (url.scheme, url.host, url.port) == (
            self._origin.scheme,
            self._origin.host,
            self._origin.port,
        )
        if not same:
            # The key is appended to every page; never send it to another host.
            raise ExternalServiceError(
                f"Polygon's next_url points to {url.scheme}://{url.host}, not to the configured "
                f"base_url {self.cfg.base_url}; refusing to send the API key there"
            )
        return url.copy_merge_params({"apiKey": self._key})

    def fetch(self, symbol: str, start: date, end: date) -> RawBars:
        """All minute bars of ``symbol`` from ``start`` to ``end`` (inclusive), every page."""
        what = f"{symbol} {start}..{end}"
        url = httpx.URL(
            f"{self.cfg.base_url}/v2/aggs/ticker/{symbol}/range/1/minute/{start}/{end}",
            params={
                "adjusted": "true" if self.cfg.adjusted else "false",
                "sort": "asc",
                "limit": str(self.cfg.limit),
                "apiKey": self._key,
            },
        )
        results: list[dict[str, Any]] = []
        pages = 0
        next_url: httpx.URL | None = url
        while next_url is not None:
            if pages == self.cfg.max_pages:
                raise ExternalServiceError(
                    f"Polygon returned more than max_pages={self.cfg.max_pages} pages for {what}; "
                    "raise max_pages or import shorter windows"
                )
            body = self._get(next_url, what)
            pages += 1
            ticker = body.get("ticker")
            if ticker is not None and ticker != symbol:
                raise ExternalServiceError(
                    f"Polygon answered a request for {symbol} with bars for {ticker}"
                )
            results.extend(aggs_records(body))
            link = body.get("next_url")
            next_url = self._next(link) if link else None
        log.info("Polygon %s: %d bars in %d pages", what, len(results), pages)
        return aggs_frame(results, symbol, f"polygon {what}", ExternalServiceError)
