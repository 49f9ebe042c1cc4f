"""The simulated meter's request handling: one whole request frame in, the reply out.

Everything protocol-related comes from :mod:`mepgate.proto` (server role) and
:mod:`mepgate.tls`; this module adds only what a meter decides: which key may do what
(MEP guide, appendix C), what a table read or write returns, procedures through BT07, the
TLS-required mode, and the alert conditions.  Table *content* comes from a :class:`TableStore`
(the meter model); timing and faults belong to the front end.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from mepgate.proto import (
    AccessLevel,
    ProcedureCall,
    ProcedureResponse,
    ProcedureResult,
    ReadRequest,
    Rejected,
    ResponseCode,
    SequenceWindow,
    TlsRequestCode,
    TlsResponseCode,
    WriteRequest,
    check_request,
    parse_request,
)
from mepgate.proto.constants import MAX_READ_DATA
from mepgate.proto.errors import MalformedMessageError
from mepgate.proto.frames import frame, unframe
from mepgate.proto.messages import encode_read_reply
from mepgate.proto.procedures import (
    BT07_PROCEDURE_INITIATE,
    EP16_CHANGE_CLOCK_BY_DELTA,
    EP17_REMOVE_MEP_DEVICE,
    EP39_POST_MEP_DATA,
)
from mepgate.proto.server import authenticate
from mepgate.proto.tls_frames import (
    NO_TLS_SESSION_REPLY,
    decode_tls_request,
    encode_tls_response,
    is_tls_request,
)
from mepgate.tls import TlsAuthenticationError, TlsError, TlsPskServer

log = logging.getLogger(__name__)

ET50_MEP_INBOUND_DATA_SPACE = 0x0832
ET51_MEP_DEVICE_CONFIGURATION = 0x0833
ET52_MEP_TRANSACTION_REQUEST = 0x0834
EP61_TRANSACTION_LOCK_CONTROL = 2048 + 61

# MEP guide, "Access Levels" and appendix C, Table C.1: what the MBK may write.
MBK_WRITABLE = frozenset(
    {
        BT07_PROCEDURE_INITIATE,
        ET50_MEP_INBOUND_DATA_SPACE,
        ET51_MEP_DEVICE_CONFIGURATION,
        ET52_MEP_TRANSACTION_REQUEST,
    }
)
# Appendix C, Table C.2 and "Access Levels": procedures the MBK may start.
MBK_PROCEDURES = frozenset(
    {
        EP16_CHANGE_CLOCK_BY_DELTA,
        EP17_REMOVE_MEP_DEVICE,
        EP39_POST_MEP_DATA,
        EP61_TRANSACTION_LOCK_CONTROL,
    }
)


class TableStore(Protocol):
    """The meter model as the request handler sees it."""

    def table(self, table_id: int) -> bytes | None:
        """The table's current bytes, or None when the meter has no such table."""

    def note_read(self, table_id: int) -> None:
        """A client read the table (some reads service an alert: ET15, "Alert Sequence")."""

    def mak_writable(self, table_id: int) -> bool:
        """Whether the MAK may write this table (appendix C, Table C.1)."""

    def write(self, table_id: int, offset: int, data: bytes) -> ResponseCode:
        """Store a write the access rules allowed; return its response code."""

    def run_procedure(self, call: ProcedureCall, level: AccessLevel) -> ProcedureResponse:
        """Execute a procedure the access rules allowed."""

    def procedure_response_table(self) -> int:
        """BT08 or ET59, as the ET50 "ET59 Response" flag selects."""

    def store_procedure_response(self, table_id: int, response: ProcedureResponse) -> None:
        """Make ``response`` readable in ``table_id``."""


def read_table(store: TableStore, request: ReadRequest) -> bytes | ResponseCode:
    """The bytes a full or partial read asks for, or the code refusing it.

    Shared by the MEP and the optical server (one meter, one answer); each wraps the bytes in
    its own response message and applies its own size limit, then calls ``note_read``.
    """
    content = store.table(request.table_id)
    if content is None:
        return ResponseCode.UNSUPPORTED_REQUEST
    if request.offset is None:
        return content[: request.count]
    end = request.offset + request.count
    if end > len(content):
        return ResponseCode.TABLE_OPERATION_NOT_POSSIBLE
    return content[request.offset : end]


