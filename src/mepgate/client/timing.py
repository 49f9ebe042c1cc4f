"""The knobs a MEP client may turn; the rules themselves are :mod:`mepgate.proto.constants`."""

from __future__ import annotations

from dataclasses import dataclass

from mepgate.proto.constants import (
    INTRA_PACKET_TIMEOUT,
    MIN_REQUEST_INTERVAL,
    RESPONSE_TIMEOUT,
    SEGMENT_PAUSE,
)

FRAME_GAP_TIMEOUT = INTRA_PACKET_TIMEOUT + SEGMENT_PAUSE + 0.075
"""Quiet time after which a partial frame is stale: the guide's 50 ms plus a segment pause,
plus slack for USB adapters and TCP bridges that deliver bytes in bursts."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkTiming:
    """Timing and retry bounds of one client.

    The defaults are the guide's.  ``fast()`` is for simulators that answer instantly (no wire
    timing): the same rules with shorter waits, so test suites stay quick.
    """

    response_timeout: float = RESPONSE_TIMEOUT
    min_request_interval: float = MIN_REQUEST_INTERVAL
    frame_gap_timeout: float = FRAME_GAP_TIMEOUT
    min_read_timeout: float = 0.15
    """The shortest response timeout a read's first try may learn from the meter's answers
    (:meth:`mepgate.client.mep.machine.MepLink.read_timeout`; never above
    ``response_timeout``): well over a UART's and a serial server's own delays, and over the
    meter's 100 ms request spacing ("Response timing")."""
    max_silent_sends: int = 6
    """Sends of one request that may go unanswered before the link is declared failed."""
    max_sends: int = 16
    """All sends for one operation (resends, sequence recoveries, damaged replies)."""
    max_sequence_errors: int = 3
    """0x0C replies in a row before blaming another client on the port."""
    max_auth_failures_after_success: int = 5
    """0x0B replies in a row tolerated (as line noise) once the key has worked; before any
    success the second one is final."""

    @classmethod
    def fast(cls) -> LinkTiming:
        return cls(response_timeout=0.08, min_request_interval=0.0, frame_gap_timeout=0.05)
