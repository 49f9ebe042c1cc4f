"""``/login`` and ``/logout``: the admin's session."""

from __future__ import annotations

import logging
import math

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from mepgate.web.auth import ADMIN_USER, DEVICE_COOKIE
from mepgate.web.deps import SessionDep, StateDep, client_address, require_setup_done
from mepgate.web.render import (
    check_csrf,
    clear_session_cookie,
    message_page,
    render,
    set_device_cookie,
    set_session_cookie,
)

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False, dependencies=[Depends(require_setup_done)])


def safe_next(target: str | None) -> str:
    """Only local paths: ``//host`` or ``https://...`` would send the admin elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login")
async def login_page(
    request: Request, state: StateDep, session: SessionDep, next: str = "/"
) -> Response:
    return render(
        request,
        state,
        "login.html",
        {"page": "login", "next": safe_next(next), "error": ""},
        session,
        form=True,
    )


@router.post("/login")
async def login(request: Request, state: StateDep, session: SessionDep) -> Response:
    fields = await check_csrf(request, session)
    address = client_address(request)
    auth = state.auth
    device = await auth.device_of(request.cookies.get(DEVICE_COOKIE))
    refusal = auth.limiter.refusal(address, device)
    if refusal is not None:
        wait = math.ceil(refusal.wait)
        response = message_page(
            request,
            state,
            "Too many attempts",
            f"Too many failed logins {refusal.reason}; try again in {wait} s.",
            429,
        )
        response.headers["Retry-After"] = str(wait)
        return response
    target = safe_next(fields.get("next"))
    auth.limiter.attempt(address, device)  # counted before the (slow) check: no races
    check = await auth.check_password(fields.get("password", ""))
    if not check.ok:
        held = auth.limiter.refusal(address, device)
        if held is not None:  # the log shows the flood, and the address the gateway sees
            log.warning(
                "login: too many wrong passwords (per %s); client %s, the next try waits %d s",
                held.limit,
                address,
                math.ceil(held.wait),
            )
        return render(
            request,
            state,
            "login.html",
            {"page": "login", "next": target, "error": "Wrong password."},
            session,
            form=True,
            status_code=401,
        )
    auth.limiter.succeeded(address, device)
    if session is not None:
        auth.sessions.delete(session.id)  # a new id on login: no session fixation
    new = auth.sessions.create(ADMIN_USER)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(request, response, new)
    if device is None and check.device_cookie is not None:
        set_device_cookie(request, response, check.device_cookie)
    return response


@router.post("/logout")
async def logout(request: Request, state: StateDep, session: SessionDep) -> Response:
    await check_csrf(request, session)
    if session is not None:
        state.auth.sessions.delete(session.id)
    response = RedirectResponse("/", status_code=303)
    clear_session_cookie(request, response)
    return response
