"""Building EN 13757-3 telegrams (the simulator's M-Bus devices; tests).

The inverse of :mod:`mepgate.mbus.telegram` for what a simple meter sends: a long header and
records of BCD or binary integers, and the long frame around them.
"""

from __future__ import annotations

from mepgate.mbus.telegram import MBusDecodeError, manufacturer_field

_BCD_DIF = {2: 0x09, 4: 0x0A, 6: 0x0B, 8: 0x0C, 12: 0x0E}
_INT_DIF = {1: 0x01, 2: 0x02, 3: 0x03, 4: 0x04, 6: 0x06, 8: 0x07}


def bcd(value: int, digits: int) -> bytes:
    """``value`` as ``digits`` BCD digits, least significant byte first (type A)."""
    if value < 0 or value >= 10**digits or digits % 2:
        raise MBusDecodeError(f"{value} does not fit {digits} BCD digits")
    text = f"{value:0{digits}d}"
    return bytes(int(text[i : i + 2], 16) for i in range(digits - 2, -1, -2))


def long_header(
    *,
    identification: int,
    manufacturer: str,
    version: int,
    medium: int,
    access_number: int,
    status: int = 0,
    signature: int = 0,
) -> bytes:
    """The 12-byte long header (CI 0x72's, without the CI byte)."""
    return (
        bcd(identification, 8)
        + manufacturer_field(manufacturer).to_bytes(2, "little")
        + bytes([version & 0xFF, medium & 0xFF, access_number & 0xFF, status & 0xFF])
        + (signature & 0xFFFF).to_bytes(2, "little")
    )


def bcd_record(vif: int, value: int, digits: int = 8, *, storage: int = 0) -> bytes:
    """A record of a BCD value (``digits`` 2, 4, 6, 8 or 12); storage number 0 or 1."""
    if digits not in _BCD_DIF or storage not in (0, 1):
        raise MBusDecodeError(f"no BCD record of {digits} digits / storage {storage}")
    return bytes([_BCD_DIF[digits] | storage << 6, vif]) + bcd(value, digits)


def int_record(vif: int, value: int, size: int = 4) -> bytes:
    """A record of a signed binary integer of ``size`` bytes."""
    if size not in _INT_DIF:
        raise MBusDecodeError(f"no integer record of {size} bytes")
    return bytes([_INT_DIF[size], vif]) + value.to_bytes(size, "little", signed=True)


def long_frame(ci_data: bytes, *, address: int = 1, control: int = 0x08) -> bytes:
    """A long frame ``68 L L 68 C A <ci_data> CS 16`` (RSP_UD by default)."""
    body = bytes([control, address]) + ci_data
    if len(body) > 255:
        raise MBusDecodeError(f"a long frame carries at most 255 bytes, got {len(body)}")
    return bytes([0x68, len(body), len(body), 0x68]) + body + bytes([sum(body) & 0xFF, 0x16])
