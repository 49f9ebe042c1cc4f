"""The app factory: ``create_app(view, data_dir=...)`` builds a FastAPI app around a gateway.

Nothing is built at import time; each call makes an independent app (tests build several).
The gateway serves it with uvicorn; call :func:`close_streams` (on the server's loop) when
shutting down, before or as uvicorn's ``should_exit`` is set, so open event streams end at once
instead of holding up the graceful shutdown.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import importlib.util
import re
import time
from collections.abc import Callable
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from mepgate import __version__
from mepgate.service.view import GatewayView
from mepgate.web.auth import Auth, Clock
from mepgate.web.deps import LoginRequired, ReaderDep, SetupRequired, ViewDep, WebState
from mepgate.web.energy_totals import SharedEnergyTotals
from mepgate.web.formatting import num
from mepgate.web.pages import config, console, dashboard, history, login, meter, setup
from mepgate.web.pages.setup import announce_setup_token
from mepgate.web.render import CsrfRejected, make_templates, message_page, wants_html
from mepgate.web.routers import dashdata, energy, health, reading, stream
from mepgate.web.routers import history as history_api
from mepgate.web.routers import meter as meter_api
from mepgate.web.security import (
    CONTENT_SECURITY_POLICY,
    IPNetwork,
    SecurityMiddleware,
    parse_networks,
)

STATIC_DIR = Path(__file__).parent / "static"
API_PREFIX = "/api/v1"
METRICS_MODULE = "mepgate.outputs.prometheus"


def create_app(view: GatewayView, *, data_dir: Path, clock: Clock = time.monotonic) -> FastAPI:
    """The web app for ``view``; ``data_dir`` holds the admin password hash and key files."""
    templates = make_templates()
    templates.env.filters["num"] = num
    state = WebState(
        view=view,
        data_dir=data_dir,
        auth=Auth(data_dir, clock),
        templates=templates,
        energy=SharedEnergyTotals(view, clock=clock),
    )
    app = FastAPI(
        title="mepgate",
        version=__version__,
        summary="Live values and history of Echelon/NES (OSGP) smart meters read over MEP",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # api_docs(): the same page, with a CSP that lets it run
        redoc_url=None,
    )
    app.state.web = state
    app.add_middleware(SecurityMiddleware, trusted_proxies=lambda: trusted_proxies(view))
    app.include_router(api_docs(app))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for module in (reading, energy, history_api, meter_api, health, stream, dashdata):
        app.include_router(module.router)
    for page in (dashboard, history, meter, console, config, setup, login):
        app.include_router(page.router)
    metrics = metrics_router()
    if metrics is not None:
        app.include_router(metrics)
    _install_handlers(app, state)
    announce_setup_token(state)
    return app


def close_streams(app: FastAPI) -> None:
    """End every open ``/api/v1/stream`` (browsers reconnect by themselves later)."""
    state: WebState = app.state.web
    state.closing.set()


def metrics_router() -> APIRouter | None:
    """``/metrics`` when the Prometheus output is installed (``mepgate.outputs.prometheus``)."""
    if importlib.util.find_spec("mepgate.outputs") is None:
        return None
    if importlib.util.find_spec(METRICS_MODULE) is None:
        return None
    module = importlib.import_module(METRICS_MODULE)
    render_metrics: Callable[[GatewayView], bytes] = module.render_metrics
    content_type: str = getattr(module, "CONTENT_TYPE", "text/plain; version=0.0.4")
    router = APIRouter(tags=["metrics"])

    @router.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus metrics"}},
    )
    async def metrics(view: ViewDep, _: ReaderDep) -> Response:
        """Prometheus text exposition of the newest readings and the gateway's counters."""
        return Response(render_metrics(view), media_type=content_type)

    return router


def trusted_proxies(view: GatewayView) -> list[IPNetwork]:
    return parse_networks(view.settings.web.trusted_proxies)


def api_docs(app: FastAPI) -> APIRouter:
    """``/api/v1/docs``: FastAPI's Swagger UI page, which loads its script and style from a CDN
    and starts with an inline script; its CSP allows exactly those (the inline script by hash)."""
    router = APIRouter(include_in_schema=False)

    @router.get(f"{API_PREFIX}/docs")
    async def docs() -> Response:
        page = get_swagger_ui_html(openapi_url=app.openapi_url or "", title=f"{app.title} API")
        body = bytes(page.body)
        inline = re.findall(rb"<script>(.*?)</script>", body, flags=re.DOTALL)
        hashes = " ".join(
            f"'sha256-{base64.b64encode(hashlib.sha256(s).digest()).decode()}'" for s in inline
        )
        cdn = "https://cdn.jsdelivr.net"
        policy = CONTENT_SECURITY_POLICY.replace("script-src 'self'", f"script-src {cdn} {hashes}")
        policy = policy.replace("style-src 'self'", f"style-src {cdn}")
        policy = policy.replace("img-src 'self' data:", "img-src 'self' data: https:")
        return HTMLResponse(body, headers={"Content-Security-Policy": policy})

    return router


def _install_handlers(app: FastAPI, state: WebState) -> None:
    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, _exc: LoginRequired) -> Response:
        if wants_html(request) and request.method == "GET":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={_quote(target)}", status_code=303)
        return JSONResponse({"detail": "log in first"}, status_code=401)

    @app.exception_handler(SetupRequired)
    async def setup_required(request: Request, _exc: SetupRequired) -> Response:
        if wants_html(request):
            return RedirectResponse("/setup", status_code=303)
        return JSONResponse({"detail": "finish the first-run setup at /setup"}, status_code=401)

    @app.exception_handler(CsrfRejected)
    async def csrf_rejected(request: Request, _exc: CsrfRejected) -> Response:
        return message_page(
            request,
            state,
            "Form refused",
            "The form was missing its security token or it had expired (for example after a "
            "restart or a logout). Go back, reload the page and send it again.",
            403,
        )


def _quote(path: str) -> str:
    from urllib.parse import quote  # noqa: PLC0415

    return quote(path, safe="/")
