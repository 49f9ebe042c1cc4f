"""EN 13757-3 application layer: long frames, the variable data structure, data records.

Three ways in, one result (:class:`Telegram`):

* :func:`decode_frame` -- a whole M-Bus long frame ``68 L L 68 C A CI data CS 16`` (length,
  checksum and stop byte checked);
* :func:`decode_application` -- the user data from the CI field on: CI ``0x72`` (12-byte long
  header), ``0x7A`` (4-byte short header) or ``0x78`` (no header), then data records;
* :func:`decode_long_header_data` -- the 12-byte long header and the records without the CI
  byte, as the MEP meter stores an M-Bus billing read in ET16 (MEP guide, ET16 "Billing
  Response": serial number, manufacturer, version, medium, access number, status, signature,
  then the data records and a zero terminator).

Every data record is a DIF (with up to ten DIFEs: storage number, tariff, subunit), a VIF (with
up to ten VIFEs) and the data the DIF's data field codes.  Decoding is total: any bytes give a
:class:`Telegram` or raise :class:`MBusDecodeError` saying where and why; nothing else escapes.
"""

from __future__ import annotations

import datetime as dt
import math
import struct
from dataclasses import dataclass

from mepgate.errors import RemoteProtocolError
from mepgate.mbus import units
from mepgate.mbus.units import ValueInfo

MAX_EXTENSIONS = 10
"""EN 13757-3 allows at most ten DIFEs and ten VIFEs per record."""

CI_LONG_HEADER = 0x72
CI_SHORT_HEADER = 0x7A
CI_NO_HEADER = 0x78
LONG_HEADER_SIZE = 12

#: DIF data field codes (the low nibble) -> (bytes, kind).  0x0D is variable length, 0x0F special.
_DATA_FIELD: dict[int, tuple[int, str]] = {
    0x0: (0, "none"),
    0x1: (1, "int"),
    0x2: (2, "int"),
    0x3: (3, "int"),
    0x4: (4, "int"),
    0x5: (4, "real"),
    0x6: (6, "int"),
    0x7: (8, "int"),
    0x8: (0, "selection"),
    0x9: (1, "bcd"),
    0xA: (2, "bcd"),
    0xB: (3, "bcd"),
    0xC: (4, "bcd"),
    0xE: (6, "bcd"),
}
_FUNCTIONS = ("instantaneous", "maximum", "minimum", "error")

#: EN 13757-3 medium codes (the header's "device type").
MEDIA: dict[int, str] = {
    0x00: "other",
    0x01: "oil",
    0x02: "electricity",
    0x03: "gas",
    0x04: "heat (outlet)",
    0x05: "steam",
    0x06: "warm water",
    0x07: "water",
    0x08: "heat cost allocator",
    0x09: "compressed air",
    0x0A: "cooling (outlet)",
    0x0B: "cooling (inlet)",
    0x0C: "heat (inlet)",
    0x0D: "heat / cooling",
    0x0E: "bus / system component",
    0x0F: "unknown",
    0x15: "hot water",
    0x16: "cold water",
    0x17: "dual register water",
    0x18: "pressure",
    0x19: "A/D converter",
}
_CATEGORY = {
    0x02: "electricity",
    0x03: "gas",
    0x04: "heat",
    0x06: "water",
    0x07: "water",
    0x0A: "heat",
    0x0B: "heat",
    0x0C: "heat",
    0x0D: "heat",
    0x15: "water",
    0x16: "water",
    0x17: "water",
}


class MBusDecodeError(RemoteProtocolError):
    """The bytes are not a decodable EN 13757-3 telegram (the message says where and why)."""


def medium_category(medium: int) -> str:
    """``"gas"``, ``"water"``, ``"heat"``, ``"electricity"`` or ``"other"``."""
    return _CATEGORY.get(medium, "other")


def manufacturer_code(field: int) -> str:
    """The three-letter manufacturer code of the header's 2-byte field (EN 62056-21 / FLAG):
    five bits per letter, ``A`` = 1.  Codes outside A..Z come out as ``?``."""
    letters = ((field >> 10) & 0x1F, (field >> 5) & 0x1F, field & 0x1F)
    return "".join(chr(64 + n) if 1 <= n <= 26 else "?" for n in letters)


