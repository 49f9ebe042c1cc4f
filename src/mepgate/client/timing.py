"""The MEP port's timing rules as named constants, and the knobs a client may turn.

MEP guide, "MEP Protocol Timing": a 500 ms response timeout counted from the last byte of the
request, resend the *same* packet on timeout, never pause 50 ms inside a packet, the meter
segments long responses into 117-byte pieces with 25 ms pauses, and it takes at most one
request per 100 ms.
"""

from __future__ import annotations

from dataclasses import dataclass

RESPONSE_TIMEOUT = 0.5
"""MEP guide, "Response timeout": from the request's last byte to the reply's length field."""
MIN_REQUEST_INTERVAL = 0.1
"""MEP guide, "Response timing": the meter takes no more than one request every 100 ms."""
INTRA_PACKET_TIMEOUT = 0.05
"""MEP guide, "Intra-packet timing": a sender never pauses this long inside a packet."""
SEGMENT_SIZE = 117
SEGMENT_PAUSE = 0.025
"""MEP guide, "Response timing": 25 ms pause after each 117-byte segment."""
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
