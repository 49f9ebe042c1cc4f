"""Rendering pages, session cookies and the CSRF check every form post goes through."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates

from mepgate import __version__
from mepgate.web.auth import (
    DEVICE_COOKIE,
    DEVICE_COOKIE_MAX_AGE,
    SESSION_COOKIE,
    SESSION_IDLE_S,
    Session,
)
from mepgate.web.deps import WebState

TEMPLATE_DIR = Path(__file__).parent / "templates"
CSRF_FIELD = "csrf_token"


class CsrfRejected(Exception):  # noqa: N818 -- a control-flow signal
    """A form post without the session's CSRF token: answered with 403."""


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=TEMPLATE_DIR)
    templates.env.globals["version"] = __version__
    templates.env.globals["csrf_field"] = CSRF_FIELD
    return templates


def set_session_cookie(request: Request, response: Response, session: Session) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        session.id,
        max_age=int(SESSION_IDLE_S),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def set_device_cookie(request: Request, response: Response, value: str) -> None:
    """Mark this browser as one the admin logged in from (see :class:`LoginLimiter`)."""
    response.set_cookie(
        DEVICE_COOKIE,
        value,
        max_age=DEVICE_COOKIE_MAX_AGE,
        path="/login",  # only the login needs it
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def render(
    request: Request,
    state: WebState,
    template: str,
    context: dict[str, Any],
    session: Session | None,
    *,
    form: bool = False,
    status_code: int = 200,
) -> Response:
    """A page.  ``form=True``: the page has a form, so the visitor gets a session (anonymous
    if need be) whose CSRF token the form carries."""
    new_session = None
    if form and session is None:
        session = new_session = state.auth.sessions.create(None)
    settings = state.view.settings
    response: Response = state.templates.TemplateResponse(
        request,
        template,
        {
            "session": session,
            "admin": session is not None and session.is_admin,
            "csrf_token": session.csrf if session is not None else "",
            "setup_done": state.auth.password.is_set,
            "pages_open": state.auth.password.is_set or bool(settings.meter),
            "public_dashboard": settings.web.public_dashboard,
            "meter_names": [m.name for m in settings.meter],
            **context,
        },
        status_code=status_code,
    )
    if new_session is not None:
        set_session_cookie(request, response, new_session)
    response.headers["Cache-Control"] = "no-store"
    return response


async def check_csrf(request: Request, session: Session | None) -> dict[str, str]:
    """The posted form's fields, once its CSRF token matched the session's."""
    form = await request.form()
    fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    if session is None or not session.csrf_ok(fields.get(CSRF_FIELD)):
        raise CsrfRejected
    return fields


def message_page(
    request: Request, state: WebState, title: str, message: str, status_code: int
) -> Response:
    return render(
        request,
        state,
        "message.html",
        {"title": title, "message": message},
        state.auth.sessions.get(request.cookies.get(SESSION_COOKIE)),
        status_code=status_code,
    )


def wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and request.url.path != "/getDashDataWS"
