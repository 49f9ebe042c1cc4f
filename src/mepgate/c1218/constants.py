"""Every ANSI C12.18 timing and size rule, defined once: the client and the simulator import them.

C12.18 link layer (layer 2) and its defaults as the reference header and the open
implementations agree on them (see docs/architecture.md, "c1218").  Nothing here is a knob: a
client that tunes waits for a simulator does so in its own timing settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

# The UART is 8N1 as on the MEP port: one definition of a byte's time on the wire.
from mepgate.proto.constants import BITS_PER_BYTE, wire_time

__all__ = [
    "BAUD_CODES",
    "BITS_PER_BYTE",
    "BUSY_RETRIES",
    "BUSY_RETRY_INTERVAL",
    "CHANNEL_TRAFFIC_TIMEOUT",
    "CRC_SIZE",
    "DEFAULT_BAUD",
    "DEFAULT_HOLD_OFF",
    "DEFAULT_PACKETS",
    "DEFAULT_PACKET_SIZE",
    "DEFAULT_SESSION_TIMEOUT",
    "HEADER_SIZE",
    "INTER_CHARACTER_TIMEOUT",
    "LINK_RETRIES",
    "MAX_BAUD_CODES",
    "MAX_DATA_LENGTH",
    "MAX_FEED",
    "MAX_PACKETS",
    "MAX_PACKET_SIZE",
    "MIN_PACKET_SIZE",
    "PACKET_OVERHEAD",
    "PASSWORD_SIZE",
    "RESPONSE_TIMEOUT",
    "TURN_AROUND",
    "USER_NAME_SIZE",
    "wire_time",
]

# -- the line ---------------------------------------------------------------------------------
DEFAULT_BAUD = 9600
"""The optical port's rate before (and, on OSGP meters, after) negotiation: 8N1."""

BAUD_CODES: Mapping[int, int] = MappingProxyType(
    {
        0x01: 300,
        0x02: 600,
        0x03: 1200,
        0x04: 2400,
        0x05: 4800,
        0x06: 9600,
        0x07: 14400,
        0x08: 19200,
        0x09: 28800,
        0x0A: 57600,
        # Added by later revisions of the standard.
        0x0B: 38400,
        0x0C: 115200,
        0x0D: 128000,
        0x0E: 256000,
    }
)
"""Negotiate's baud rate codes -> bits per second (C12.18 Negotiate service)."""
MAX_BAUD_CODES = 11
"""A Negotiate request offers at most 11 rates: its service codes run 0x60..0x6B."""


# -- packets ----------------------------------------------------------------------------------
HEADER_SIZE = 6
"""``EE``, identity, control, sequence number and the 2-byte length."""
CRC_SIZE = 2
"""CRC-16/X-25 after the data, low byte first."""
PACKET_OVERHEAD = HEADER_SIZE + CRC_SIZE
"""Bytes of a packet that are not data (8): a negotiated packet size counts them."""
DEFAULT_PACKET_SIZE = 64
"""Packet size, header and CRC included, until a Negotiate says otherwise."""
DEFAULT_PACKETS = 1
"""Packets per message until a Negotiate says otherwise."""
MIN_PACKET_SIZE = PACKET_OVERHEAD + 1
"""The smallest packet size that carries a data byte (9)."""
MAX_PACKET_SIZE = 8192
"""The largest packet size the standard allows; the receive buffer's bound follows it."""
MAX_PACKETS = 255
"""Negotiate's packet count is one byte."""
MAX_DATA_LENGTH = 0xFFFF
"""What a packet's 2-byte length field can say; a receive buffer bounds it by its packet size."""
MAX_FEED = 8192
"""Bytes one feed may add to a drained receive buffer (a serial read returns at most a few
kilobytes): the buffer holds at most one largest packet plus this."""

# -- timing -----------------------------------------------------------------------------------
CHANNEL_TRAFFIC_TIMEOUT = 6.0
"""Seconds without traffic after which the meter drops back to the base state."""
INTER_CHARACTER_TIMEOUT = 0.5
"""A sender never pauses this long inside a packet: a partial packet older is stale."""
RESPONSE_TIMEOUT = 2.0
"""Seconds to wait for the ACK of a packet before sending it again."""
TURN_AROUND = 0.020
"""Pause before answering (the standard asks 175 us; MeteringSDK waits 20 ms)."""
LINK_RETRIES = 3
"""Resends of one packet (after a NAK or a missing ACK) before giving up."""
BUSY_RETRIES = 20
"""Repeats of a request the meter answered busy or data-not-ready ..."""
BUSY_RETRY_INTERVAL = 2.0
"""... this many seconds apart."""

# -- OSGP meters (optical guide, ET51 / ET55 denial-of-service timers) ----------------------
DEFAULT_SESSION_TIMEOUT = 600
"""Seconds an optical session may last before the meter ends it (ET51 offset 4 default)."""
DEFAULT_HOLD_OFF = 300
"""Seconds the meter ignores the optical port after such a timeout (ET51 offset 6 default)."""

# -- services ---------------------------------------------------------------------------------
PASSWORD_SIZE = 20
"""The Security service's password field."""
USER_NAME_SIZE = 10
"""The Logon service's user name field, space padded."""