class ProcedureRunner:
    """Procedures started by a BT07 write: one PSN memory per meter, whichever port wrote."""

    def __init__(self, store: TableStore) -> None:
        self._store = store
        self._last_psn: int | None = None

    def initiate(
        self, data: bytes, level: AccessLevel, permitted: Callable[[int], bool]
    ) -> ResponseCode:
        """Run the procedure call in ``data`` (a BT07 write) if ``permitted(number)``; the
        response goes to the procedure response table, the write itself answers ok."""
        try:
            call = ProcedureCall.from_bytes(data)
        except MalformedMessageError:
            return ResponseCode.TABLE_OPERATION_NOT_POSSIBLE
        # MEP guide, "Procedure Header Fields": a repeated PSN is refused with 0x04.
        if call.psn == self._last_psn:
            return ResponseCode.OPERATION_NOT_POSSIBLE
        self._last_psn = call.psn
        if not permitted(call.number):
            response = ProcedureResponse(
                number=call.number, psn=call.psn, result=ProcedureResult.NO_AUTHORIZATION
            )
        else:
            response = self._store.run_procedure(call, level)
        self._store.store_procedure_response(self._store.procedure_response_table(), response)
        return ResponseCode.OK


@dataclass(slots=True)
class LinkCounters:
    """What the meter saw, for tests and the simulator's status output."""

    requests: int = 0
    accepted: int = 0
    auth_failures: int = 0
    sequence_errors: int = 0
    encrypted: int = 0
    tls_requests: int = 0
    by_level: dict[str, int] = field(default_factory=dict)


