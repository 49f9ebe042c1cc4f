"""The sans-IO MEP protocol core: bytes in, events out; no I/O, no clock, no randomness.

Everything here follows the MEP Client Developer's Guide (chapter 2 and appendices A-C).  The
client, the simulator and the gateway all speak MEP through this package, so every protocol
rule lives in exactly one place.
"""

from mepgate.proto.buffer import NEED_DATA, Alert, Frame, FrameBuffer
from mepgate.proto.codes import (
    ProcedureResult,
    RequestCode,
    ResponseCode,
    TlsRequestCode,
    TlsResponseCode,
    describe_response_code,
)
from mepgate.proto.digest import DigestState, digest
from mepgate.proto.errors import (
    DigestMismatchError,
    FramingError,
    InvalidKeyError,
    LocalProtocolError,
    MalformedMessageError,
    RemoteProtocolError,
)
from mepgate.proto.frames import (
    ALERT,
    Exchange,
    Response,
    decode_response,
    encode_request,
    open_request,
    prepare_request,
)
from mepgate.proto.keys import MepKey, parse_key
from mepgate.proto.messages import ReadRequest, Request, WriteRequest, parse_request
from mepgate.proto.procedures import ProcedureCall, ProcedureResponse, ProcedureSequence
from mepgate.proto.rc4 import Rc4Stream
from mepgate.proto.sequence import ClientSequence, SequenceWindow
from mepgate.proto.server import Accepted, AccessLevel, Rejected, check_request

__all__ = [
    "ALERT",
    "NEED_DATA",
    "Accepted",
    "AccessLevel",
    "Alert",
    "ClientSequence",
    "DigestMismatchError",
    "DigestState",
    "Exchange",
    "Frame",
    "FrameBuffer",
    "FramingError",
    "InvalidKeyError",
    "LocalProtocolError",
    "MalformedMessageError",
    "MepKey",
    "ProcedureCall",
    "ProcedureResponse",
    "ProcedureResult",
    "ProcedureSequence",
    "Rc4Stream",
    "ReadRequest",
    "Rejected",
    "RemoteProtocolError",
    "Request",
    "RequestCode",
    "Response",
    "ResponseCode",
    "SequenceWindow",
    "TlsRequestCode",
    "TlsResponseCode",
    "WriteRequest",
    "check_request",
    "decode_response",
    "describe_response_code",
    "digest",
    "encode_request",
    "open_request",
    "parse_key",
    "parse_request",
    "prepare_request",
]
