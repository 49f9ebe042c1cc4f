"""Request, response and result codes of the MEP protocol, each with a user-facing meaning.

Sources: MEP guide chapter 2, Table 2.1 "TLS-Related Codes", Table 2.3 "TLS Response Message
Format", Tables 2.5-2.7 (C12.18 request and response codes), and chapter 4 "Procedure Header
Fields" (procedure result codes).
"""

from __future__ import annotations

from enum import IntEnum


class RequestCode(IntEnum):
    """C12.18 request codes carried in an RC4-secured MEP request (MEP guide, Table 2.6)."""

    FULL_READ = 0x30
    PARTIAL_READ = 0x3F
    FULL_WRITE = 0x40
    PARTIAL_WRITE = 0x4F

    def describe(self) -> str:
        return _REQUEST_TEXT[self]


_REQUEST_TEXT = {
    RequestCode.FULL_READ: "full table read",
    RequestCode.PARTIAL_READ: "partial table read",
    RequestCode.FULL_WRITE: "full table write",
    RequestCode.PARTIAL_WRITE: "partial table write",
}


class ResponseCode(IntEnum):
    """Response codes of an RC4-secured MEP response (MEP guide, Table 2.5 / 2.7), which are
    the C12.18 response codes 0x00-0x0A plus MEP's 0x0B and 0x0C.

    The C12.18 short names are aliases (``ResponseCode.ISC is ResponseCode.NO_PERMISSION``).
    :meth:`describe` words a code for a MEP exchange, :meth:`describe_c1218` for the optical
    port (C12.18 application layer).
    """

    OK = 0x00
    UNRECOGNIZED_REQUEST = 0x01
    UNSUPPORTED_REQUEST = 0x02
    NO_PERMISSION = 0x03
    OPERATION_NOT_POSSIBLE = 0x04
    TABLE_OPERATION_NOT_POSSIBLE = 0x05
    BUSY = 0x06
    DATA_NOT_READY = 0x07
    DATA_LOCKED = 0x08
    RENEGOTIATE = 0x09
    INVALID_SERVICE_SEQUENCE_STATE = 0x0A  # named in Table 2.1 for TLS_TABLE without a session
    AUTHENTICATION_FAILURE = 0x0B
    INVALID_SEQUENCE_NUMBER = 0x0C

    # The C12.18 names of 0x00-0x0A.
    ERR = 0x01
    SNS = 0x02
    ISC = 0x03
    ONP = 0x04
    IAR = 0x05
    BSY = 0x06
    DNR = 0x07
    DLK = 0x08
    RNO = 0x09
    ISSS = 0x0A

    def describe(self) -> str:
        return _RESPONSE_TEXT[self]

    def describe_c1218(self) -> str:
        """The meaning of the code in a C12.18 (optical port) exchange."""
        return _C1218_TEXT.get(self) or _RESPONSE_TEXT[self]


_RESPONSE_TEXT = {
    ResponseCode.OK: "success",
    ResponseCode.UNRECOGNIZED_REQUEST: (
        "the meter did not recognise the request; check the request code and its fields"
    ),
    ResponseCode.UNSUPPORTED_REQUEST: (
        "the meter does not support this request (table or procedure unknown on this firmware)"
    ),
    ResponseCode.NO_PERMISSION: (
        "no permission: this key's access level may not do that (the MBK may write only "
        "BT07, ET50, ET51 and ET52); use the MAK or read instead"
    ),
    ResponseCode.OPERATION_NOT_POSSIBLE: (
        "the requested operation is not possible now (for BT07: a repeated procedure "
        "sequence number)"
    ),
    ResponseCode.TABLE_OPERATION_NOT_POSSIBLE: (
        "the table operation is not possible: offset or count outside the table"
    ),
    ResponseCode.BUSY: "the meter is busy; try again in a moment",
    ResponseCode.DATA_NOT_READY: "the data is not ready yet; try again in a moment",
    ResponseCode.DATA_LOCKED: "the data is locked (in use by another operation); try again later",
    ResponseCode.RENEGOTIATE: "the meter asks to renegotiate the link; start a new session",
    ResponseCode.INVALID_SERVICE_SEQUENCE_STATE: (
        "invalid service sequence state: no TLS session is established; repeat the handshake"
    ),
    ResponseCode.AUTHENTICATION_FAILURE: (
        "authentication failure: the meter rejected the key; check the MBK -- 20 characters "
        "exactly as the grid company sent them, not converted to hex"
    ),
    ResponseCode.INVALID_SEQUENCE_NUMBER: (
        "invalid sequence number: the reply carries the number to continue from"
    ),
}

