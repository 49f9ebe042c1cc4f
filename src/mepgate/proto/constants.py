"""Every MEP timing and size rule, defined once: the client and the simulator import them.

MEP guide, chapter 2: "MEP Protocol Overview" (sizes), "MEP Protocol Timing" (timeouts,
pacing, segments) and "Alert Sequence"; the UART itself is 8N1 ("MEP Port Baud Rate").
Nothing here is a knob: what a client may tune (shorter waits for a simulator without wire
timing, retry counts) lives in :class:`mepgate.client.LinkTiming`.
"""

from __future__ import annotations

# -- the line ---------------------------------------------------------------------------------
DEFAULT_BAUD = 9600
"""The MEP port's rate unless ET13 was changed (8N1)."""
BITS_PER_BYTE = 10
"""8N1: a start bit, eight data bits, a stop bit."""


def wire_time(size: int, baud: int) -> float:
    """Seconds ``size`` bytes take on a UART at ``baud`` (8N1)."""
    return size * BITS_PER_BYTE / baud


# -- sizes ------------------------------------------------------------------------------------
LENGTH_SIZE = 2
"""A frame starts with its length, 2 bytes MSB first, counting what follows."""
SEQUENCE_SIZE = 4
"""A request's sequence number (RC4 security), MSB first."""
DIGEST_SIZE = 8
"""The authentication digest that ends every RC4-secured frame (appendix A)."""
MAX_MESSAGE = 476
"""Largest request or response after the 2-byte length ("MEP Protocol Overview")."""
MAX_READ_DATA = MAX_MESSAGE - 1 - 2 - DIGEST_SIZE
"""Table bytes one RC4 read reply can carry: its code, the 2-byte count and the digest share
the 476 bytes (465)."""

FRAME_BYTES = LENGTH_SIZE + MAX_MESSAGE
"""The longest frame on the line, its length field included (478)."""

# -- timing -----------------------------------------------------------------------------------
RESPONSE_TIMEOUT = 0.5
"""From a request's last byte to the reply's length field; then the *same* packet is resent."""
MIN_REQUEST_INTERVAL = 0.1
"""The meter serves at most one request per 100 ms ("Response timing")."""
INTRA_PACKET_TIMEOUT = 0.05
"""A sender never pauses this long inside a packet ("Intra-packet timing"): a line quiet that
long mid-frame means the partial frame is stale."""
SEGMENT_SIZE = 117
"""A longer response goes out in 117-byte segments ... ("Response timing")"""
SEGMENT_PAUSE = 0.025
"""... with a 25 ms pause after each segment that more bytes follow."""
ALERT_INTERVAL = 1.0
"""``00 00`` is repeated once per second while an alert condition is pending."""
ALERT_HOLDOFF = 1.0
"""No alert for one second after the meter received a frame ("Alert Sequence timing")."""


def max_frame_time(baud: int) -> float:
    """Seconds the longest frame takes on the line at ``baud``, segment pauses included: no
    reply can take longer once it has started."""
    segments = -(-FRAME_BYTES // SEGMENT_SIZE)
    return wire_time(FRAME_BYTES, baud) + (segments - 1) * SEGMENT_PAUSE
