"""The C12.18 session states and the one table of which service is allowed in which.

As implementers recall the standard's annex (not fully confirmed, so the simulator is strict
and the client tolerant): Ident leads from the base state to identified; Negotiate only while
identified; Logon from identified into the session; Security, reads, writes and Wait inside
the session; Logoff back to identified; Terminate to the base state from anywhere.  A service
in the wrong state is answered ``isss``.  The fall back to the base state after the channel
traffic timeout is the caller's (the core has no clock).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from types import MappingProxyType

from mepgate.c1218.services import Service
from mepgate.errors import LocalProtocolError


class SessionState(Enum):
    BASE = "base"
    IDENTIFIED = "identified"
    SESSION = "session"

    def describe(self) -> str:
        return _STATE_TEXT[self]


_STATE_TEXT = {
    SessionState.BASE: "base state: no session (waits for Ident)",
    SessionState.IDENTIFIED: "identified: Ident answered (Negotiate or Logon next)",
    SessionState.SESSION: "in session: logged on (Security, reads, writes)",
}

_B, _I, _S = SessionState.BASE, SessionState.IDENTIFIED, SessionState.SESSION

TRANSITIONS: Mapping[tuple[SessionState, Service], SessionState] = MappingProxyType(
    {
        (_B, Service.IDENT): _I,
        (_I, Service.NEGOTIATE): _I,
        (_I, Service.LOGON): _S,
        (_S, Service.SECURITY): _S,
        (_S, Service.READ): _S,
        (_S, Service.PARTIAL_READ): _S,
        (_S, Service.WRITE): _S,
        (_S, Service.PARTIAL_WRITE): _S,
        (_S, Service.WAIT): _S,
        (_S, Service.LOGOFF): _I,
        (_B, Service.TERMINATE): _B,
        (_I, Service.TERMINATE): _B,
        (_S, Service.TERMINATE): _B,
    }
)
"""(state, service) -> the state after the service was answered ok.  A pair not in the table
is not allowed: the server answers ``isss`` and the state stays."""


def allowed(state: SessionState, service: Service) -> bool:
    return (state, service) in TRANSITIONS


def next_state(state: SessionState, service: Service) -> SessionState:
    """The state after ``service`` succeeded in ``state``; :class:`LocalProtocolError` when
    the table does not allow it (check :func:`allowed` first)."""
    try:
        return TRANSITIONS[state, service]
    except KeyError:
        raise LocalProtocolError(
            f"{service.name.lower()} is not allowed in the {state.value} state"
        ) from None