def manufacturer_field(code: str) -> int:
    """The 2-byte field of a three-letter manufacturer code (the inverse of the above)."""
    if len(code) != 3 or not all("A" <= c <= "Z" for c in code):
        raise MBusDecodeError(f"manufacturer code {code!r} must be three letters A..Z")
    a, b, c = (ord(ch) - 64 for ch in code)
    return (a << 10) | (b << 5) | c


@dataclass(frozen=True, slots=True)
class Header:
    """The variable data structure's header (long: all fields; short: no identification)."""

    identification: str | None  # 8 BCD digits, as printed on the device
    manufacturer: str | None
    version: int | None
    medium: int | None
    access_number: int
    status: int
    signature: int

    @property
    def medium_name(self) -> str:
        return MEDIA.get(self.medium, f"reserved 0x{self.medium:02X}") if self.medium else "other"

    @property
    def category(self) -> str:
        return medium_category(self.medium if self.medium is not None else 0)


Value = int | float | str | bytes | dt.datetime | dt.date | None


@dataclass(frozen=True, slots=True)
class Record:
    """One data record: its header fields, the raw data and the decoded value.

    ``value`` is the raw number (int or float), text, a date/datetime, bytes (selection,
    unknown), or ``None`` (no data); :attr:`scaled` applies the VIF's exponent.
    """

    dif: int
    difes: tuple[int, ...]
    vif: int | None
    vifes: tuple[int, ...]
    function: str
    storage: int
    tariff: int
    subunit: int
    info: ValueInfo
    data: bytes
    value: Value

    @property
    def quantity(self) -> str:
        return self.info.quantity

    @property
    def unit(self) -> str:
        return self.info.unit

    @property
    def scaled(self) -> float | None:
        """The numeric value in :attr:`unit` (``None`` for non-numeric records)."""
        if isinstance(self.value, bool) or not isinstance(self.value, int | float):
            return None
        exp = self.info.exponent
        if isinstance(self.value, int):
            # Dividing by an exact power of ten rounds once (10834092 / 1000 = 10834.092).
            return self.value / 10**-exp if exp < 0 else float(self.value * 10**exp)
        return self.value * 10.0**exp

    @property
    def is_current(self) -> bool:
        """Storage 0, tariff 0, subunit 0, instantaneous: the device's present value."""
        return (
            self.storage == 0
            and self.tariff == 0
            and self.subunit == 0
            and self.function == "instantaneous"
        )


@dataclass(frozen=True, slots=True)
class Telegram:
    """A decoded response: header, records, manufacturer-specific data kept raw."""

    ci: int
    header: Header | None
    records: tuple[Record, ...]
    manufacturer_data: bytes = b""
    more_follows: bool = False  # DIF 0x1F: the device has more records in the next telegram


# -- entry points -------------------------------------------------------------------------------
def decode_frame(frame: bytes) -> Telegram:
    """Decode a long frame ``68 L L 68 C A CI ... CS 16``."""
    frame = bytes(frame)
    if len(frame) == 1 and frame[0] == 0xE5:
        raise MBusDecodeError("a single character 0xE5 (an acknowledgement), not a data frame")
    if len(frame) < 9:
        raise MBusDecodeError(f"a long frame has at least 9 bytes, got {len(frame)}")
    if frame[0] != 0x68 or frame[3] != 0x68:
        raise MBusDecodeError(f"a long frame starts 68 L L 68, got {frame[:4].hex(' ').upper()}")
    length = frame[1]
    if frame[2] != length:
        raise MBusDecodeError(f"the two length bytes differ ({frame[1]} and {frame[2]})")
    if len(frame) != length + 6:
        raise MBusDecodeError(
            f"the length field says {length} bytes between the starts and the checksum, so "
            f"{length + 6} in all, got {len(frame)}"
        )
    if frame[-1] != 0x16:
        raise MBusDecodeError(f"a long frame ends with the stop byte 16, got {frame[-1]:02X}")
    body = frame[4:-2]
    checksum = sum(body) & 0xFF
    if checksum != frame[-2]:
        raise MBusDecodeError(
            f"checksum {frame[-2]:02X} does not match the frame's bytes ({checksum:02X}): the "
            "frame was damaged on the line"
        )
    if length < 3:
        raise MBusDecodeError("the frame carries no CI field")
    return decode_application(body[2:])


