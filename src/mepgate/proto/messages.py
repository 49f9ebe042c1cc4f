"""C12.18 request and response messages as carried by MEP (MEP guide, Tables 2.6 and 2.7).

Request fields are big-endian (MSB first): table id 2 bytes, offset 3 bytes, count 2 bytes.
Table *data* inside them is the table's own (LSB-first) bytes and is not interpreted here.
"""

from __future__ import annotations

from dataclasses import dataclass

from mepgate.proto.codes import RequestCode, ResponseCode
from mepgate.proto.errors import LocalProtocolError, MalformedMessageError

MAX_TABLE_ID = 0xFFFF
MAX_OFFSET = 0xFFFFFF
MAX_COUNT = 0xFFFF

FULL_READ_DEFAULT_LENGTH = 0x0200
"""The length field the old firmware sends with full reads (``30 tid 0200``): 'up to 512'."""


def _check(name: str, value: int, maximum: int) -> None:
    if not 0 <= value <= maximum:
        raise LocalProtocolError(f"{name} must be between 0 and {maximum:#x}, got {value:#x}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadRequest:
    """A full read (``offset is None``) or a partial read of ``count`` bytes at ``offset``."""

    table_id: int
    count: int = FULL_READ_DEFAULT_LENGTH
    offset: int | None = None

    def __post_init__(self) -> None:
        _check("table id", self.table_id, MAX_TABLE_ID)
        _check("count", self.count, MAX_COUNT)
        if self.offset is not None:
            _check("offset", self.offset, MAX_OFFSET)

    @property
    def code(self) -> RequestCode:
        return RequestCode.FULL_READ if self.offset is None else RequestCode.PARTIAL_READ

    def to_bytes(self) -> bytes:
        head = bytes([self.code]) + self.table_id.to_bytes(2, "big")
        if self.offset is not None:
            head += self.offset.to_bytes(3, "big")
        return head + self.count.to_bytes(2, "big")


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteRequest:
    """A full write (``offset is None``) or a partial write of ``data`` at ``offset``."""

    table_id: int
    data: bytes
    offset: int | None = None

    def __post_init__(self) -> None:
        _check("table id", self.table_id, MAX_TABLE_ID)
        _check("data length", len(self.data), MAX_COUNT)
        if self.offset is not None:
            _check("offset", self.offset, MAX_OFFSET)

    @property
    def code(self) -> RequestCode:
        return RequestCode.FULL_WRITE if self.offset is None else RequestCode.PARTIAL_WRITE

    def to_bytes(self) -> bytes:
        head = bytes([self.code]) + self.table_id.to_bytes(2, "big")
        if self.offset is not None:
            head += self.offset.to_bytes(3, "big")
        return head + len(self.data).to_bytes(2, "big") + self.data


Request = ReadRequest | WriteRequest

_HEADER_SIZE = {
    RequestCode.FULL_READ: 5,
    RequestCode.PARTIAL_READ: 8,
    RequestCode.FULL_WRITE: 5,
    RequestCode.PARTIAL_WRITE: 8,
}


def parse_request(message: bytes) -> Request:
    """Parse a C12.18 request message (without sequence number and digest).

    Raises :class:`MalformedMessageError` for an unknown code or inconsistent fields; a server
    answers those with :attr:`ResponseCode.UNRECOGNIZED_REQUEST`.
    """
    if not message:
        raise MalformedMessageError("empty request message: expected a C12.18 request code")
    try:
        code = RequestCode(message[0])
    except ValueError:
        raise MalformedMessageError(
            f"unknown request code 0x{message[0]:02X}; expected one of "
            + ", ".join(f"0x{c:02X}" for c in RequestCode)
        ) from None
    size = _HEADER_SIZE[code]
    if len(message) < size:
        raise MalformedMessageError(
            f"{code.describe()} request of {len(message)} bytes; its header needs {size}"
        )
    table_id = int.from_bytes(message[1:3], "big")
    partial = code in (RequestCode.PARTIAL_READ, RequestCode.PARTIAL_WRITE)
    offset = int.from_bytes(message[3:6], "big") if partial else None
    count = int.from_bytes(message[size - 2 : size], "big")
    if code in (RequestCode.FULL_READ, RequestCode.PARTIAL_READ):
        if len(message) != size:
            raise MalformedMessageError(
                f"{code.describe()} request has {len(message) - size} trailing bytes"
            )
        return ReadRequest(table_id=table_id, offset=offset, count=count)
    data = message[size:]
    if len(data) != count:
        raise MalformedMessageError(
            f"{code.describe()} request announces {count} data bytes but carries {len(data)}"
        )
    return WriteRequest(table_id=table_id, offset=offset, data=data)


def is_read(message: bytes) -> bool:
    """Whether a request message is a table read (its success reply carries count + data)."""
    return bool(message) and message[0] in (RequestCode.FULL_READ, RequestCode.PARTIAL_READ)


def read_reply_size(message: bytes) -> int | None:
    """The size of the successful reply message to a partial read request (code, 2-byte count,
    the data asked for); ``None`` for other requests, whose reply size the request does not
    fix."""
    if len(message) == 8 and message[0] == RequestCode.PARTIAL_READ:
        return 3 + int.from_bytes(message[6:8], "big")
    return None


def encode_read_reply(data: bytes) -> bytes:
    """The response message for a successful read: ``00 <count:2> <data>``."""
    _check("reply data length", len(data), MAX_COUNT)
    return bytes([ResponseCode.OK]) + len(data).to_bytes(2, "big") + data


def decode_read_reply(body: bytes) -> bytes:
    """The table data of a successful read's response message ``00 <count:2> <data>``."""
    if len(body) < 3:
        raise MalformedMessageError(
            f"read reply of {len(body)} bytes; expected at least 3 (code and 2-byte count)"
        )
    count = int.from_bytes(body[1:3], "big")
    data = body[3:]
    if len(data) != count:
        raise MalformedMessageError(
            f"read reply announces {count} bytes of table data but carries {len(data)}"
        )
    return data
