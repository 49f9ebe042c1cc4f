"""``/setup``: the first run sets the admin password, the meter's port and its key.

Until an admin password exists, whoever reaches the port could claim the gateway.  So unless
the server listens on loopback only (then only this machine can connect), the form asks for a
one-time token that is printed in the gateway's log at start: reading the log proves access to
the machine, as Jupyter's and Home Assistant's onboarding do.  A request that came through a
reverse proxy (it carries proxy headers) needs the token even on loopback: the proxy may serve
anyone.
"""

from __future__ import annotations

import logging
import socket

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from mepgate.c1218.keys import parse_password
from mepgate.config import INTERFACES, MEP_ONLY, MeterConfig, Settings, write_secret_file
from mepgate.errors import MepgateError
from mepgate.proto import parse_key
from mepgate.web.auth import ADMIN_USER, password_problem
from mepgate.web.deps import SessionDep, StateDep, WebState
from mepgate.web.render import check_csrf, render, set_device_cookie, set_session_cookie
from mepgate.web.security import PROXY_HEADERS
from mepgate.web.settings_form import RETYPE_INTERFACE, RETYPE_KEY, destination

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

SIM_PORT = "sim:"
TOKEN_FIELD = "setup_token"


def setup_url(state: WebState) -> str:
    """The setup page's address with the token, as printed in the log."""
    web = state.view.settings.web
    host = web.host
    if host in ("0.0.0.0", "::"):  # every interface: name this machine
        host = socket.gethostname()
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{web.port}/setup?token={state.auth.setup_token()}"


def announce_setup_token(state: WebState) -> None:
    """Print the setup link (with its one-time token) in the log while no admin password
    exists.  The token is a credential for this one purpose: it ends when the setup is done."""
    if state.auth.password.is_set:
        return
    log.warning(
        "no admin password yet: finish the first-run setup at %s (the token proves you can "
        "read this log; the page asks for it unless the gateway listens on loopback only)",
        setup_url(state),
    )


def _ensure_token_announced(state: WebState) -> None:
    """The token is printed at start; an admin password removed since (its file deleted to
    start over) opens the setup again, with a token printed now.  Printed once: failed tries
    do not fill the log."""
    if not state.auth.setup_token_issued:
        announce_setup_token(state)


def token_required(request: Request, state: WebState) -> bool:
    """Whether this request must show the setup token: the server can be reached from other
    machines, or the request came through a proxy."""
    if not state.view.settings.web.listens_on_loopback_only:
        return True
    return any(header in request.headers for header in PROXY_HEADERS)


def _setup_page(
    request: Request,
    state: StateDep,
    session: SessionDep,
    form: dict[str, object],
    errors: list[str],
    status_code: int = 200,
) -> Response:
    return render(
        request,
        state,
        "setup.html",
        {
            "page": "setup",
            "form": form,
            "errors": errors,
            "token_required": token_required(request, state),
            "token_field": TOKEN_FIELD,
            "sources": _sources(state.view.settings),
            "interfaces": INTERFACES,
        },
        session,
        form=True,
        status_code=status_code,
    )


def _sources(settings: Settings) -> dict[str, str]:
    """The first meter's fields that the environment sets (shown read-only: not saved)."""
    sources = {}
    for field, key in (
        ("meter_name", "name"),
        ("meter_port", "port"),
        ("meter_interface", "interface"),
        ("meter_key", "key"),
    ):
        override = settings.overridden(f"meter.0.{key}")
        if override is not None:
            sources[field] = override.source
    return sources


@router.get("/setup")
async def setup_page(
    request: Request, state: StateDep, session: SessionDep, token: str = ""
) -> Response:
    if state.auth.password.is_set:
        return RedirectResponse("/", status_code=303)
    settings = state.view.settings
    first = settings.meter[0] if settings.meter else None
    form: dict[str, object] = {
        "meter_name": first.name if first else "house",
        "meter_port": first.port if first else "",
        "meter_interface": first.interface if first else "mep",
        "has_key": first is not None
        and (
            first.key is not None or first.key_file is not None or first.port.startswith(SIM_PORT)
        ),
        TOKEN_FIELD: token,  # from the link in the log: the visitor's own
    }
    if token_required(request, state):
        _ensure_token_announced(state)
    return _setup_page(request, state, session, form, [])


