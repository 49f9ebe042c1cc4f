"""The client's exceptions: each says what failed and what to do, never shows a key.

* :class:`MeterLinkError` -- the exchange itself failed; ``diagnosis`` names the likely cause.
  :class:`AuthenticationError` is final (retrying cannot help); the others are transient.
* :class:`MeterRefusedError` -- the meter answered, and refused this request (0x01..0x05).
* :class:`~mepgate.transport.PortUnavailableError` -- the port cannot be opened or went away.
"""

from __future__ import annotations

from mepgate.client.diagnosis import Diagnosis
from mepgate.errors import MepgateError, PortUnavailableError, RemoteProtocolError
from mepgate.proto.codes import describe_response_code

__all__ = [
    "AuthenticationError",
    "BadReplyError",
    "EchoError",
    "GarbledLineError",
    "MeterLinkError",
    "MeterRefusedError",
    "NoAnswerError",
    "NoisyLineError",
    "PortUnavailableError",
    "ReconfiguredError",
    "SequenceConflictError",
    "TlsRequiredError",
    "TlsSessionError",
    "error_for",
]


class MeterLinkError(RemoteProtocolError):
    """The request could not be completed on this link."""

    diagnosis = Diagnosis.NOISY

    def __init__(self, detail: str = "") -> None:
        text = self.diagnosis.advice()
        super().__init__(f"{detail}: {text}" if detail else text)
        self.detail = detail


class NoAnswerError(MeterLinkError):
    diagnosis = Diagnosis.NO_ANSWER


class EchoError(MeterLinkError):
    diagnosis = Diagnosis.ECHO


class GarbledLineError(MeterLinkError):
    diagnosis = Diagnosis.GARBLED


class NoisyLineError(MeterLinkError):
    diagnosis = Diagnosis.NOISY


class AuthenticationError(MeterLinkError):
    """0x0B, confirmed: the key is wrong.  Retrying cannot help."""

    diagnosis = Diagnosis.WRONG_KEY


class SequenceConflictError(MeterLinkError):
    diagnosis = Diagnosis.SEQUENCE_CONFLICT


class TlsSessionError(MeterLinkError):
    diagnosis = Diagnosis.TLS_FAILED


class BadReplyError(MeterLinkError):
    """The meter's reply verified, and is not what was asked: a partial read answered with
    more or fewer bytes than requested, a table that never ends."""

    diagnosis = Diagnosis.BAD_REPLY


_BY_DIAGNOSIS: dict[Diagnosis, type[MeterLinkError]] = {
    Diagnosis.NO_ANSWER: NoAnswerError,
    Diagnosis.ECHO: EchoError,
    Diagnosis.GARBLED: GarbledLineError,
    Diagnosis.NOISY: NoisyLineError,
    Diagnosis.OK: NoisyLineError,
    Diagnosis.WRONG_KEY: AuthenticationError,
    Diagnosis.SEQUENCE_CONFLICT: SequenceConflictError,
    Diagnosis.TLS_FAILED: TlsSessionError,
    Diagnosis.BAD_REPLY: BadReplyError,
}


def error_for(diagnosis: Diagnosis, detail: str = "") -> MeterLinkError:
    """The exception that carries ``diagnosis`` (``detail``: what was being done)."""
    return _BY_DIAGNOSIS.get(diagnosis, NoisyLineError)(detail)


class TlsRequiredError(MepgateError):
    """The meter answers RC4 requests with 0x0A: it serves only TLS.  With ``--security auto``
    the client switches to TLS; with ``--security rc4`` this reaches the user."""


class ReconfiguredError(MepgateError):
    """ET04's IDT version changed: requests built from the old dimensions are void.  The
    client re-reads the dimensions and plans the request again."""


class MeterRefusedError(RemoteProtocolError):
    """The meter answered this request with an error code (its reply verified)."""

    def __init__(self, code: int, what: str) -> None:
        super().__init__(f"{what}: the meter answered 0x{code:02X}, {describe_response_code(code)}")
        self.code = code
