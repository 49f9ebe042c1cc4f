"""``/setup``: the first run sets the admin password, the meter's port and its key."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from mepgate.config import MeterConfig, Settings, write_secret_file
from mepgate.errors import MepgateError
from mepgate.proto import parse_key
from mepgate.web.auth import ADMIN_USER, password_problem
from mepgate.web.deps import SessionDep, StateDep
from mepgate.web.render import check_csrf, render, set_session_cookie

router = APIRouter(include_in_schema=False)

SIM_PORT = "sim:"


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
        {"page": "setup", "form": form, "errors": errors},
        session,
        form=True,
        status_code=status_code,
    )


@router.get("/setup")
async def setup_page(request: Request, state: StateDep, session: SessionDep) -> Response:
    if state.auth.password.is_set:
        return RedirectResponse("/", status_code=303)
    settings = state.view.settings
    first = settings.meter[0] if settings.meter else None
    form: dict[str, object] = {
        "meter_name": first.name if first else "house",
        "meter_port": first.port if first else "",
        "has_key": first is not None
        and (
            first.key is not None or first.key_file is not None or first.port.startswith(SIM_PORT)
        ),
    }
    return _setup_page(request, state, session, form, [])


@router.post("/setup")
async def setup(request: Request, state: StateDep, session: SessionDep) -> Response:
    fields = await check_csrf(request, session)
    if state.auth.password.is_set:
        return RedirectResponse("/", status_code=303)
    form = {k: fields.get(k, "").strip() for k in ("meter_name", "meter_port")}
    page_form: dict[str, object] = {**form, "has_key": False}
    errors = []
    problem = password_problem(fields.get("password", ""), fields.get("password_repeat", ""))
    if problem:
        errors.append(f"Admin password: {problem}.")
    current = state.view.settings
    existing = next((m for m in current.meter if m.name == form["meter_name"]), None)
    key = fields.get("meter_key", "").strip()
    keep_key = not key and (
        form["meter_port"].startswith(SIM_PORT)  # the simulator has its own demo key
        or (existing is not None and (existing.key is not None or existing.key_file is not None))
    )
    if not keep_key:
        try:
            parse_key(key)
        except MepgateError as error:
            errors.append(f"MEP key: {error}")
    key_path = state.data_dir / f"{form['meter_name'] or 'meter'}.key"
    meter = None
    try:
        if keep_key:
            base = existing.model_dump() if existing is not None else {}
            meter = MeterConfig.model_validate(
                {**base, "name": form["meter_name"], "port": form["meter_port"]}
            )
        else:
            meter = MeterConfig(name=form["meter_name"], port=form["meter_port"], key_file=key_path)
    except ValidationError as error:
        for p in error.errors(include_input=False, include_url=False):
            where = {"name": "Meter name", "port": "Port"}.get(str(p["loc"][0]), "Meter")
            errors.append(f"{where}: {p['msg'].removeprefix('Value error, ')}")
    if errors or meter is None:
        return _setup_page(request, state, session, page_form, errors, status_code=422)
    others = [m for m in current.meter if m.name != meter.name]
    if not keep_key:
        write_secret_file(key_path, key + "\n")
    settings = Settings(
        meter=[meter, *others], storage=current.storage, web=current.web, mqtt=current.mqtt
    )
    try:
        await state.view.apply_settings(settings)
    except MepgateError as error:  # e.g. ConfigError; nothing saved, setup stays open
        return _setup_page(request, state, session, page_form, [str(error)], status_code=422)
    state.auth.password.set(fields["password"])
    if session is not None:
        state.auth.sessions.delete(session.id)
    admin = state.auth.sessions.create(ADMIN_USER)
    response = RedirectResponse("/", status_code=303)
    set_session_cookie(request, response, admin)
    return response
