"""``/config``: edit the settings (admin only); secrets stay masked and are kept."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from mepgate.errors import MepgateError
from mepgate.outputs.discovery import check_disabled_entities
from mepgate.web.auth import ADMIN_USER
from mepgate.web.deps import AdminDep, StateDep
from mepgate.web.render import check_csrf, render, set_device_cookie, set_session_cookie
from mepgate.web.settings_form import (
    MASK,
    Section,
    form_sections,
    mark_errors,
    parse_form,
    write_key_files,
)

router = APIRouter(include_in_schema=False)


def _page(
    request: Request,
    state: StateDep,
    session: AdminDep,
    sections: list[Section],
    *,
    errors: list[str],
    saved: bool = False,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        state,
        "config.html",
        {"page": "config", "sections": sections, "errors": errors, "saved": saved, "mask": MASK},
        session,
        form=True,
        status_code=status_code,
    )


@router.get("/config")
async def config_page(
    request: Request, state: StateDep, session: AdminDep, saved: bool = False
) -> Response:
    return _page(
        request, state, session, form_sections(state.view.settings), errors=[], saved=saved
    )


@router.post("/config")
async def save_config(request: Request, state: StateDep, session: AdminDep) -> Response:
    posted = await check_csrf(request, session)
    current = state.view.settings
    parsed = parse_form(posted, current, state.data_dir)
    if parsed.settings is None:
        sections = form_sections(current)
        errors = dict(parsed.errors)
        mark_errors(sections, errors, posted)
        top = [f"{name}: {message}" for name, message in errors.items()]
        if not top:
            top = ["Some fields need fixing; see the messages next to them."]
        return _page(request, state, session, sections, errors=top, status_code=422)
    try:
        check_disabled_entities(parsed.settings)  # before anything is written
        write_key_files(parsed.key_files)
        await state.view.apply_settings(parsed.settings)
    except MepgateError as error:  # e.g. ConfigError: a key file cannot be read; nothing saved
        return _page(
            request, state, session, form_sections(current), errors=[str(error)], status_code=422
        )
    response = RedirectResponse("/config?saved=true", status_code=303)
    if parsed.admin_password is not None:
        device_cookie = await state.auth.set_password(parsed.admin_password)
        state.auth.sessions.delete_all()  # everybody else logs in again with the new one
        set_session_cookie(request, response, state.auth.sessions.create(ADMIN_USER))
        set_device_cookie(request, response, device_cookie)  # the old ones named the old password
    return response