# C12.18 words for the optical port, where the MEP-specific texts above do not apply.
_C1218_TEXT = {
    ResponseCode.OK: "ok",
    ResponseCode.ERR: (
        "error (err): the meter refused the request without a more specific reason; "
        "check its fields"
    ),
    ResponseCode.SNS: (
        "service not supported (sns): the meter does not offer this service or table"
    ),
    ResponseCode.ISC: (
        "insufficient security clearance (isc): this key may not do that, or a hardware "
        "lock forbids it; use a key with more access"
    ),
    ResponseCode.ONP: (
        "operation not possible (onp): the table is shorter than asked, or the request "
        "cannot be carried out now"
    ),
    ResponseCode.IAR: (
        "inappropriate action requested (iar): for example a write to a read-only table"
    ),
    ResponseCode.BSY: "device busy (bsy): the meter cannot serve now; repeat the request shortly",
    ResponseCode.DNR: "data not ready (dnr): repeat the request shortly",
    ResponseCode.DLK: "data locked (dlk): the data is in use; repeat the request later",
    ResponseCode.RNO: (
        "renegotiate request (rno): the meter wants the link set up again; end the session "
        "and start over"
    ),
    ResponseCode.ISSS: (
        "out of sequence for the session state (isss): the request is not allowed now (for "
        "example a read before logon, or a second Ident); start the session over"
    ),
}


def describe_c1218_response_code(code: int) -> str:
    """A plain-word meaning for any C12.18 response code byte, known or not."""
    try:
        return ResponseCode(code).describe_c1218()
    except ValueError:
        return f"unknown response code 0x{code:02X}"


class TlsRequestCode(IntEnum):
    """Request codes that carry TLS records in a MEP frame (MEP guide, Table 2.1)."""

    TERMINATE = 0x57
    HANDSHAKE = 0x58
    HANDSHAKE_CONT = 0x59
    TABLE = 0x80

    def describe(self) -> str:
        return _TLS_REQUEST_TEXT[self]


_TLS_REQUEST_TEXT = {
    TlsRequestCode.TERMINATE: "end the TLS session",
    TlsRequestCode.HANDSHAKE: "start a TLS handshake (resets any session in progress)",
    TlsRequestCode.HANDSHAKE_CONT: "continue the TLS handshake",
    TlsRequestCode.TABLE: "a C12.18 request inside the TLS session",
}


class TlsResponseCode(IntEnum):
    """Response codes of a TLS-secured MEP response (MEP guide, Table 2.3)."""

    OK = 0x00
    TLS_ERROR = 0x01
    INVALID_IDENTITY_OR_KEY = 0x03

    def describe(self) -> str:
        return _TLS_RESPONSE_TEXT[self]


_TLS_RESPONSE_TEXT = {
    TlsResponseCode.OK: "success",
    TlsResponseCode.TLS_ERROR: "TLS error: the meter ended the session; start a new handshake",
    TlsResponseCode.INVALID_IDENTITY_OR_KEY: (
        "invalid PSK identity or key: check the key and whether it is the MBK or the MAK"
    ),
}


class ProcedureResult(IntEnum):
    """ANSI result codes in BT08 / ET59 / ET85 (MEP guide, "Procedure Header Fields")."""

    COMPLETED = 0
    NOT_FULLY_COMPLETED = 1
    INVALID_PARAMETER = 2
    CONFLICTS_WITH_SETUP = 3
    TIMING_CONSTRAINT = 4
    NO_AUTHORIZATION = 5
    UNRECOGNIZED_PROCEDURE = 6

    def describe(self) -> str:
        return _PROCEDURE_TEXT[self]


_PROCEDURE_TEXT = {
    ProcedureResult.COMPLETED: "procedure completed",
    ProcedureResult.NOT_FULLY_COMPLETED: "procedure accepted but not fully completed",
    ProcedureResult.INVALID_PARAMETER: "invalid parameter; the procedure was ignored",
    ProcedureResult.CONFLICTS_WITH_SETUP: (
        "the procedure conflicts with the meter's current setup and was ignored"
    ),
    ProcedureResult.TIMING_CONSTRAINT: "timing constraint; the procedure was ignored, retry later",
    ProcedureResult.NO_AUTHORIZATION: (
        "no authorisation for this procedure with this key (the MBK may call only EP16 and "
        "EP39); it was ignored"
    ),
    ProcedureResult.UNRECOGNIZED_PROCEDURE: "unrecognised procedure; it was ignored",
}


def describe_response_code(code: int) -> str:
    """A user-facing meaning for any response code byte, known or not."""
    try:
        return ResponseCode(code).describe()
    except ValueError:
        return f"unknown response code 0x{code:02X}"
