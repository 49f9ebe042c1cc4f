"""CRC-16/X-25 (also called CRC-16/IBM-SDLC), the C12.18 packet check.

Polynomial 0x1021 reflected (0x8408), input and output reflected, initial value 0xFFFF, final
XOR 0xFFFF; over everything from the ``EE`` to the last data byte, sent low byte first.  The
check value of ASCII ``123456789`` is 0x906E.
"""

from __future__ import annotations

_POLY = 0x8408


def _table() -> tuple[int, ...]:
    rows = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        rows.append(crc)
    return tuple(rows)


_TABLE = _table()


def crc16(data: bytes) -> int:
    """The CRC-16/X-25 of ``data`` as an integer (send it with ``to_bytes(2, "little")``)."""
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFF
