"""The C12.18 application-layer services (PSEM): requests, their parsing, and the responses.

Every protocol field is MSB first; table data inside reads and writes keeps the table's own
byte order and is not interpreted here.  A response message starts with its response code
(:class:`~mepgate.proto.codes.ResponseCode`, words for the optical port in
:meth:`~mepgate.proto.codes.ResponseCode.describe_c1218`); only an ok carries more.

| service | request | reply on ok |
|---|---|---|
| Ident 0x20 | -- | standard, version, revision, feature list ending 0x00 |
| Negotiate 0x60+n | packet size (2), packets (1), n baud codes | packet size, packets, baud code |
| Logon 0x50 | user id (2), user name (10, space padded) | -- |
| Security 0x51 | password (20) | -- |
| Read 0x30 / 0x3F | table id (2) [, offset (3), count (2)] | count (2), data, checksum |
| Write 0x40 / 0x4F | table id (2) [, offset (3)], count (2), data, checksum | -- |
| Wait 0x70 | seconds (1) | -- |
| Logoff 0x52, Terminate 0x21 | -- | -- |

Read and write requests are :class:`mepgate.proto.messages.ReadRequest` /
:class:`~mepgate.proto.messages.WriteRequest` (the same requests MEP carries); encode them
for C12.18 with :func:`encode_request` (a full read sends no count, a write adds the checksum).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from mepgate.c1218.constants import (
    BAUD_CODES,
    DEFAULT_BAUD,
    MAX_BAUD_CODES,
    MAX_PACKETS,
    MIN_PACKET_SIZE,
    PASSWORD_SIZE,
    USER_NAME_SIZE,
)
from mepgate.c1218.errors import ChecksumError, MessageError, ServiceError, UnsupportedServiceError
from mepgate.c1218.keys import Password
from mepgate.errors import LocalProtocolError
from mepgate.proto.codes import ResponseCode
from mepgate.proto.messages import MAX_COUNT, ReadRequest, WriteRequest

__all__ = [
    "OK_RESPONSE",
    "IdentRequest",
    "IdentResponse",
    "LogoffRequest",
    "LogonRequest",
    "NegotiateRequest",
    "NegotiateResponse",
    "ReadRequest",
    "Request",
    "SecurityRequest",
    "Service",
    "TerminateRequest",
    "WaitRequest",
    "WriteRequest",
    "checksum",
    "decode_ident_response",
    "decode_negotiate_response",
    "decode_ok_response",
    "decode_read_response",
    "encode_ident_response",
    "encode_negotiate_response",
    "encode_read_response",
    "encode_request",
    "encode_response",
    "ident_request",
    "logoff_request",
    "logon_request",
    "negotiate_request",
    "parse_request",
    "read_request",
    "response_code",
    "security_request",
    "service_of",
    "terminate_request",
    "wait_request",
    "write_request",
]


class Service(IntEnum):
    """C12.18 request codes.  Negotiate is 0x60 plus the number of baud rates offered."""

    IDENT = 0x20
    TERMINATE = 0x21
    READ = 0x30
    PARTIAL_READ = 0x3F
    WRITE = 0x40
    PARTIAL_WRITE = 0x4F
    LOGON = 0x50
    SECURITY = 0x51
    LOGOFF = 0x52
    NEGOTIATE = 0x60
    WAIT = 0x70

    def describe(self) -> str:
        return _SERVICE_TEXT[self]

    @classmethod
    def of_code(cls, code: int) -> Service:
        """The service a request code asks for (0x60..0x6B are all Negotiate).

        Raises :class:`UnsupportedServiceError` for a code C12.18 does not define.
        """
        if cls.NEGOTIATE <= code <= cls.NEGOTIATE + MAX_BAUD_CODES:
            return cls.NEGOTIATE
        try:
            return cls(code)
        except ValueError:
            raise UnsupportedServiceError(
                f"request code 0x{code:02X} is not a C12.18 service", code=code
            ) from None


_SERVICE_TEXT = {
    Service.IDENT: "identify the meter's protocol (starts a session)",
    Service.TERMINATE: "end the session and return to the base state",
    Service.READ: "read a whole table",
    Service.PARTIAL_READ: "read part of a table",
    Service.WRITE: "write a whole table",
    Service.PARTIAL_WRITE: "write part of a table",
    Service.LOGON: "log on as a user (opens the session)",
    Service.SECURITY: "present the password (the key) for access",
    Service.LOGOFF: "log off (the session stays identified)",
    Service.NEGOTIATE: "agree packet size, packet count and baud rate",
    Service.WAIT: "keep the session open for a while without traffic",
}


def checksum(data: bytes) -> int:
    """The read/write data checksum: the two's complement of the 8-bit sum of the bytes."""
    return -sum(data) & 0xFF


def _check(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise LocalProtocolError(f"{name} must be {low}..{high}, got {value}")


# -- requests ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IdentRequest:
    def to_bytes(self) -> bytes:
        return bytes([Service.IDENT])


@dataclass(frozen=True, slots=True)
class TerminateRequest:
    def to_bytes(self) -> bytes:
        return bytes([Service.TERMINATE])


@dataclass(frozen=True, slots=True)
class LogoffRequest:
    def to_bytes(self) -> bytes:
        return bytes([Service.LOGOFF])


_CODE_OF_BAUD = {baud: code for code, baud in BAUD_CODES.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class NegotiateRequest:
    """Ask for ``packet_size`` (header and CRC included), ``packets`` per message, and one of
    ``bauds`` (bits per second, in order of preference; empty keeps the current rate)."""

    packet_size: int
    packets: int
    bauds: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        _check("packet size", self.packet_size, MIN_PACKET_SIZE, 0xFFFF)
        _check("number of packets", self.packets, 1, MAX_PACKETS)
        if len(self.bauds) > MAX_BAUD_CODES:
            raise LocalProtocolError(f"a Negotiate offers at most {MAX_BAUD_CODES} baud rates")
        for baud in self.bauds:
            if baud not in _CODE_OF_BAUD:
                raise LocalProtocolError(
                    f"{baud} baud has no C12.18 code; use one of "
                    + ", ".join(str(b) for b in sorted(_CODE_OF_BAUD))
                )

    def to_bytes(self) -> bytes:
        return (
            bytes([Service.NEGOTIATE + len(self.bauds)])
            + self.packet_size.to_bytes(2, "big")
            + bytes([self.packets])
            + bytes(_CODE_OF_BAUD[baud] for baud in self.bauds)
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class LogonRequest:
    """``user_id`` (0..65535) and ``user`` (at most 10 ASCII characters, sent space padded);
    OSGP meters check neither."""

    user_id: int
    user: str

    def __post_init__(self) -> None:
        _check("user id", self.user_id, 0, 0xFFFF)
        if len(self.user) > USER_NAME_SIZE or not self.user.isascii():
            raise LocalProtocolError(
                f"the logon user name must be at most {USER_NAME_SIZE} ASCII characters"
            )

    def to_bytes(self) -> bytes:
        return (
            bytes([Service.LOGON])
            + self.user_id.to_bytes(2, "big")
            + self.user.encode("ascii").ljust(USER_NAME_SIZE, b" ")
        )


@dataclass(frozen=True, slots=True, repr=False)
class SecurityRequest:
    """The 20-byte password; its ``repr`` never shows it."""

    password: bytes

    def __post_init__(self) -> None:
        if len(self.password) != PASSWORD_SIZE:
            raise LocalProtocolError(
                f"a C12.18 password is {PASSWORD_SIZE} bytes, got {len(self.password)}"
            )

    def __repr__(self) -> str:
        return f"SecurityRequest(password=<{PASSWORD_SIZE} bytes hidden>)"

    def to_bytes(self) -> bytes:
        return bytes([Service.SECURITY]) + self.password


@dataclass(frozen=True, slots=True)
class WaitRequest:
    """Keep the session for ``seconds`` (0..255) without traffic."""

    seconds: int

    def __post_init__(self) -> None:
        _check("wait seconds", self.seconds, 0, 0xFF)

    def to_bytes(self) -> bytes:
        return bytes([Service.WAIT, self.seconds])


Request = (
    IdentRequest
    | TerminateRequest
    | LogoffRequest
    | NegotiateRequest
    | LogonRequest
    | SecurityRequest
    | WaitRequest
    | ReadRequest
    | WriteRequest
)


def service_of(request: Request) -> Service:
    """The service a request asks for."""
    if isinstance(request, ReadRequest | WriteRequest):
        return Service(request.code)
    return Service.of_code(request.to_bytes()[0])


def read_request(request: ReadRequest) -> bytes:
    """A read as C12.18 sends it: ``30 tid`` (no count) or ``3F tid offset(3) count(2)``."""
    if request.offset is None:
        return bytes([Service.READ]) + request.table_id.to_bytes(2, "big")
    return request.to_bytes()


def write_request(request: WriteRequest) -> bytes:
    """A write as C12.18 sends it: the MEP form plus the data checksum."""
    return request.to_bytes() + bytes([checksum(request.data)])


def encode_request(request: Request) -> bytes:
    """The request message for any service."""
    if isinstance(request, ReadRequest):
        return read_request(request)
    if isinstance(request, WriteRequest):
        return write_request(request)
    return request.to_bytes()


def ident_request() -> bytes:
    return IdentRequest().to_bytes()


def terminate_request() -> bytes:
    return TerminateRequest().to_bytes()


def logoff_request() -> bytes:
    return LogoffRequest().to_bytes()


def negotiate_request(packet_size: int, packets: int, bauds: tuple[int, ...] = ()) -> bytes:
    return NegotiateRequest(packet_size=packet_size, packets=packets, bauds=bauds).to_bytes()


def logon_request(user_id: int, user: str) -> bytes:
    return LogonRequest(user_id=user_id, user=user).to_bytes()


def security_request(password: bytes | Password) -> bytes:
    value = password.value if isinstance(password, Password) else password
    return SecurityRequest(value).to_bytes()


def wait_request(seconds: int) -> bytes:
    return WaitRequest(seconds).to_bytes()


def _expect_size(message: bytes, size: int, service: Service) -> None:
    if len(message) != size:
        raise MessageError(f"{service.name.lower()} request of {len(message)} bytes; it has {size}")


def parse_request(message: bytes) -> Request:
    """The request in a message (the server side).

    Raises :class:`UnsupportedServiceError` for an unknown service code (answer ``sns``),
    :class:`ChecksumError` for a write whose data fails its checksum, and
    :class:`MessageError` for other inconsistent bytes (answer ``err``).
    """
    if not message:
        raise MessageError("empty request message: expected a C12.18 service code")
    service = Service.of_code(message[0])
    if service in (Service.IDENT, Service.TERMINATE, Service.LOGOFF):
        _expect_size(message, 1, service)
        simple: dict[Service, Request] = {
            Service.IDENT: IdentRequest(),
            Service.TERMINATE: TerminateRequest(),
            Service.LOGOFF: LogoffRequest(),
        }
        return simple[service]
    if service is Service.NEGOTIATE:
        count = message[0] - Service.NEGOTIATE
        _expect_size(message, 4 + count, service)
        return _parse_negotiate(message, count)
    if service is Service.LOGON:
        _expect_size(message, 3 + USER_NAME_SIZE, service)
        user = message[3:].rstrip(b" \x00").decode("latin-1")
        return LogonRequest(
            user_id=int.from_bytes(message[1:3], "big"),
            user=user if user.isascii() else user.encode("ascii", "replace").decode(),
        )
    if service is Service.SECURITY:
        _expect_size(message, 1 + PASSWORD_SIZE, service)
        return SecurityRequest(bytes(message[1:]))
    if service is Service.WAIT:
        _expect_size(message, 2, service)
        return WaitRequest(message[1])
    if service is Service.READ:
        # C12.18 sends no count with a full read; MEP's form (30 tid count) is accepted too,
        # its count ignored as C12.18 has none.
        if len(message) not in (3, 5):
            raise MessageError(f"full read request of {len(message)} bytes; it has 3")
        return ReadRequest(table_id=int.from_bytes(message[1:3], "big"))
    if service is Service.PARTIAL_READ:
        _expect_size(message, 8, service)
        return ReadRequest(
            table_id=int.from_bytes(message[1:3], "big"),
            offset=int.from_bytes(message[3:6], "big"),
            count=int.from_bytes(message[6:8], "big"),
        )
    return _parse_write(message, service)


def _parse_negotiate(message: bytes, count: int) -> NegotiateRequest:
    packet_size = int.from_bytes(message[1:3], "big")
    packets = message[3]
    if packet_size < MIN_PACKET_SIZE or packets == 0:
        raise MessageError(
            f"negotiate request for {packets} packets of {packet_size} bytes: a packet needs "
            f"at least {MIN_PACKET_SIZE} bytes and at least one packet"
        )
    codes = message[4 : 4 + count]
    unknown = [code for code in codes if code not in BAUD_CODES]
    if unknown:
        raise MessageError(
            "negotiate request offers unknown baud codes "
            + ", ".join(f"0x{code:02X}" for code in unknown)
        )
    return NegotiateRequest(
        packet_size=packet_size, packets=packets, bauds=tuple(BAUD_CODES[c] for c in codes)
    )


def _parse_write(message: bytes, service: Service) -> WriteRequest:
    head = 5 if service is Service.WRITE else 8  # code, table id, [offset,] count
    if len(message) < head + 1:
        raise MessageError(
            f"{service.describe()} request of {len(message)} bytes; its header needs {head}"
        )
    count = int.from_bytes(message[head - 2 : head], "big")
    data = message[head:-1]
    if len(message) != head + count + 1:
        raise MessageError(
            f"{service.describe()} request announces {count} data bytes but carries "
            f"{len(message) - head - 1} (and a checksum)"
        )
    if checksum(data) != message[-1]:
        raise ChecksumError(
            f"{service.describe()} request's data checksum 0x{message[-1]:02X} does not "
            f"match its data (0x{checksum(data):02X}): damaged on the way"
        )
    offset = int.from_bytes(message[3:6], "big") if service is Service.PARTIAL_WRITE else None
    return WriteRequest(table_id=int.from_bytes(message[1:3], "big"), offset=offset, data=data)


# -- responses --------------------------------------------------------------------------------

OK_RESPONSE = bytes([ResponseCode.OK])
"""The whole response of a Logon, Security, Write, Wait, Logoff or Terminate that worked."""


def encode_response(code: ResponseCode) -> bytes:
    """A response without data: ok for the services that return none, or an error."""
    return bytes([code])


def response_code(message: bytes) -> ResponseCode | int:
    """The response code a response message starts with (the raw byte when unknown)."""
    if not message:
        raise MessageError("empty response message: expected a response code")
    try:
        return ResponseCode(message[0])
    except ValueError:
        return message[0]


def _ok(message: bytes, service: Service) -> None:
    code = response_code(message)
    if code != ResponseCode.OK:
        raise ServiceError(code, service.name.lower())


def decode_ok_response(message: bytes, service: Service) -> None:
    """Check a response that carries nothing but ok (Logon, Security, Write, Wait, Logoff,
    Terminate).  Raises :class:`ServiceError` for another code, :class:`MessageError` for
    trailing bytes."""
    _ok(message, service)
    if len(message) != 1:
        raise MessageError(
            f"{service.name.lower()} response carries {len(message) - 1} bytes after ok"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentResponse:
    """Ident's answer: ``standard`` 0 is C12.18; ``features`` is the raw feature list
    without its closing 0x00 (OSGP meters send none)."""

    standard: int = 0
    version: int = 1
    revision: int = 0
    features: bytes = b""

    def __post_init__(self) -> None:
        for name in ("standard", "version", "revision"):
            _check(name, getattr(self, name), 0, 0xFF)

    def to_bytes(self) -> bytes:
        return (
            bytes([ResponseCode.OK, self.standard, self.version, self.revision])
            + self.features
            + b"\x00"
        )


def encode_ident_response(response: IdentResponse | None = None) -> bytes:
    return (response or IdentResponse()).to_bytes()


def decode_ident_response(message: bytes) -> IdentResponse:
    _ok(message, Service.IDENT)
    if len(message) < 5 or message[-1] != 0:
        raise MessageError(
            f"ident response of {len(message)} bytes: expected ok, standard, version, revision "
            "and a feature list ending with 0x00"
        )
    return IdentResponse(
        standard=message[1], version=message[2], revision=message[3], features=message[4:-1]
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class NegotiateResponse:
    """What the meter granted: ``packet_size`` (header and CRC included), ``packets`` per
    message, and ``baud`` (bits per second; ``None`` when the reply names no rate)."""

    packet_size: int
    packets: int
    baud: int | None = DEFAULT_BAUD

    def __post_init__(self) -> None:
        _check("packet size", self.packet_size, MIN_PACKET_SIZE, 0xFFFF)
        _check("number of packets", self.packets, 1, MAX_PACKETS)
        if self.baud is not None and self.baud not in _CODE_OF_BAUD:
            raise LocalProtocolError(f"{self.baud} baud has no C12.18 code")

    def to_bytes(self) -> bytes:
        return (
            bytes([ResponseCode.OK])
            + self.packet_size.to_bytes(2, "big")
            + bytes([self.packets])
            + (b"" if self.baud is None else bytes([_CODE_OF_BAUD[self.baud]]))
        )


def encode_negotiate_response(response: NegotiateResponse) -> bytes:
    return response.to_bytes()


def decode_negotiate_response(message: bytes) -> NegotiateResponse:
    _ok(message, Service.NEGOTIATE)
    if len(message) not in (4, 5):
        raise MessageError(
            f"negotiate response of {len(message)} bytes: expected ok, packet size (2), "
            "number of packets and a baud code"
        )
    packet_size = int.from_bytes(message[1:3], "big")
    packets = message[3]
    if packet_size < MIN_PACKET_SIZE or packets == 0:
        raise MessageError(
            f"the meter granted {packets} packets of {packet_size} bytes, which cannot carry "
            "a message"
        )
    baud: int | None = None
    if len(message) == 5:
        if message[4] not in BAUD_CODES:
            raise MessageError(f"negotiate response names unknown baud code 0x{message[4]:02X}")
        baud = BAUD_CODES[message[4]]
    return NegotiateResponse(packet_size=packet_size, packets=packets, baud=baud)


def encode_read_response(data: bytes) -> bytes:
    """A read that worked: ``00 count(2) data checksum``."""
    if len(data) > MAX_COUNT:
        raise LocalProtocolError(f"a read reply carries at most {MAX_COUNT} bytes")
    return OK_RESPONSE + len(data).to_bytes(2, "big") + data + bytes([checksum(data)])


def decode_read_response(message: bytes, service: Service = Service.READ) -> bytes:
    """The table data of a read's response.

    Raises :class:`ServiceError` when the meter refused, :class:`ChecksumError` when the data
    fails its checksum, :class:`MessageError` when the count disagrees with the bytes.
    """
    _ok(message, service)
    if len(message) < 4:
        raise MessageError(
            f"read response of {len(message)} bytes; expected at least 4 (ok, count, checksum)"
        )
    count = int.from_bytes(message[1:3], "big")
    data = message[3:-1]
    if len(data) != count:
        raise MessageError(
            f"read response announces {count} bytes of table data but carries {len(data)}"
        )
    if checksum(data) != message[-1]:
        raise ChecksumError(
            f"read response's checksum 0x{message[-1]:02X} does not match its data "
            f"(0x{checksum(data):02X}): damaged on the way; read again"
        )
    return bytes(data)