@router.post("/setup")
async def setup(request: Request, state: StateDep, session: SessionDep) -> Response:
    fields = await check_csrf(request, session)
    if state.auth.password.is_set:
        return RedirectResponse("/", status_code=303)
    form = {k: fields.get(k, "").strip() for k in ("meter_name", "meter_port", "meter_interface")}
    if (
        state.view.settings.overridden("meter.0.interface") is not None
        and state.view.settings.meter
    ):
        form["meter_interface"] = state.view.settings.meter[0].interface  # not the visitor's
    form["meter_interface"] = form["meter_interface"] or "mep"
    optical = form["meter_interface"] == "optical"
    key_name = "Optical password" if optical else "MEP key"
    page_form: dict[str, object] = {**form, "has_key": False}
    if token_required(request, state) and not state.auth.setup_token_ok(fields.get(TOKEN_FIELD)):
        _ensure_token_announced(state)
        message = (
            "Setup token: type the token printed in the gateway's log (or open the link "
            "printed there). It proves you can read the log of the machine mepgate runs on."
        )
        return _setup_page(request, state, session, page_form, [message], status_code=403)
    page_form[TOKEN_FIELD] = fields.get(TOKEN_FIELD, "")
    errors = []
    problem = password_problem(fields.get("password", ""), fields.get("password_repeat", ""))
    if problem:
        errors.append(f"Admin password: {problem}.")
    current = state.view.settings
    existing = next((m for m in current.meter if m.name == form["meter_name"]), None)
    key = fields.get("meter_key", "").strip()
    has_key = existing is not None and (existing.key is not None or existing.key_file is not None)
    # A configured key goes only to the meter it was entered for: not to a port on another host.
    same_host = existing is not None and destination(existing.port) == destination(
        form["meter_port"]
    )
    keep_key = not key and (
        form["meter_port"].startswith(SIM_PORT)  # the simulator has its own demo key
        or (has_key and same_host)
    )
    switched = existing is not None and existing.interface != form["meter_interface"]
    if switched:
        keep_key = keep_key and form["meter_port"].startswith(SIM_PORT)  # an MBK is no password
    if not keep_key and not key and has_key:
        errors.append(f"{key_name}: " + (RETYPE_INTERFACE if switched else RETYPE_KEY))
    elif not keep_key:
        try:
            parse_password(key) if optical else parse_key(key)
        except MepgateError as error:
            errors.append(f"{key_name}: {error}")
    key_path = state.data_dir / f"{form['meter_name'] or 'meter'}.key"
    meter = None
    try:
        if keep_key:
            base = existing.model_dump() if existing is not None else {}
            if optical:  # the MEP-only settings of a meter switched to its optical port
                base = {k: v for k, v in base.items() if k not in MEP_ONLY}
            meter = MeterConfig.model_validate(
                {
                    **base,
                    "name": form["meter_name"],
                    "port": form["meter_port"],
                    "interface": form["meter_interface"],
                }
            )
        else:
            meter = MeterConfig.model_validate(
                {
                    "name": form["meter_name"],
                    "port": form["meter_port"],
                    "interface": form["meter_interface"],
                    "key_file": key_path,
                }
            )
    except ValidationError as error:
        for p in error.errors(include_input=False, include_url=False):
            field = str(p["loc"][0]) if p["loc"] else ""
            where = {"name": "Meter name", "port": "Port", "interface": "Interface"}.get(
                field, "Meter"
            )
            errors.append(f"{where}: {p['msg'].removeprefix('Value error, ')}")
    if errors or meter is None:
        return _setup_page(request, state, session, page_form, errors, status_code=422)
    others = [m for m in current.meter if m.name != meter.name]
    if not keep_key:
        write_secret_file(key_path, key + "\n")
    origins = [
        current.meter.index(existing) if existing is not None else None,
        *(current.meter.index(m) for m in others),
    ]
    settings = Settings(
        meter=[meter, *others], storage=current.storage, web=current.web, mqtt=current.mqtt
    ).keeping_overrides_of(current, origins)  # MEPGATE_KEY & co. are not written to the file
    try:
        await state.view.apply_settings(settings)
    except MepgateError as error:  # e.g. ConfigError; nothing saved, setup stays open
        return _setup_page(request, state, session, page_form, [str(error)], status_code=422)
    device_cookie = await state.auth.set_password(fields["password"])
    state.auth.setup_done()
    if session is not None:
        state.auth.sessions.delete(session.id)
    admin = state.auth.sessions.create(ADMIN_USER)
    response = RedirectResponse("/", status_code=303)
    set_session_cookie(request, response, admin)
    set_device_cookie(request, response, device_cookie)
    return response
