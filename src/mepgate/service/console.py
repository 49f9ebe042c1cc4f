"""The web console's requests: one C12.18 request to a meter, lent the poller's client.

The web page parses and checks what was typed (:func:`mepgate.proto.parse_request`) and passes
the parsed request; here it is sent to the meter between two poll cycles
(:meth:`MeterPoller.exchange`): the meter serves one request at a time.  Writes (table writes,
procedure calls through BT07) go only when ``web.console_writes`` allows them.  A full read of a
table the registry knows is decoded too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from mepgate.client import MeterClient, MeterLinkError, MeterRefusedError
from mepgate.errors import MepgateError
from mepgate.proto.codes import ResponseCode, describe_response_code
from mepgate.proto.messages import ReadRequest, WriteRequest
from mepgate.service.poller import MeterPoller
from mepgate.service.view import ConsoleError, ConsoleReply
from mepgate.tables import registry
from mepgate.tables.errors import TableDecodeError
from mepgate.transport import PortUnavailableError


async def console_exchange(
    pollers: Mapping[str, MeterPoller],
    meter: str,
    request: ReadRequest | WriteRequest,
    *,
    writes: bool,
) -> ConsoleReply:
    """Send ``request`` to ``meter`` (one of ``pollers``); writes only if ``writes``.

    A reply with an error code is a :class:`ConsoleReply` too; anything that prevents an answer
    raises :class:`ConsoleError`.
    """
    poller = pollers.get(meter)
    if poller is None:
        known = ", ".join(pollers) or "none configured"
        raise ConsoleError(f"no meter called {meter!r}; meters: {known}")
    if isinstance(request, WriteRequest) and not writes:
        raise ConsoleError(
            "writes are disabled: set console_writes = true in the [web] section to allow "
            "table writes and procedure calls from the console"
        )

    async def send(client: MeterClient) -> ConsoleReply:
        if isinstance(request, ReadRequest):
            if request.offset is None:
                data = await client.read_table(request.table_id)
            else:
                data = await client.read(
                    request.table_id, offset=request.offset, count=request.count
                )
            decoded: dict[str, object] | None = None
            if request.offset is None and request.table_id in registry.CODECS:
                with contextlib.suppress(MepgateError):
                    dims = await client.dimensions()
                    value = registry.to_json(
                        registry.decode_table(request.table_id, data, dims), dims
                    )
                    decoded = (
                        {k: v for k, v in value.items()}
                        if isinstance(value, dict)
                        else {"value": value}
                    )
            return _reply(ResponseCode.OK, data, decoded)
        await client.write(request.table_id, request.data, offset=request.offset)
        return _reply(ResponseCode.OK)

    try:
        return await poller.exchange(send)
    except MeterRefusedError as error:
        return _reply(error.code)
    except (MeterLinkError, PortUnavailableError, TableDecodeError) as error:
        raise ConsoleError(str(error)) from None


def _reply(code: int, data: bytes = b"", decoded: dict[str, object] | None = None) -> ConsoleReply:
    return ConsoleReply(
        code=code, meaning=describe_response_code(code), data_hex=data.hex(), decoded=decoded
    )
