"""The client's exceptions: each says what failed and what to do, never shows a key.

* :class:`MeterLinkError` -- the exchange itself failed; ``diagnosis`` names the likely cause.
  :class:`AuthenticationError` is final (retrying cannot help); the others are transient.
* :class:`MeterRefusedError` -- the meter answered, and refused this request (0x01..0x05).
* :class:`~mepgate.transport.PortUnavailableError` -- the port cannot be opened or went away.
"""

from __future__ import annotations

from mepgate.client.diagnosis import Diagnosis
from mepgate.errors import MepgateError, PortUnavailableError, RemoteProtocolError
from mepgate.proto.codes import describe_c1218_response_code, describe_response_code

__all__ = [
    "AnswerLostError",
    "AuthenticationError",
    "BadReplyError",
    "EchoError",
    "GarbledLineError",
    "HeldOffError",
    "KeyRefusedError",
    "LockedOutError",
    "MeterLinkError",
    "MeterRefusedError",
    "NakStormError",
    "NoAnswerError",
    "NoisyLineError",
    "OpticalDisabledError",
    "OutOfTimeError",
    "PortUnavailableError",
    "ReconfiguredError",
    "SequenceConflictError",
    "SharedPortError",
    "TlsRequiredError",
    "TlsSessionError",
    "error_for",
]


class MeterLinkError(RemoteProtocolError):
    """The request could not be completed on this link; ``interface`` (``mep`` or
    ``optical``) words the advice."""

    diagnosis = Diagnosis.NOISY

    def __init__(self, detail: str = "", *, interface: str = "mep") -> None:
        text = self.diagnosis.advice(interface)
        super().__init__(f"{detail}: {text}" if detail else text)
        self.detail = detail
        self.interface = interface


class NoAnswerError(MeterLinkError):
    diagnosis = Diagnosis.NO_ANSWER


class OpticalSessionError(NoAnswerError):
    """Silence on the MEP port of a Gen 2/3 meter that answered on this connection: the shared
    serial port is switched to the optical port (MEP guide, "Using the MEP and Optical Ports
    concurrently").  A :class:`NoAnswerError`, so whatever handles silence handles it."""

    diagnosis = Diagnosis.OPTICAL_SESSION


class EchoError(MeterLinkError):
    diagnosis = Diagnosis.ECHO


class GarbledLineError(MeterLinkError):
    diagnosis = Diagnosis.GARBLED


class NoisyLineError(MeterLinkError):
    diagnosis = Diagnosis.NOISY


class OutOfTimeError(NoisyLineError):
    """A request given up because the time its caller allowed was up
    (:meth:`~mepgate.client.MeterClient.time_limit`): it was not started, or not sent again,
    after that.  The replies it needed resending were lost or damaged on the line, so the
    advice is the noisy line's; a read given up this way is simply asked again later."""


class AnswerLostError(NoisyLineError):
    """A write or procedure call the meter carried out, whose answer was lost on the line: the
    identical resend met a 0x0C asking for the number after ours (MEP guide, "Response
    timeout" and "RC4 Authentication").  It is not sent again under a new number -- that would
    carry it out twice -- so its result code is unknown: read the table (a procedure's result
    is in BT08/ET59, which :meth:`MeterClient.call` reads)."""


class AuthenticationError(MeterLinkError):
    """0x0B, confirmed: the key is wrong.  Retrying cannot help."""

    diagnosis = Diagnosis.WRONG_KEY


class KeyRefusedError(AuthenticationError):
    """The optical port's Security service refused the key.  Retrying cannot help."""

    diagnosis = Diagnosis.KEY_REFUSED


class LockedOutError(MeterLinkError):
    """The meter locked the optical port after refused keys; ``seconds_left`` when known."""

    diagnosis = Diagnosis.LOCKED_OUT

    def __init__(
        self, detail: str = "", *, interface: str = "optical", seconds_left: float | None = None
    ) -> None:
        super().__init__(detail, interface=interface)
        self.seconds_left = seconds_left


class OpticalDisabledError(MeterLinkError):
    diagnosis = Diagnosis.OPTICAL_DISABLED


class HeldOffError(MeterLinkError):
    """The meter ignores the optical port after its session timeout, ``seconds_left`` more."""

    diagnosis = Diagnosis.HELD_OFF

    def __init__(
        self, detail: str = "", *, interface: str = "optical", seconds_left: float = 0.0
    ) -> None:
        super().__init__(detail, interface=interface)
        self.seconds_left = seconds_left


class NakStormError(MeterLinkError):
    diagnosis = Diagnosis.NAK_STORM


class SharedPortError(MeterLinkError):
    diagnosis = Diagnosis.SHARED_PORT


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
    Diagnosis.KEY_REFUSED: KeyRefusedError,
    Diagnosis.LOCKED_OUT: LockedOutError,
    Diagnosis.OPTICAL_DISABLED: OpticalDisabledError,
    Diagnosis.HELD_OFF: HeldOffError,
    Diagnosis.NAK_STORM: NakStormError,
    Diagnosis.SHARED_PORT: SharedPortError,
    Diagnosis.OPTICAL_SESSION: OpticalSessionError,
}


def error_for(diagnosis: Diagnosis, detail: str = "", *, interface: str = "mep") -> MeterLinkError:
    """The exception that carries ``diagnosis`` (``detail``: what was being done)."""
    return _BY_DIAGNOSIS.get(diagnosis, NoisyLineError)(detail, interface=interface)


class TlsRequiredError(MepgateError):
    """The meter answers RC4 requests with 0x0A: it serves only TLS.  With ``--security auto``
    the client switches to TLS; with ``--security rc4`` this reaches the user."""


class ReconfiguredError(MepgateError):
    """ET04's IDT version changed: requests built from the old dimensions are void.  The
    client re-reads the dimensions and plans the request again."""


class MeterRefusedError(RemoteProtocolError):
    """The meter answered this request with an error code (its reply verified)."""

    def __init__(self, code: int, what: str, *, interface: str = "mep") -> None:
        # The same codes mean the same on both ports, but the advice differs (MBK/MAK access
        # levels on MEP, MK/PK/RK passwords on the optical port).
        words = (
            describe_c1218_response_code(code)
            if interface == "optical"
            else describe_response_code(code)
        )
        super().__init__(f"{what}: the meter answered 0x{code:02X}, {words}")
        self.code = code
