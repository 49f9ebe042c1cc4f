"""``/console``: send one C12.18 request (hex, or a table + offset/count) and see the reply.

Reads only, unless ``web.console_writes`` is on; the gateway enforces the same rule.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mepgate.errors import MepgateError
from mepgate.proto import ReadRequest, WriteRequest, parse_request
from mepgate.service.view import ConsoleReply
from mepgate.tables.ids import TableId
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


@router.get("/console")
async def console_page(request: Request, state: StateDep, session: AdminDep) -> Response:
    names = [m.name for m in state.view.settings.meter]
    return _page(request, state, session, ConsoleForm(meter=names[0] if names else ""))


def _page(
    request: Request,
    state: StateDep,
    session: AdminDep,
    form: ConsoleForm,
    *,
    error: str = "",
    reply: ConsoleReply | None = None,
    request_hex: str = "",
    status_code: int = 200,
) -> Response:
    decoded = json.dumps(reply.decoded, indent=2, default=str) if reply and reply.decoded else ""
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
            "decoded": decoded,
            "request_hex": request_hex,
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
        request_hex = message.hex(" ").upper()
        reply = await view.console(form.meter, parsed)
    except MepgateError as error:
        return _page(request, state, session, form, error=str(error), status_code=422)
    return _page(request, state, session, form, reply=reply, request_hex=request_hex)
