"""The sans-IO ANSI C12.18 core (the optical port): bytes in, events out; no I/O, no clock.

* :mod:`~mepgate.c1218.constants` -- every timing and size rule once;
* :mod:`~mepgate.c1218.crc` -- CRC-16/X-25;
* :mod:`~mepgate.c1218.packets` -- packets, splitting to a packet size, reassembly, duplicates;
* :mod:`~mepgate.c1218.buffer` -- the bounded receive buffer (packets, ACK/NAK, noise);
* :mod:`~mepgate.c1218.services` -- the services' requests and responses;
* :mod:`~mepgate.c1218.states` -- the session states as one transition table;
* :mod:`~mepgate.c1218.keys` -- the 20-byte password as users enter it.

Response codes are :class:`mepgate.proto.codes.ResponseCode` (one definition for MEP and
C12.18), worded for the optical port by ``describe_c1218()``.
"""

from mepgate.c1218.buffer import (
    NEED_DATA,
    Acked,
    BadPacket,
    LineEvent,
    Naked,
    PacketBuffer,
    PacketReceived,
    Skipped,
)
from mepgate.c1218.crc import crc16
from mepgate.c1218.errors import (
    ChecksumError,
    MessageError,
    PacketError,
    ReassemblyError,
    ServiceError,
    UnsupportedServiceError,
)
from mepgate.c1218.keys import Password, parse_password
from mepgate.c1218.packets import ACK, NAK, DuplicateFilter, Packet, Reassembler, split
from mepgate.c1218.services import Service, parse_request
from mepgate.c1218.states import TRANSITIONS, SessionState, allowed, next_state

__all__ = [
    "ACK",
    "NAK",
    "NEED_DATA",
    "TRANSITIONS",
    "Acked",
    "BadPacket",
    "ChecksumError",
    "DuplicateFilter",
    "LineEvent",
    "MessageError",
    "Naked",
    "Packet",
    "PacketBuffer",
    "PacketError",
    "PacketReceived",
    "Password",
    "Reassembler",
    "ReassemblyError",
    "Service",
    "ServiceError",
    "SessionState",
    "Skipped",
    "UnsupportedServiceError",
    "allowed",
    "crc16",
    "next_state",
    "parse_password",
    "parse_request",
    "split",
]
