"""The knobs an optical client may turn; the rules themselves are :mod:`mepgate.c1218.constants`."""

from __future__ import annotations

from dataclasses import dataclass

from mepgate.c1218.constants import (
    BUSY_RETRIES,
    BUSY_RETRY_INTERVAL,
    CHANNEL_TRAFFIC_TIMEOUT,
    DEFAULT_HOLD_OFF,
    DEFAULT_SESSION_TIMEOUT,
    INTER_CHARACTER_TIMEOUT,
    LINK_RETRIES,
    RESPONSE_TIMEOUT,
    TURN_AROUND,
)

RENEWAL_SHARE = 0.9
"""A session is renewed when this share of the meter's optical session timeout has passed
(540 s of the default 600 s): well before the meter ends it and holds the port off."""
RENEWAL_MARGIN_S = 5.0
"""...and at least this long before the timeout: a session is renewed only when a request
starts, so the margin must outlast the wait for the next request (a poll interval) with one
exchange (short timeouts: a grid company's setting, or one learnt from a cut session)."""
TIMEOUT_PLAUSIBLE_SHARE = 0.5
TIMEOUT_PLAUSIBLE_AGE = 30.0
"""Silence in an open session is taken for the meter's session timeout only once the session
is this share of the timeout the client assumes old, or this many seconds, whichever comes
first.  Younger, the line is the better explanation: a damaged length field makes the meter
wait for a longer packet and swallow our resends, so it stays silent for a whole exchange.
Half: sessions are renewed at :data:`RENEWAL_SHARE`, so a meter ending one before half of the
assumed timeout has a timeout less than half of what its tables said -- only when they were
changed since, or could not be read.  30 s: when they could not be read (the RK may not read
ET51) the default of 600 s is assumed, and a meter set far shorter must still be recognised
soon; a session this old has been renewed or answered for long enough that a cut is no
longer unlikely.  (A younger session is still taken as cut when the meter then ignores a fresh
Ident too: see ``OpticalRequest``.)"""
IDLE_SHARE = 0.75
"""A session quiet for this share of the channel traffic timeout is taken as ended (the meter
drops to its base state after the timeout; being early costs one new session, being late
costs a request lost to an ended session)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OpticalTiming:
    """Timing and retry bounds of one optical client.

    The defaults are C12.18's (see :mod:`mepgate.c1218.constants`).  ``fast()`` is for
    simulators that answer at once: the same rules with shorter waits, so test suites stay
    quick.
    """

    response_timeout: float = RESPONSE_TIMEOUT
    """Time for the meter's ACK of a packet, and for the first packet of its response."""
    inter_character_timeout: float = INTER_CHARACTER_TIMEOUT
    turn_around: float = TURN_AROUND
    channel_traffic_timeout: float = CHANNEL_TRAFFIC_TIMEOUT
    link_retries: int = LINK_RETRIES
    """Resends of one packet (after a NAK or no ACK), and NAKs sent for one missing response
    packet, before the exchange is given up."""
    busy_retries: int = BUSY_RETRIES
    busy_retry_interval: float = BUSY_RETRY_INTERVAL
    exchange_attempts: int = 4
    """Exchanges of one request (each a fresh packet) before the request is given up."""
    session_timeout: float = DEFAULT_SESSION_TIMEOUT
    """The meter's optical session timeout until the meter's own (ET51/ET55) is read."""
    hold_off: float = DEFAULT_HOLD_OFF
    """How long the meter ignores the optical port after that timeout, until read."""

    @classmethod
    def fast(cls) -> OpticalTiming:
        return cls(
            response_timeout=0.1,
            inter_character_timeout=0.05,
            turn_around=0.0,
            busy_retry_interval=0.05,
        )