def decode_application(data: bytes) -> Telegram:
    """Decode user data from the CI field on (CI 0x72, 0x7A or 0x78)."""
    data = bytes(data)
    if not data:
        raise MBusDecodeError("no user data: the CI field is missing")
    ci = data[0]
    if ci == CI_LONG_HEADER:
        return _decode_long(data[1:], ci)
    if ci == CI_SHORT_HEADER:
        if len(data) < 5:
            raise MBusDecodeError(f"CI 0x7A needs a 4-byte header, got {len(data) - 1} bytes")
        header = Header(
            identification=None,
            manufacturer=None,
            version=None,
            medium=None,
            access_number=data[1],
            status=data[2],
            signature=int.from_bytes(data[3:5], "little"),
        )
        return _with_records(ci, header, data[5:])
    if ci == CI_NO_HEADER:
        return _with_records(ci, None, data[1:])
    raise MBusDecodeError(
        f"CI field 0x{ci:02X} is not a variable data response (0x72, 0x7A or 0x78); mode 2 "
        "(0x76) and fixed data (0x73) are not decoded"
    )


def decode_long_header_data(data: bytes) -> Telegram:
    """The 12-byte long header and the data records, without the CI byte (ET16's layout)."""
    return _decode_long(bytes(data), CI_LONG_HEADER)


def _decode_long(data: bytes, ci: int) -> Telegram:
    if len(data) < LONG_HEADER_SIZE:
        raise MBusDecodeError(
            f"the long header has {LONG_HEADER_SIZE} bytes, got {len(data)}: the telegram is cut"
        )
    raw_id = data[0:4]
    identification = _bcd_digits(raw_id)
    if identification is None:
        raise MBusDecodeError(f"identification {raw_id.hex(' ').upper()} is not BCD")
    header = Header(
        identification=identification,
        manufacturer=manufacturer_code(int.from_bytes(data[4:6], "little")),
        version=data[6],
        medium=data[7],
        access_number=data[8],
        status=data[9],
        signature=int.from_bytes(data[10:12], "little"),
    )
    return _with_records(ci, header, data[LONG_HEADER_SIZE:])


def _with_records(ci: int, header: Header | None, data: bytes) -> Telegram:
    records, manufacturer, more = decode_records(data)
    return Telegram(
        ci=ci, header=header, records=records, manufacturer_data=manufacturer, more_follows=more
    )


# -- records ----------------------------------------------------------------------------------
def decode_records(data: bytes) -> tuple[tuple[Record, ...], bytes, bool]:
    """Data records up to the end (or a 0x0F/0x1F manufacturer-specific block).

    Returns the records, the manufacturer-specific bytes, and whether more records follow in
    another telegram.  Idle fillers (0x2F) are skipped; a zero byte at the end (ET16's
    terminator) ends the records.
    """
    records: list[Record] = []
    pos = 0
    n = len(data)
    while pos < n:
        dif = data[pos]
        if dif == 0x2F:
            pos += 1
            continue
        if dif in (0x0F, 0x1F):
            return tuple(records), data[pos + 1 :], dif == 0x1F
        if dif == 0x00 and not any(data[pos:]):
            break  # the zero terminator (and padding) after the last record
        if dif & 0x0F == 0x0F:
            raise MBusDecodeError(
                f"record {len(records) + 1} at byte {pos}: DIF 0x{dif:02X} is a reserved "
                "special function"
            )
        record, pos = _decode_record(data, pos, len(records) + 1)
        records.append(record)
    return tuple(records), b"", False


