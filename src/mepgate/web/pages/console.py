"""``/console``: send one C12.18 request (hex, or a table + offset/count) and see the reply.

Reads only, unless ``web.console_writes`` is on; the gateway enforces the same rule.  Each
request runs as a :class:`~mepgate.web.console_jobs.ConsoleJob`: a reply that comes within
:data:`QUICK_REPLY_S` is shown at once; a long read (the gateway sends it in pieces between its
poll cycles) leads to ``/console?job=ID``, which shows its progress (``console.js`` asks
``/api/v1/console/jobs/ID`` every second) and a cancel button, then the reply.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import RedirectResponse, Response

from mepgate.errors import MepgateError
from mepgate.proto import ReadRequest, WriteRequest, parse_request
from mepgate.service.view import ConsoleReply
from mepgate.tables.ids import TableId
from mepgate.web.console_jobs import ConsoleJob
from mepgate.web.deps import AdminDep, StateDep
from mepgate.web.render import check_csrf, render

router = APIRouter(include_in_schema=False)


class ConsoleInputError(MepgateError):
    """The console form cannot be turned into a request; the message says what to fix."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsoleForm:
    """What the console form posts (the input schema of the page)."""

    meter: str = ""
    table: str = ""
    offset: str = ""
    count: str = ""
    request_hex: str = ""

    @classmethod
    def of(cls, fields: dict[str, str]) -> ConsoleForm:
        return cls(**{k: fields.get(k, "").strip() for k in cls.__dataclass_fields__})

    def request(self) -> bytes:
        """The request message: from the table fields when a table is chosen, else the hex."""
        if self.table:
            try:
                table_id = TableId[self.table]
            except KeyError:
                raise ConsoleInputError(
                    f"unknown table {self.table!r}; pick one from the list"
                ) from None
            offset = _number("offset", self.offset) if self.offset else None
            if offset is not None and not self.count:
                raise ConsoleInputError("a partial read needs a count (bytes to read)")
            count = _number("count", self.count) if self.count else None
            try:
                if count is None:
                    return ReadRequest(table_id=table_id).to_bytes()
                return ReadRequest(table_id=table_id, offset=offset or 0, count=count).to_bytes()
            except MepgateError as error:
                raise ConsoleInputError(str(error)) from None
        text = "".join(self.request_hex.split())
        if not text:
            raise ConsoleInputError("choose a table, or type a request in hex (e.g. 30 0001 0200)")
        try:
            return bytes.fromhex(text)
        except ValueError:
            raise ConsoleInputError(
                "the request is not hex: use pairs of 0-9/A-F digits, spaces allowed"
            ) from None