class MeterCore:
    """A MEP server: :meth:`handle` maps one request frame to one reply frame.

    ``keys`` holds the MBK and (optionally) the MAK; ``sequence`` is where the meter's
    sequence counter starts (a real meter's is arbitrary: pass a seeded random number).
    With ``tls_required`` only TLS-carried requests are served (MEP guide, "Using TLS
    Security to secure MEP Ports").
    """

    def __init__(
        self,
        *,
        keys: Mapping[AccessLevel, bytes],
        store: TableStore,
        sequence: int,
        tls_required: bool = False,
    ) -> None:
        self._keys = dict(keys)
        self._store = store
        self.window = SequenceWindow(last_accepted=sequence)
        self.tls_required = tls_required
        self._tls: TlsPskServer | None = None
        self.procedures = ProcedureRunner(store)
        self.counters = LinkCounters()

    def __repr__(self) -> str:
        return f"MeterCore(levels={sorted(k.name for k in self._keys)}, tls={self.tls_required})"

    # -- entry point ---------------------------------------------------------------------------
    def handle(self, wire: bytes) -> bytes:
        """The reply frame for one whole request frame (length field included)."""
        self.counters.requests += 1
        body = unframe(wire, minimum=1)
        if is_tls_request(body) and (self.tls_required or not self._verifies_as_rc4(wire)):
            return self._handle_tls(*decode_tls_request(wire))
        if self.tls_required:
            # No RC4 while TLS is required; Table 2.1 names 0x0A for "no TLS session".
            return NO_TLS_SESSION_REPLY
        verdict = check_request(wire, self._keys, self.window)
        if isinstance(verdict, Rejected):
            if verdict.code == ResponseCode.AUTHENTICATION_FAILURE:
                self.counters.auth_failures += 1
            else:
                self.counters.sequence_errors += 1
            return verdict.reply
        self.counters.accepted += 1
        self.counters.encrypted += verdict.exchange.encrypted
        name = verdict.level.name
        self.counters.by_level[name] = self.counters.by_level.get(name, 0) + 1
        return verdict.reply(self.execute(verdict.exchange.message, verdict.level))

    def advance_sequence(self, step: int) -> None:
        """Jump the sequence counter (reconfiguration: MEP guide, "Dynamic Sizing of Tables")."""
        self.window.advance(step)

    def reset_sequence(self, sequence: int) -> None:
        """A reboot: the counter starts somewhere new, and any TLS session is gone."""
        self.window = SequenceWindow(last_accepted=sequence)
        self._tls = None

    # -- C12.18 --------------------------------------------------------------------------------
    def execute(self, message: bytes, level: AccessLevel) -> bytes:
        """The C12.18 response message for an authenticated request message."""
        try:
            request = parse_request(message)
        except MalformedMessageError:
            return bytes([ResponseCode.UNRECOGNIZED_REQUEST])
        if isinstance(request, ReadRequest):
            return self._read(request)
        return bytes([self._write(request, level)])

    def _read(self, request: ReadRequest) -> bytes:
        data = read_table(self._store, request)
        if isinstance(data, ResponseCode):
            return bytes([data])
        if len(data) > MAX_READ_DATA:
            # A reply cannot carry it: the client must read in parts (partial reads).
            return bytes([ResponseCode.OPERATION_NOT_POSSIBLE])
        self._store.note_read(request.table_id)
        return encode_read_reply(data)

    def _write(self, request: WriteRequest, level: AccessLevel) -> ResponseCode:
        table_id = request.table_id
        if self._store.table(table_id) is None:
            return ResponseCode.UNSUPPORTED_REQUEST
        allowed = (
            table_id in MBK_WRITABLE
            if level is AccessLevel.BASIC
            else self._store.mak_writable(table_id)
        )
        if not allowed:
            return ResponseCode.NO_PERMISSION
        if table_id == BT07_PROCEDURE_INITIATE:
            return self._procedure(request.data, level)
        return self._store.write(table_id, request.offset or 0, request.data)

    def _procedure(self, data: bytes, level: AccessLevel) -> ResponseCode:
        def permitted(number: int) -> bool:
            return level is not AccessLevel.BASIC or number in MBK_PROCEDURES

        return self.procedures.initiate(data, level, permitted)

    # -- TLS -----------------------------------------------------------------------------------
    def _verifies_as_rc4(self, wire: bytes) -> bool:
        """An encrypted RC4 request can start with any byte, even a TLS code: check first."""
        try:
            return authenticate(wire, self._keys) is not None
        except MalformedMessageError:
            return False

    def _handle_tls(self, code: TlsRequestCode, payload: bytes) -> bytes:
        self.counters.tls_requests += 1
        try:
            if code is TlsRequestCode.HANDSHAKE:
                self._tls = TlsPskServer({int(level): key for level, key in self._keys.items()})
                self._tls.receive(payload)
                return encode_tls_response(TlsResponseCode.OK, self._tls.do_handshake().outgoing)
            if self._tls is None:
                return encode_tls_response(TlsResponseCode.TLS_ERROR)
            if code is TlsRequestCode.HANDSHAKE_CONT:
                self._tls.receive(payload)
                return encode_tls_response(TlsResponseCode.OK, self._tls.do_handshake().outgoing)
            if code is TlsRequestCode.TERMINATE:
                self._tls = None
                return encode_tls_response(TlsResponseCode.OK)
            if not self._tls.handshake_complete:
                return frame(bytes([ResponseCode.INVALID_SERVICE_SEQUENCE_STATE]))
            request = self._tls.decrypt(payload)
            level = self._tls_level()
            reply = self.execute(request, level)
            return encode_tls_response(TlsResponseCode.OK, self._tls.encrypt(reply))
        except TlsError as error:
            self._tls = None
            log.info("TLS session ended: %s", error)
            code_out = (
                TlsResponseCode.INVALID_IDENTITY_OR_KEY
                if isinstance(error, TlsAuthenticationError)
                else TlsResponseCode.TLS_ERROR
            )
            return encode_tls_response(code_out, error.outgoing)

    def _tls_level(self) -> AccessLevel:
        identity = self._tls.peer_identity if self._tls is not None else None
        if identity is None:
            return AccessLevel.BASIC
        return AccessLevel(int(identity.key_id))