def _decode_record(data: bytes, pos: int, index: int) -> tuple[Record, int]:
    where = f"record {index} at byte {pos}"
    dif = data[pos]
    pos += 1
    difes: list[int] = []
    ext = dif & 0x80
    while ext:
        if pos >= len(data):
            raise MBusDecodeError(f"{where}: the DIF chain is cut")
        if len(difes) == MAX_EXTENSIONS:
            raise MBusDecodeError(f"{where}: more than {MAX_EXTENSIONS} DIFEs")
        difes.append(data[pos])
        ext = data[pos] & 0x80
        pos += 1
    storage = (dif >> 6) & 0x01
    tariff = 0
    subunit = 0
    for i, dife in enumerate(difes):
        storage |= (dife & 0x0F) << (1 + 4 * i)
        tariff |= ((dife >> 4) & 0x03) << (2 * i)
        subunit |= ((dife >> 6) & 0x01) << i
    function = _FUNCTIONS[(dif >> 4) & 0x03]

    if pos >= len(data):
        raise MBusDecodeError(f"{where}: the record has a DIF but no VIF")
    vif = data[pos]
    pos += 1
    vifes: list[int] = []
    text_unit = ""
    code = vif & 0x7F
    if code == 0x7C:  # plain-text VIF: VIFEs (if any), then a length and the text, reversed
        pos = _take_vifes(data, pos, vif, vifes, where)
        if pos >= len(data):
            raise MBusDecodeError(f"{where}: the plain-text VIF has no length")
        size = data[pos]
        pos += 1
        if pos + size > len(data):
            raise MBusDecodeError(f"{where}: the plain-text VIF's {size} characters are cut")
        text_unit = data[pos : pos + size][::-1].decode("latin-1")
        pos += size
        info = ValueInfo(text_unit or "plain_text")
    elif vif in (0xFD, 0xFB):
        pos = _take_vifes(data, pos, vif, vifes, where)
        if not vifes:
            raise MBusDecodeError(f"{where}: VIF 0x{vif:02X} needs an extension byte")
        table = units.extension_fd if vif == 0xFD else units.extension_fb
        info = _corrected(table(vifes[0]), vifes[1:])
    else:
        pos = _take_vifes(data, pos, vif, vifes, where)
        info = _corrected(units.primary(vif), vifes)

    size, kind = _DATA_FIELD.get(dif & 0x0F, (0, "variable"))
    if kind == "variable":
        value, raw, pos = _variable(data, pos, where)
    else:
        if pos + size > len(data):
            raise MBusDecodeError(
                f"{where}: DIF 0x{dif:02X} codes {size} data bytes, only {len(data) - pos} left"
            )
        raw = data[pos : pos + size]
        pos += size
        value = _fixed(raw, kind, info, where)
    record = Record(
        dif=dif,
        difes=tuple(difes),
        vif=vif,
        vifes=tuple(vifes),
        function=function,
        storage=storage,
        tariff=tariff,
        subunit=subunit,
        info=info,
        data=raw,
        value=value,
    )
    return record, pos


def _take_vifes(data: bytes, pos: int, vif: int, out: list[int], where: str) -> int:
    ext = vif & 0x80
    while ext:
        if pos >= len(data):
            raise MBusDecodeError(f"{where}: the VIF chain is cut")
        if len(out) == MAX_EXTENSIONS:
            raise MBusDecodeError(f"{where}: more than {MAX_EXTENSIONS} VIFEs")
        out.append(data[pos])
        ext = data[pos] & 0x80
        pos += 1
    return pos


def _corrected(info: ValueInfo, vifes: list[int] | tuple[int, ...]) -> ValueInfo:
    shift = sum(units.correction(v) for v in vifes)
    if not shift:
        return info
    return ValueInfo(info.quantity, info.unit, info.exponent + shift, info.date_type)


