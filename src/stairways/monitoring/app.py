"""The dashboard web app (FastAPI): one live page fed by server-sent events, the operator
controls, ``/metrics`` for Prometheus and the research view.

Routes: ``/`` the dashboard, ``/events`` the SSE stream of snapshots, ``/api/snapshot`` one
snapshot, ``POST /api/control/halt|resume`` the controls, ``/metrics``, ``/research``,
``/static/...`` the page's script and style and the charting library (``plotly.min.js`` served
from the installed ``plotly`` package: no CDN, no internet needed).

Served on loopback, viewing needs no token. Served elsewhere (``require_token``), every
request needs the operator token (``Authorization: Bearer ...`` or the cookie ``POST /login``
sets).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from stairways.errors import InputError, MissingResourceError
from stairways.monitoring.metrics import registry_for
from stairways.monitoring.research import research_page
from stairways.monitoring.service import ControlRefusedError, Monitor
from stairways.stress.results import read_latest

__all__ = ["TOKEN_COOKIE", "create_app", "plotly_js_path"]

log = logging.getLogger(__name__)

TOKEN_COOKIE = "stairways_operator"
STATIC = resources.files("stairways.monitoring") / "static"


def plotly_js_path() -> Path:
    """``plotly.min.js`` inside the installed plotly package (refused when it is missing)."""
    try:
        path = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
    except ModuleNotFoundError:
        raise MissingResourceError(
            "the plotly package is not installed; the dashboard's charts need it "
            "(pip install the project's pinned plotly)"
        ) from None
    if not path.is_file():
        raise MissingResourceError(f"{path} is missing: reinstall the pinned plotly package")
    return path


def _page() -> str:
    return (STATIC / "dashboard.html").read_text(encoding="utf-8")


def create_app(
    monitor: Monitor,
    *,
    runs_dir: Path | None = None,
    stress_dir: Path | None = None,
    poll_seconds: float = 1.0,
    heartbeat_seconds: float = 15.0,
    require_token: bool = False,
) -> FastAPI:
    """The app over ``monitor``.

    :param monitor: journal view, controls and alerts
    :param runs_dir: folder of training runs for the research view (None hides it)
    :param stress_dir: the nightly stress suite's results folder (``/stress``; None hides it)
    :param poll_seconds: how often the event stream looks for new journal records
    :param heartbeat_seconds: a comment line this often keeps idle streams open
    :param require_token: every request needs the operator token (serving beyond loopback)
    """
    if require_token and monitor.token is None:
        raise MissingResourceError(
            "serving beyond loopback needs the operator token in the vault "
            "(`stairways secrets set operator_token --generate`)"
        )
    plotly_path = plotly_js_path()
    app = FastAPI(title="Stairways monitor", docs_url=None, redoc_url=None, openapi_url=None)
    registry = registry_for(monitor)

    def _token_ok(request: Request) -> bool:
        assert monitor.token is not None
        expected = monitor.token.reveal().encode("utf-8")
        header = request.headers.get("authorization", "")
        given = header[7:] if header.lower().startswith("bearer ") else ""
        given = given or request.cookies.get(TOKEN_COOKIE, "")
        return bool(given) and hmac.compare_digest(given.encode("utf-8"), expected)

    if require_token:

        @app.middleware("http")
        async def _auth(
            request: Request, call_next: Callable[[Request], Awaitable[Response]]
        ) -> Response:
            if request.url.path in ("/login",) or _token_ok(request):
                return await call_next(request)
            if request.method == "GET" and request.url.path == "/":
                return HTMLResponse(_LOGIN, status_code=401)
            return JSONResponse({"error": "the operator token is required"}, status_code=401)

    @app.get("/login", response_class=HTMLResponse)
    async def login_form() -> HTMLResponse:
        return HTMLResponse(_LOGIN)

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = (await request.body()).decode("utf-8")
        from urllib.parse import parse_qs

        token = parse_qs(form).get("token", [""])[0]
        if monitor.token is None or not hmac.compare_digest(
            token.encode("utf-8"), monitor.token.reveal().encode("utf-8")
        ):
            return HTMLResponse(_LOGIN.replace("<!--e-->", "<p>Wrong token.</p>"), 401)
        resp = RedirectResponse("/", status_code=303)
        resp.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        return resp

    @app.get("/", response_class=HTMLResponse)
    async def dashboard() -> HTMLResponse:
        return HTMLResponse(_page())

    @app.get("/api/snapshot")
    async def snapshot() -> JSONResponse:
        await run_in_threadpool(monitor.refresh)
        return JSONResponse(await run_in_threadpool(monitor.snapshot))

    @app.get("/events")
    async def events(request: Request) -> StreamingResponse:
        async def stream() -> AsyncIterator[str]:
            sent_version = -1
            idle = 0.0
            while not await request.is_disconnected():
                await run_in_threadpool(monitor.refresh)
                if monitor.version != sent_version:
                    snap = await run_in_threadpool(monitor.snapshot)
                    sent_version = int(snap["version"])
                    idle = 0.0
                    yield f"event: snapshot\ndata: {json.dumps(snap)}\n\n"
                elif idle >= heartbeat_seconds:
                    idle = 0.0
                    yield ": keep-alive\n\n"
                await asyncio.sleep(poll_seconds)
                idle += poll_seconds

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.post("/api/control/{action}")
    async def control(action: str, request: Request) -> JSONResponse:
        try:
            body: Any = await request.json()
        except json.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            return JSONResponse({"error": "send a JSON object"}, status_code=400)
        try:
            result = await run_in_threadpool(
                lambda: monitor.control(
                    action,
                    operator=str(body.get("operator", "")),
                    reason=str(body.get("reason", "")),
                    token=str(body.get("token", "")),
                    confirmed=body.get("confirm") is True,
                )
            )
        except ControlRefusedError as err:
            return JSONResponse({"error": str(err), "refused": True}, status_code=err.status)
        return JSONResponse(
            {
                "action": result.action,
                "before": result.before,
                "after": result.after,
                "operator": result.operator,
                "reason": result.reason,
            }
        )

    @app.get("/metrics")
    async def metrics() -> Response:
        data = await run_in_threadpool(generate_latest, registry)
        return Response(data, media_type=CONTENT_TYPE_LATEST)

    @app.get("/research", response_class=HTMLResponse)
    async def research() -> HTMLResponse:
        if runs_dir is None:
            return HTMLResponse(
                "<p>No runs folder: start the monitor with --runs-dir.</p>", status_code=404
            )
        return HTMLResponse(await run_in_threadpool(research_page, runs_dir))

    @app.get("/api/stress")
    async def stress_results() -> JSONResponse:
        if stress_dir is None:
            return JSONResponse({"error": "no stress folder: start with --stress-dir"}, 404)
        try:
            suite = await run_in_threadpool(read_latest, stress_dir)
        except InputError as err:
            return JSONResponse({"error": str(err)}, status_code=409)
        if suite is None:
            return JSONResponse(
                {"error": f"no stress results in {stress_dir} (stairways stress run)"}, 404
            )
        return JSONResponse(suite.as_dict())

    @app.get("/stress", response_class=HTMLResponse)
    async def stress_report() -> HTMLResponse:
        pages = sorted(stress_dir.glob("*/report.html")) if stress_dir is not None else []
        if not pages:
            return HTMLResponse(
                f"<p>No stress report in {stress_dir}: run `stairways stress run`.</p>", 404
            )
        return HTMLResponse(await run_in_threadpool(pages[-1].read_text, "utf-8"))

    @app.get("/static/plotly.min.js")
    async def plotly_js() -> FileResponse:
        return FileResponse(plotly_path, media_type="application/javascript")

    @app.get("/static/{name}")
    async def static(name: str) -> Response:
        if name not in ("dashboard.js", "dashboard.css"):
            return JSONResponse({"error": f"no static file {name}"}, status_code=404)
        kind = "application/javascript" if name.endswith(".js") else "text/css"
        return Response((STATIC / name).read_text(encoding="utf-8"), media_type=kind)

    return app


_LOGIN = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>Stairways monitor: sign in</title></head><body>
<h1>Stairways monitor</h1><!--e-->
<form method="post" action="/login"><label>Operator token
<input type="password" name="token" autocomplete="off"></label>
<button type="submit">Sign in</button></form></body></html>
"""