def _number(name: str, text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise ConsoleInputError(f"{name} must be a number (decimal, or hex as 0x...)") from None


TABLES = [{"name": t.name, "label": t.describe()} for t in TableId]
QUICK_REPLY_S = 3.0
"""How long the form's post waits for the reply before it shows the progress page instead."""
SHOWN_BYTES = 4096
"""Reply bytes shown in hex on the page; the whole reply is a download."""
SHOWN_DECODED = 100_000
"""Characters of the decoded reply shown (a load profile decodes to megabytes of JSON)."""


@router.get("/console")
async def console_page(
    request: Request, state: StateDep, session: AdminDep, job: str | None = None
) -> Response:
    names = [m.name for m in state.view.settings.meter]
    found = state.console.get(job) if job else None
    if found is None:
        return _page(request, state, session, ConsoleForm(meter=names[0] if names else ""))
    return _job_page(request, state, session, ConsoleForm.of(found.form), found)


def _page(
    request: Request,
    state: StateDep,
    session: AdminDep,
    form: ConsoleForm,
    *,
    error: str = "",
    reply: ConsoleReply | None = None,
    request_hex: str = "",
    job: ConsoleJob | None = None,
    status_code: int = 200,
) -> Response:
    decoded = json.dumps(reply.decoded, indent=2, default=str) if reply and reply.decoded else ""
    data_bytes = len(reply.data_hex) // 2 if reply else 0
    return render(
        request,
        state,
        "console.html",
        {
            "page": "console",
            "form": form,
            "tables": TABLES,
            "writes": state.view.settings.web.console_writes,
            "error": error,
            "reply": reply,
            "data_hex": reply.data_hex[: 2 * SHOWN_BYTES] if reply else "",
            "data_bytes": data_bytes,
            "data_cut": max(0, data_bytes - SHOWN_BYTES),
            "decoded": decoded[:SHOWN_DECODED],
            "decoded_cut": max(0, len(decoded) - SHOWN_DECODED),
            "request_hex": request_hex,
            "job": job,
            "progress": _progress(job) if job is not None else None,
        },
        session,
        form=True,
        status_code=status_code,
    )


@router.post("/console")
async def console(request: Request, state: StateDep, session: AdminDep) -> Response:
    form = ConsoleForm.of(await check_csrf(request, session))
    view = state.view
    try:
        if form.meter not in [m.name for m in view.settings.meter]:
            raise ConsoleInputError("choose a configured meter")
        message = form.request()
        try:
            parsed = parse_request(message)
        except MepgateError as error:
            raise ConsoleInputError(f"not a valid C12.18 request: {error}") from None
        if isinstance(parsed, WriteRequest) and not view.settings.web.console_writes:
            raise ConsoleInputError(
                "writes are off: enable 'Allow table writes from the console' on the config page"
            )
        job = state.console.start(view, form.meter, parsed, form=asdict(form))
    except MepgateError as error:
        return _page(request, state, session, form, error=str(error), status_code=422)
    await asyncio.wait({job.task}, timeout=QUICK_REPLY_S)
    if job.state == "running":
        return RedirectResponse(f"/console?job={job.id}", status_code=303)
    return _job_page(request, state, session, form, job)


def _job_page(
    request: Request, state: StateDep, session: AdminDep, form: ConsoleForm, job: ConsoleJob
) -> Response:
    if job.state in ("running", "cancelled"):
        return _page(request, state, session, form, request_hex=job.request_hex, job=job)
    if job.reply is None:
        return _page(request, state, session, form, error=job.message, job=job, status_code=422)
    return _page(
        request, state, session, form, reply=job.reply, request_hex=job.request_hex, job=job
    )


def _progress(job: ConsoleJob) -> dict[str, Any]:
    """A job's progress as ``console.js`` and the page show it."""
    progress = job.progress
    remaining = progress.remaining_s if job.state == "running" else None
    return {
        "id": job.id,
        "meter": job.meter,
        "request_hex": job.request_hex,
        "state": job.state,
        "done_bytes": progress.done,
        "total_bytes": progress.total,
        "pieces": progress.pieces,
        "elapsed_s": round(job.elapsed_s, 1),
        "remaining_s": None if remaining is None else round(remaining),
        "message": job.message,
    }


def _job(state: StateDep, job_id: str) -> ConsoleJob:
    job = state.console.get(job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such console request (it may be old)")
    return job


@router.get("/api/v1/console/jobs/{job_id}")
async def job_progress(job_id: str, state: StateDep, _: AdminDep) -> dict[str, Any]:
    """How far a console request is (``state``: running, done, cancelled or failed)."""
    return _progress(_job(state, job_id))


@router.post("/console/jobs/{job_id}/cancel")
async def cancel_job(job_id: str, request: Request, state: StateDep, session: AdminDep) -> Response:
    """Stop a running read before its next piece."""
    await check_csrf(request, session)
    _job(state, job_id).progress.cancel()
    return RedirectResponse(f"/console?job={job_id}", status_code=303)


@router.get("/console/jobs/{job_id}/data")
async def job_data(job_id: str, state: StateDep, _: AdminDep) -> Response:
    """The whole reply's data, as bytes (the page shows the first :data:`SHOWN_BYTES`)."""
    reply = _job(state, job_id).reply
    if reply is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "this console request has no reply data")
    return Response(
        bytes.fromhex(reply.data_hex),
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="console-{job_id}.bin"'},
    )