def _fixed(raw: bytes, kind: str, info: ValueInfo, where: str) -> Value:
    if kind == "none":
        return None
    if kind == "selection":
        return b""
    if kind == "real":
        number = struct.unpack("<f", raw)[0]
        return float(number) if math.isfinite(number) else None
    if kind == "bcd":
        return _bcd_value(raw, where)
    if info.date_type is not None and len(raw) in (2, 4, 6):
        return _date(raw, where)
    return int.from_bytes(raw, "little", signed=True)


def _variable(data: bytes, pos: int, where: str) -> tuple[Value, bytes, int]:
    if pos >= len(data):
        raise MBusDecodeError(f"{where}: the variable-length data has no LVAR byte")
    lvar = data[pos]
    pos += 1
    if lvar <= 0xBF:
        size, kind = lvar, "text"
    elif 0xC0 <= lvar <= 0xC9:
        size, kind = lvar - 0xC0, "bcd+"
    elif 0xD0 <= lvar <= 0xD9:
        size, kind = lvar - 0xD0, "bcd-"
    elif 0xE0 <= lvar <= 0xEF:
        size, kind = lvar - 0xE0, "int"
    elif 0xF0 <= lvar <= 0xF4:
        size, kind = 4 * (lvar - 0xEC), "int"
    elif lvar == 0xF5:
        size, kind = 6, "int"
    elif lvar == 0xF6:
        size, kind = 8, "int"
    else:
        raise MBusDecodeError(f"{where}: LVAR 0x{lvar:02X} is reserved")
    if pos + size > len(data):
        raise MBusDecodeError(f"{where}: LVAR says {size} bytes, only {len(data) - pos} left")
    raw = data[pos : pos + size]
    pos += size
    if kind == "text":
        return raw[::-1].decode("latin-1"), raw, pos
    if kind in ("bcd+", "bcd-"):
        number = _bcd_value(raw, where) if raw else 0
        if not isinstance(number, int):  # pragma: no cover - _bcd_value returns int
            raise MBusDecodeError(f"{where}: BCD")
        return (-number if kind == "bcd-" else number), raw, pos
    return int.from_bytes(raw, "little", signed=True) if raw else 0, raw, pos


def _bcd_digits(raw: bytes) -> str | None:
    digits = "".join(f"{b:02X}" for b in reversed(raw))
    return digits if digits.isdigit() else None


def _bcd_value(raw: bytes, where: str) -> int:
    """Type A: BCD, LSB first; a high nibble 0xF in the last byte makes it negative."""
    digits = "".join(f"{b:02X}" for b in reversed(raw))
    negative = digits.startswith("F")
    if negative:
        digits = digits[1:]
    if not digits.isdigit():
        raise MBusDecodeError(f"{where}: {raw.hex(' ').upper()} is not BCD")
    number = int(digits)
    return -number if negative else number


def _date(raw: bytes, where: str) -> dt.date | dt.datetime:
    """Type G (2 bytes: date), F (4 bytes: date and time to the minute), I (6 bytes)."""
    try:
        if len(raw) == 2:  # type G
            return dt.date(_year(raw[0], raw[1]), raw[1] & 0x0F, raw[0] & 0x1F)
        if len(raw) == 4:  # type F
            if raw[0] & 0x80:
                raise MBusDecodeError(f"{where}: the date/time is marked invalid")
            return dt.datetime(
                _year(raw[2], raw[3]), raw[3] & 0x0F, raw[2] & 0x1F, raw[1] & 0x1F, raw[0] & 0x3F
            )
        # type I: seconds, minutes, hours, day (+year low), month (+year high), ...
        if raw[1] & 0x80:
            raise MBusDecodeError(f"{where}: the date/time is marked invalid")
        return dt.datetime(
            _year(raw[3], raw[4]),
            raw[4] & 0x0F,
            raw[3] & 0x1F,
            raw[2] & 0x1F,
            raw[1] & 0x3F,
            raw[0] & 0x3F,
        )
    except ValueError as error:
        raise MBusDecodeError(
            f"{where}: {raw.hex(' ').upper()} is not a valid date ({error})"
        ) from None


def _year(low: int, high: int) -> int:
    return 2000 + (((low & 0xE0) >> 5) | ((high & 0xF0) >> 1))
