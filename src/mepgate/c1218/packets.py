"""C12.18 link-layer packets: encode, parse, split a message, reassemble it, spot duplicates.

A packet (C12.18 layer 2)::

    EE | identity | ctrl | seq | length (2, MSB first) | data | CRC (2, low byte first)

``ctrl``: 0x80 part of a multi-packet message, 0x40 its first packet, 0x20 the toggle bit (it
flips for each new packet and stays on a resend); the other bits are not used by C12.18 and a
packet that sets them is refused.  In a multi-packet message ``seq`` counts the packets still to
come (0 on the last); a single packet has ``seq`` 0.  The CRC (:func:`~mepgate.c1218.crc.crc16`)
covers everything from ``EE`` to the last data byte.  ACK (0x06) and NAK (0x15) are bare bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mepgate.c1218.constants import (
    CRC_SIZE,
    DEFAULT_PACKETS,
    HEADER_SIZE,
    MAX_DATA_LENGTH,
    MAX_PACKETS,
    MIN_PACKET_SIZE,
    PACKET_OVERHEAD,
)
from mepgate.c1218.crc import crc16
from mepgate.c1218.errors import PacketError, ReassemblyError
from mepgate.errors import LocalProtocolError

STP = 0xEE
"""Start of packet."""
ACK = 0x06
NAK = 0x15

CTRL_MULTI = 0x80
CTRL_FIRST = 0x40
CTRL_TOGGLE = 0x20
_CTRL_USED = CTRL_MULTI | CTRL_FIRST | CTRL_TOGGLE


def ctrl_problem(ctrl: int, seq: int) -> str | None:
    """Why a control byte and sequence number cannot head a C12.18 packet, or ``None``."""
    if ctrl & ~_CTRL_USED & 0xFF:
        return f"control byte 0x{ctrl:02X} sets bits C12.18 does not use"
    if ctrl & CTRL_FIRST and not ctrl & CTRL_MULTI:
        return f"control byte 0x{ctrl:02X} marks a first packet outside a multi-packet message"
    if not ctrl & CTRL_MULTI and seq:
        return f"a single packet with sequence number {seq} (expected 0)"
    return None


@dataclass(frozen=True, slots=True)
class Packet:
    """One C12.18 packet; ``data`` is its share of the message."""

    data: bytes
    toggle: bool
    first: bool = False
    multi: bool = False
    seq: int = 0
    identity: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.seq <= 0xFF or not 0 <= self.identity <= 0xFF:
            raise LocalProtocolError(
                f"sequence number ({self.seq}) and identity ({self.identity}) must be 0..255"
            )
        if len(self.data) > MAX_DATA_LENGTH:
            raise LocalProtocolError(f"a packet carries at most {MAX_DATA_LENGTH} data bytes")
        problem = ctrl_problem(self.ctrl, self.seq)
        if problem:
            raise LocalProtocolError(problem)

    @property
    def ctrl(self) -> int:
        return (
            (CTRL_MULTI if self.multi else 0)
            | (CTRL_FIRST if self.first else 0)
            | (CTRL_TOGGLE if self.toggle else 0)
        )

    @property
    def last(self) -> bool:
        """Whether this packet ends its message (a single packet, or ``seq`` 0)."""
        return self.seq == 0

    @property
    def crc(self) -> int:
        return crc16(self._head_and_data())

    def _head_and_data(self) -> bytes:
        return (
            bytes([STP, self.identity, self.ctrl, self.seq])
            + len(self.data).to_bytes(2, "big")
            + self.data
        )

    def to_bytes(self) -> bytes:
        body = self._head_and_data()
        return body + crc16(body).to_bytes(CRC_SIZE, "little")

    @classmethod
    def parse(cls, raw: bytes) -> Packet:
        """The packet in ``raw`` (exactly one packet's bytes); :class:`PacketError` if they
        are not one, the CRC included."""
        if len(raw) < HEADER_SIZE + CRC_SIZE:
            raise PacketError(f"{len(raw)} bytes are too short for a C12.18 packet (8 at least)")
        if raw[0] != STP:
            raise PacketError(f"a C12.18 packet starts with 0xEE, not 0x{raw[0]:02X}")
        length = int.from_bytes(raw[4:6], "big")
        if len(raw) != PACKET_OVERHEAD + length:
            raise PacketError(
                f"the packet's length field says {length} data bytes but it carries "
                f"{len(raw) - PACKET_OVERHEAD}"
            )
        problem = ctrl_problem(raw[2], raw[3])
        if problem:
            raise PacketError(problem)
        received = int.from_bytes(raw[-CRC_SIZE:], "little")
        computed = crc16(raw[:-CRC_SIZE])
        if received != computed:
            raise PacketError(
                f"CRC mismatch: the packet carries 0x{received:04X}, its bytes give "
                f"0x{computed:04X} (damaged on the line)"
            )
        ctrl = raw[2]
        return cls(
            data=bytes(raw[HEADER_SIZE:-CRC_SIZE]),
            toggle=bool(ctrl & CTRL_TOGGLE),
            first=bool(ctrl & CTRL_FIRST),
            multi=bool(ctrl & CTRL_MULTI),
            seq=raw[3],
            identity=raw[1],
        )


def data_per_packet(packet_size: int) -> int:
    """Message bytes one packet of ``packet_size`` (header and CRC included) carries."""
    if packet_size < MIN_PACKET_SIZE:
        raise LocalProtocolError(
            f"packet size {packet_size} cannot carry data: the packet's header and CRC take "
            f"{PACKET_OVERHEAD} bytes, so the smallest size is {MIN_PACKET_SIZE}"
        )
    return min(packet_size - PACKET_OVERHEAD, MAX_DATA_LENGTH)


def packets_needed(length: int, packet_size: int) -> int:
    """How many packets of ``packet_size`` a message of ``length`` bytes takes (at least 1)."""
    per = data_per_packet(packet_size)
    return max(1, -(-length // per))


def message_capacity(packet_size: int, packets: int) -> int:
    """The longest message ``packets`` packets of ``packet_size`` carry."""
    return data_per_packet(packet_size) * packets


def split(
    message: bytes, packet_size: int, toggle: bool, *, packets: int = MAX_PACKETS
) -> list[Packet]:
    """Cut ``message`` into packets of at most ``packet_size`` bytes (header and CRC included).

    The first packet carries ``toggle`` and each next one flips it; the packet after the last
    one (the next message) carries ``not packets[-1].toggle``.  One packet when the message
    fits, otherwise a multi-packet message (first ``C0``, then ``80``; ``seq`` counts down to
    0).  ``packets`` is the negotiated packet count (at most 255, what Negotiate can grant): a
    longer message is refused with :class:`LocalProtocolError`.
    """
    per = data_per_packet(packet_size)
    count = packets_needed(len(message), packet_size)
    limit = min(packets, MAX_PACKETS)
    if count > limit:
        raise LocalProtocolError(
            f"a {len(message)}-byte message needs {count} packets of {packet_size} bytes; "
            f"at most {limit} may be sent (negotiate larger packets or read in parts)"
        )
    if count == 1:
        return [Packet(message, toggle)]
    return [
        Packet(
            message[index * per : (index + 1) * per],
            toggle ^ bool(index & 1),
            first=index == 0,
            multi=True,
            seq=count - 1 - index,
        )
        for index in range(count)
    ]


class Reassembler:
    """Joins the packets of one message, checking their order against the control bits.

    Give it each good, non-duplicate packet (:class:`DuplicateFilter` first); :meth:`add`
    returns the whole message when its last packet arrives, else ``None``.  ``packets`` is the
    negotiated packet count: a multi-packet message announcing more is refused at its first
    packet.  On :class:`ReassemblyError` the partial message is dropped and the reassembler is
    ready for the next one.  A new first packet while a message is incomplete starts over (the
    sender abandoned the old one).
    """

    def __init__(self, packets: int = DEFAULT_PACKETS) -> None:
        self.packets = packets
        self._parts: list[bytes] = []
        self._expected: int | None = None  # seq of the next packet, None when idle

    @property
    def pending(self) -> bool:
        """Whether part of a multi-packet message is held."""
        return self._expected is not None

    @property
    def held(self) -> int:
        """Message bytes held so far."""
        return sum(len(part) for part in self._parts)

    def reset(self) -> None:
        self._parts.clear()
        self._expected = None

    def add(self, packet: Packet) -> bytes | None:
        if not packet.multi:
            if self.pending:
                self.reset()
                raise ReassemblyError(
                    "a single packet arrived in the middle of a multi-packet message; "
                    "the partial message was dropped"
                )
            return packet.data
        if packet.first:
            self.reset()
            if packet.seq + 1 > max(self.packets, 1):
                raise ReassemblyError(
                    f"a message of {packet.seq + 1} packets arrived, but {self.packets} were "
                    "negotiated; negotiate again or ask for less"
                )
            self._expected = packet.seq
        elif self._expected is None:
            raise ReassemblyError(
                "a packet continuing a multi-packet message arrived without its first packet"
            )
        elif packet.seq != self._expected:
            expected = self._expected
            self.reset()
            raise ReassemblyError(
                f"multi-packet message out of order: packet with {packet.seq} still to come "
                f"arrived where {expected} was due; the partial message was dropped"
            )
        self._parts.append(packet.data)
        if packet.seq == 0:
            message = b"".join(self._parts)
            self.reset()
            return message
        self._expected = packet.seq - 1
        return None


@dataclass(slots=True)
class DuplicateFilter:
    """Spots a resent packet: same toggle bit and same CRC as the previous good packet.

    The receiver ACKs every good packet, then asks :meth:`is_duplicate`; a duplicate (its ACK
    was lost, so the sender sent it again) is dropped, not handed to the :class:`Reassembler`
    or answered a second time.  Give it only packets whose CRC was good.  Call :meth:`reset`
    when a session starts afresh (back in the base state), so a new session's first packet is
    never mistaken for the old session's last.
    """

    _last: tuple[bool, int] | None = field(default=None)

    def is_duplicate(self, packet: Packet) -> bool:
        key = (packet.toggle, packet.crc)
        if key == self._last:
            return True
        self._last = key
        return False

    def reset(self) -> None:
        self._last = None
