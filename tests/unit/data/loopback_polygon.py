"""A loopback stand-in for Polygon's minute-aggregates endpoint (127.0.0.1 only).

It answers ``/v2/aggs/ticker/{symbol}/range/1/minute/{from}/{to}`` in Polygon's recorded
format (``results``, ``next_url``, ``status``, ``resultsCount``...), pages by ``limit`` with a
``cursor`` in ``next_url`` (without the key, as Polygon does), and can be told to fail:
a queue of scripted statuses for the next requests, or a status for every request of a window.
Every window holds each regular-hours minute plus two pre-market bars per session.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pandas as pd

from stairways.data import calendar as cal

API_KEY = "loopback-test-key"


@dataclass
class PolygonState:
    """What the server answers and what it was asked."""

    key: str = API_KEY
    port: int = 0
    scripted: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    failing_windows: dict[str, int] = field(default_factory=dict)  # from-date -> status
    bad_bar: tuple[str, str, int] | None = None  # (symbol, from-date, result index)
    next_host: str | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def windows_requested(self) -> list[str]:
        """``from`` dates of the first page of every window fetched, in order."""
        return [r["from"] for r in self.requests if "cursor" not in r["query"]]


def bars_for(symbol: str, start: str, end: str) -> list[dict[str, Any]]:
    """Deterministic Polygon-style results: regular hours plus two pre-market bars a session."""
    minutes = cal.session_minutes(start, end)
    sessions = cal.sessions(start, end)
    pre = [o - pd.Timedelta(minutes=k) for o in sessions.opens for k in (90, 89)]
    stamps = sorted([*pre, *minutes])
    base = 100.0 if symbol == "MSFT" else 400.0
    out = []
    for k, ts in enumerate(stamps):
        price = round(base + (k % 17) * 0.05, 2)
        out.append(
            {
                "v": 1000.0 + k,
                "vw": price,
                "o": price,
                "c": price,
                "h": round(price + 0.1, 2),
                "l": round(price - 0.1, 2),
                "t": int(ts.value // 1_000_000),
                "n": 10 + k % 5,
            }
        )
    return out


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def _send(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        state = self.server.state
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        parts = url.path.strip("/").split("/")
        # v2 aggs ticker SYM range 1 minute FROM TO
        if len(parts) != 9 or parts[:3] != ["v2", "aggs", "ticker"]:
            self._send(404, {"status": "NOT_FOUND", "error": "unknown path"}, {})
            return
        symbol, start, end = parts[3], parts[7], parts[8]
        with state.lock:
            state.requests.append({"symbol": symbol, "from": start, "to": end, "query": query})
            scripted = state.scripted.pop(0) if state.scripted else None
        if query.get("apiKey") != state.key:
            self._send(403, {"status": "NOT_AUTHORIZED", "error": "Unknown API Key"}, {})
            return
        if scripted is not None:
            self._send(scripted[0], {"status": "ERROR", "error": "scripted"}, scripted[1])
            return
        if start in state.failing_windows:
            self._send(state.failing_windows[start], {"status": "ERROR", "error": "busy"}, {})
            return
        results = bars_for(symbol, start, end)
        if state.bad_bar is not None and state.bad_bar[:2] == (symbol, start):
            results[state.bad_bar[2]]["h"] = results[state.bad_bar[2]]["l"] - 1.0
        limit = int(query.get("limit", "50000"))
        cursor = int(query.get("cursor", "0"))
        page = results[cursor : cursor + limit]
        body: dict[str, Any] = {
            "ticker": symbol,
            "queryCount": len(page),
            "resultsCount": len(page),
            "adjusted": query.get("adjusted") == "true",
            "status": "OK",
            "request_id": f"req-{len(state.requests)}",
            "count": len(page),
        }
        if page:
            body["results"] = page
        if cursor + limit < len(results):
            host = state.next_host or f"127.0.0.1:{state.port}"
            rest = {k: v for k, v in query.items() if k not in ("apiKey", "cursor")}
            body["next_url"] = (
                f"http://{host}{url.path}?{urlencode({**rest, 'cursor': cursor + limit})}"
            )
        self._send(200, body, {})


class _Server(ThreadingHTTPServer):
    state: PolygonState


@contextmanager
def loopback_polygon() -> Iterator[tuple[str, PolygonState]]:
    """Run the server on 127.0.0.1 (a free port) and yield its base URL and state."""
    server = _Server(("127.0.0.1", 0), _Handler)
    state = PolygonState(port=server.server_address[1])
    server.state = state
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{state.port}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
