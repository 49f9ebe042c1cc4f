"""The app factory: ``create_app(view, data_dir=...)`` builds a FastAPI app around a gateway.

Nothing is built at import time; each call makes an independent app (tests build several).
The gateway serves it with uvicorn; call :func:`close_streams` (on the server's loop) when
shutting down, before or as uvicorn's ``should_exit`` is set, so open event streams end at once
instead of holding up the graceful shutdown.
"""

from __future__ import annotations

import importlib
import importlib.util
import time
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from mepgate import __version__
from mepgate.service.view import GatewayView
from mepgate.web.auth import Auth, Clock
from mepgate.web.deps import LoginRequired, ReaderDep, SetupRequired, ViewDep, WebState
from mepgate.web.energy_totals import SharedEnergyTotals
from mepgate.web.formatting import duration, num, offset, when
from mepgate.web.meter_state import CLOCK_WARNING_S, TROUBLESHOOTING_GUIDE
from mepgate.web.pages import config, console, dashboard, history, login, meter, setup
from mepgate.web.pages import events as events_page
from mepgate.web.pages.setup import announce_setup_token
from mepgate.web.render import CsrfRejected, make_templates, message_page, wants_html
from mepgate.web.routers import dashdata, energy, health, reading, stream, submeters
from mepgate.web.routers import events as events_api
from mepgate.web.routers import history as history_api
from mepgate.web.routers import meter as meter_api
from mepgate.web.routers import profile as profile_api
from mepgate.web.routers import self_reads as self_reads_api
from mepgate.web.security import (
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
    templates.env.filters["offset"] = offset
    templates.env.filters["duration"] = duration
    # Times in the gateway's local time zone (the storage settings'), read at each use: the
    # settings may change while the app runs.
    templates.env.filters["when"] = lambda value, pattern="%Y-%m-%d %H:%M:%S %Z": when(
        value, ZoneInfo(view.settings.storage.timezone), pattern
    )
    templates.env.globals["clock_warning_s"] = CLOCK_WARNING_S
    templates.env.globals["guide"] = TROUBLESHOOTING_GUIDE
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
        docs_url=None,  # ours below: Swagger UI from the package, not from a CDN
        redoc_url=None,
    )
    app.state.web = state
    app.add_middleware(SecurityMiddleware, trusted_proxies=lambda: trusted_proxies(view))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for module in (
        reading,
        energy,
        history_api,
        meter_api,
        health,
        stream,
        dashdata,
        submeters,
        events_api,
        profile_api,
    ):
        app.include_router(module.router)
    app.include_router(self_reads_api.router)
    for page in (dashboard, history, events_page, meter, console, config, setup, login):
        app.include_router(page.router)
    metrics = metrics_router()
    if metrics is not None:
        app.include_router(metrics)
    app.include_router(assets_router(state))
    _install_handlers(app, state)
    announce_setup_token(state)
    return app


def assets_router(state: WebState) -> APIRouter:
    """The API docs and the favicon, served from the package like every other asset (no page
    asks a host outside the gateway: the docs work offline)."""
    router = APIRouter(include_in_schema=False)

    @router.get(f"{API_PREFIX}/docs")
    async def docs(request: Request) -> Response:
        return state.templates.TemplateResponse(
            request, "docs.html", {"openapi_url": f"{API_PREFIX}/openapi.json"}
        )

    @router.get("/favicon.ico")
    async def favicon() -> Response:
        return FileResponse(
            STATIC_DIR / "favicon.ico",
            media_type="image/vnd.microsoft.icon",
            headers={"Cache-Control": "max-age=86400"},
        )

    return router


def close_streams(app: FastAPI) -> None:
    """End every open ``/api/v1/stream`` (browsers reconnect by themselves later) and stop the
    console's long reads before their next piece."""
    state: WebState = app.state.web
    state.closing.set()
    state.console.cancel_all()


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
