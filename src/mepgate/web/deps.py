"""The web app's state and the typed dependencies routes declare (``ViewDep``, ``AdminDep``...).

Access levels:

* *reader*: the dashboard, history, meter pages and the read-only API.  Open to anyone who can
  reach the server while ``settings.web.public_dashboard`` is true (the default; the server
  binds to 127.0.0.1 unless configured otherwise, so "anyone" means this machine); else the
  admin must be logged in.
* *admin*: config, console, and anything that changes state.  Always needs the login.

A page that needs a login redirects to ``/login``; the API answers 401.  Before the first-run
setup (no admin password), admin pages redirect to ``/setup``, and so do the read-only pages
while no meter is configured either.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, cast

from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates

from mepgate.service.view import GatewayView
from mepgate.web.auth import SESSION_COOKIE, Auth, Session
from mepgate.web.console_jobs import ConsoleJobs
from mepgate.web.energy_totals import SharedEnergyTotals


@dataclass(frozen=True, slots=True, kw_only=True)
class WebState:
    view: GatewayView
    data_dir: Path
    auth: Auth
    templates: Jinja2Templates
    energy: SharedEnergyTotals  # what the event streams send as "energy", asked once per period
    # Set by close_streams() when the server shuts down: event streams end at once instead of
    # holding the graceful shutdown up.
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    console: ConsoleJobs = field(default_factory=ConsoleJobs)  # the console's requests


class LoginRequired(Exception):  # noqa: N818 -- a control-flow signal, not an error
    """The request needs the admin's login (pages: redirect, API: 401)."""


class SetupRequired(Exception):  # noqa: N818
    """No admin password yet: pages lead to the first-run setup."""


def get_state(request: Request) -> WebState:
    return cast(WebState, request.app.state.web)


StateDep = Annotated[WebState, Depends(get_state)]


def get_view(state: StateDep) -> GatewayView:
    return state.view


ViewDep = Annotated[GatewayView, Depends(get_view)]


def get_session(request: Request, state: StateDep) -> Session | None:
    return state.auth.sessions.get(request.cookies.get(SESSION_COOKIE))


SessionDep = Annotated[Session | None, Depends(get_session)]


def require_setup_done(state: StateDep) -> None:
    """Read-only pages need a meter or an admin: with neither, the gateway is brand new.
    (``mepgate demo`` configures a simulated meter, so its dashboard works at once.)"""
    if not state.auth.password.is_set and not state.view.settings.meter:
        raise SetupRequired


def require_reader(state: StateDep, session: SessionDep) -> Session | None:
    if state.view.settings.web.public_dashboard:
        return session
    if session is None or not session.is_admin:
        raise LoginRequired
    return session


def require_admin(state: StateDep, session: SessionDep) -> Session:
    if not state.auth.password.is_set:
        raise SetupRequired
    if session is None or not session.is_admin:
        raise LoginRequired
    return session


ReaderDep = Annotated[Session | None, Depends(require_reader)]
AdminDep = Annotated[Session, Depends(require_admin)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
