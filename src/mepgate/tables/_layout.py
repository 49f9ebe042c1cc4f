"""A tiny declarative layout language for C12.19 tables.

A :class:`Layout` lists a table's fields in order, each with a :class:`Kind` (its wire type).
Offsets follow from the kinds' sizes, so a test can compare ``layout.offset_of(name)`` with the
offset printed in the MEP guide.  The same declaration drives :meth:`Layout.decode` (bytes ->
frozen dataclass) and :meth:`Layout.encode` (dataclass -> bytes), so the client's decoders and the
simulator's encoders cannot drift apart.

Wire rules (MEP guide, chapter 4 "Data Types"):

* multi-byte numbers in table data are LSB first (BT00 "Data Order" = 0);
* ``BOOL(x)`` / ``UINT(x..y)`` are bit ranges of a little-endian integer, bit 0 = LSBit;
* ``SET(n)`` is a bit set, element ``i`` at bit ``i % 8`` of byte ``i // 8``.

Partial data: firmware generations differ in how many trailing fields a table has, and clients
read table prefixes.  So data may end at any boundary between whole fields once the layout's
*required* prefix is present; every field after that end decodes as ``None`` (an array ends as
a shorter tuple).  Data that ends *inside* a field raises :class:`TruncatedTableError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from mepgate.tables.errors import (
    TableEncodeError,
    TableLengthError,
    TruncatedTableError,
)
from mepgate.tables.timestamps import YEAR_BASE, LTimeDate, STimeDate, TimeOfDay

T = TypeVar("T")


class _Reader:
    """Bytes plus a read position; knows the table name for error messages."""

    __slots__ = ("data", "ended", "hint", "pos", "table")

    def __init__(self, data: bytes, table: str, hint: str) -> None:
        self.data = data
        self.pos = 0
        # Set once a field had no data left: every later field (at any depth) is then absent.
        self.ended = False
        self.table = table
        self.hint = hint

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def exhausted_before(self, kind: Kind) -> bool:
        """Whether ``kind`` (and so everything after it) is absent from the data."""
        if not self.ended and self.remaining == 0 and kind.size > 0:
            self.ended = True
        return self.ended

    def take(self, n: int, path: str) -> bytes:
        if n > self.remaining:
            raise TruncatedTableError(
                f"{self.table}: field {path!r} needs {n} byte(s) at offset {self.pos}, but the "
                f"data ends after {len(self.data)} bytes ({self.remaining} left). "
                f"Re-read the table; if it stays short, {self.hint}."
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk


class Kind:
    """A wire type.  ``size`` is its length in bytes."""

    size: int = 0

    def read(self, r: _Reader, path: str) -> object:
        raise NotImplementedError  # pragma: no cover - abstract

    def write(self, value: object, path: str, out: bytearray) -> bool:
        """Append the encoding of ``value``; return False if it stopped early (partial)."""
        raise NotImplementedError  # pragma: no cover - abstract


def _need_int(value: object, path: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TableEncodeError(f"{path}: expected an integer, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise TableEncodeError(f"{path}: {value} is outside the field's range {lo}..{hi}")
    return value


class UInt(Kind):
    """UINTx, LSB first."""

    def __init__(self, size: int) -> None:
        self.size = size

    def read(self, r: _Reader, path: str) -> int:
        return int.from_bytes(r.take(self.size, path), "little")

    def write(self, value: object, path: str, out: bytearray) -> bool:
        v = _need_int(value, path, 0, (1 << (8 * self.size)) - 1)
        out += v.to_bytes(self.size, "little")
        return True


class Int(Kind):
    """INTx (two's complement), LSB first.  NI_FMAT1/NI_FMAT2 are INT32 on these meters."""

    def __init__(self, size: int) -> None:
        self.size = size

    def read(self, r: _Reader, path: str) -> int:
        return int.from_bytes(r.take(self.size, path), "little", signed=True)

    def write(self, value: object, path: str, out: bytearray) -> bool:
        half = 1 << (8 * self.size - 1)
        v = _need_int(value, path, -half, half - 1)
        out += v.to_bytes(self.size, "little", signed=True)
        return True


class Year(Kind):
    """The two-digit year byte of the date types, exposed as a full year (20yy)."""

    size = 1

    def read(self, r: _Reader, path: str) -> int:
        return YEAR_BASE + r.take(1, path)[0]

    def write(self, value: object, path: str, out: bytearray) -> bool:
        out.append(_need_int(value, path, YEAR_BASE, YEAR_BASE + 255) - YEAR_BASE)
        return True


class Text(Kind):
    """ARRAY[n] OF CHAR: NUL-padded (or NUL-terminated) text, decoded as Latin-1."""

    def __init__(self, size: int) -> None:
        self.size = size

    def read(self, r: _Reader, path: str) -> str:
        return r.take(self.size, path).split(b"\0", 1)[0].decode("latin-1")

    def write(self, value: object, path: str, out: bytearray) -> bool:
        if not isinstance(value, str):
            raise TableEncodeError(f"{path}: expected text, got {type(value).__name__}")
        try:
            raw = value.encode("latin-1")
        except UnicodeEncodeError as exc:
            raise TableEncodeError(f"{path}: {value!r} is not Latin-1 text") from exc
        if len(raw) > self.size or b"\0" in raw:
            raise TableEncodeError(
                f"{path}: {value!r} must be at most {self.size} characters and contain no NUL"
            )
        out += raw.ljust(self.size, b"\0")
        return True


class Raw(Kind):
    """ARRAY[n] OF UINT8 kept as bytes (identifiers, opaque payloads)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def read(self, r: _Reader, path: str) -> bytes:
        return bytes(r.take(self.size, path))

    def write(self, value: object, path: str, out: bytearray) -> bool:
        if not isinstance(value, bytes) or len(value) != self.size:
            raise TableEncodeError(f"{path}: expected exactly {self.size} bytes, got {value!r}")
        out += value
        return True


class Reserved(Kind):
    """Bytes the guide reserves or fills: skipped on decode, written as zeros."""

    def __init__(self, size: int) -> None:
        self.size = size

    def read(self, r: _Reader, path: str) -> None:
        r.take(self.size, path)

    def write(self, value: object, path: str, out: bytearray) -> bool:
        out += bytes(self.size)
        return True


@dataclass(frozen=True, slots=True)
class Part:
    """A bit range ``lo..hi`` (inclusive) of a :class:`Bits` field; ``flag`` parts are bools."""

    name: str
    lo: int
    hi: int
    signed: bool = False

    @property
    def flag(self) -> bool:
        return self.lo == self.hi and not self.signed

    @property
    def width(self) -> int:
        return self.hi - self.lo + 1


def flag(name: str, bit: int) -> Part:
    """A ``BOOL(bit)``."""
    return Part(name, bit, bit)


def bits(name: str, lo: int, hi: int, *, signed: bool = False) -> Part:
    """A ``UINT(lo..hi)`` (or ``INT(lo..hi)`` with ``signed``)."""
    return Part(name, lo, hi, signed)


class Bits(Kind):
    """Bit fields packed in a little-endian integer of ``size`` bytes (unnamed bits are fill)."""

    def __init__(self, size: int, *parts: Part) -> None:
        self.size = size
        self.parts = parts

    def read(self, r: _Reader, path: str) -> dict[str, object]:
        word = int.from_bytes(r.take(self.size, path), "little")
        values: dict[str, object] = {}
        for p in self.parts:
            v = (word >> p.lo) & ((1 << p.width) - 1)
            if p.flag:
                values[p.name] = bool(v)
            elif p.signed and v >> (p.width - 1):
                values[p.name] = v - (1 << p.width)
            else:
                values[p.name] = v
        return values

    def pack(self, values: dict[object, object], path: str) -> bytes:
        word = 0
        for p in self.parts:
            v = values[p.name]
            if p.flag:
                if not isinstance(v, bool):
                    raise TableEncodeError(f"{path}.{p.name}: expected a bool, got {v!r}")
                n = int(v)
            elif p.signed:
                half = 1 << (p.width - 1)
                n = _need_int(v, f"{path}.{p.name}", -half, half - 1) & ((1 << p.width) - 1)
            else:
                n = _need_int(v, f"{path}.{p.name}", 0, (1 << p.width) - 1)
            word |= n << p.lo
        return word.to_bytes(self.size, "little")

    def write(self, value: object, path: str, out: bytearray) -> bool:
        if not isinstance(value, dict):
            raise TableEncodeError(f"{path}: expected a mapping of bit-field values")
        out += self.pack(value, path)
        return True


class BoolSet(Kind):
    """``SET((count + 7) / 8)``: ``count`` flags, element i at bit i%8 of byte i//8."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.size = (count + 7) // 8

    def read(self, r: _Reader, path: str) -> tuple[bool, ...]:
        raw = r.take(self.size, path)
        return tuple(bool(raw[i // 8] >> (i % 8) & 1) for i in range(self.count))

    def write(self, value: object, path: str, out: bytearray) -> bool:
        if not isinstance(value, tuple) or len(value) != self.count:
            raise TableEncodeError(f"{path}: expected a tuple of {self.count} bools")
        raw = bytearray(self.size)
        for i, v in enumerate(value):
            if not isinstance(v, bool):
                raise TableEncodeError(f"{path}[{i}]: expected a bool, got {v!r}")
            raw[i // 8] |= int(v) << (i % 8)
        out += raw
        return True


class Array(Kind):
    """``ARRAY[count] OF kind``.  Data ending between elements yields a shorter tuple."""

    def __init__(self, kind: Kind, count: int) -> None:
        self.kind = kind
        self.count = count
        self.size = kind.size * count

    def read(self, r: _Reader, path: str) -> tuple[object, ...]:
        items: list[object] = []
        for i in range(self.count):
            if r.exhausted_before(self.kind):
                break
            items.append(self.kind.read(r, f"{path}[{i}]"))
        return tuple(items)

    def write(self, value: object, path: str, out: bytearray) -> bool:
        if not isinstance(value, tuple) or len(value) > self.count:
            raise TableEncodeError(f"{path}: expected a tuple of at most {self.count} items")
        for i, item in enumerate(value):
            if not self.kind.write(item, f"{path}[{i}]", out) and i != len(value) - 1:
                raise TableEncodeError(f"{path}[{i}] is partial but is not the last item")
        return len(value) == self.count and (
            not value or not isinstance(self.kind, Layout) or _complete(self.kind, value[-1])
        )


class Records(Kind):
    """Consecutive records of different layouts (e.g. M-Bus vs MEP entries, per-set records).

    Like :class:`Array`, data ending between records yields a shorter tuple.
    """

    def __init__(self, layouts: Sequence[Kind]) -> None:
        self.layouts = tuple(layouts)
        self.size = sum(lay.size for lay in self.layouts)

    def read(self, r: _Reader, path: str) -> tuple[object, ...]:
        items: list[object] = []
        for i, lay in enumerate(self.layouts):
            if r.exhausted_before(lay):
                break
            items.append(lay.read(r, f"{path}[{i}]"))
        return tuple(items)

    def write(self, value: object, path: str, out: bytearray) -> bool:
        if not isinstance(value, tuple) or len(value) > len(self.layouts):
            raise TableEncodeError(f"{path}: expected a tuple of at most {len(self.layouts)}")
        complete = True
        for i, (lay, item) in enumerate(zip(self.layouts, value, strict=False)):
            if not complete:
                raise TableEncodeError(f"{path}[{i}] follows a partial record")
            expected = lay.record_type if isinstance(lay, Layout) else object
            if not isinstance(item, expected):
                raise TableEncodeError(
                    f"{path}[{i}]: expected {expected.__name__}, got {type(item).__name__}"
                )
            complete = lay.write(item, f"{path}[{i}]", out)
        return complete and len(value) == len(self.layouts)


def _complete(layout: LayoutInfo, value: object) -> bool:
    return all(getattr(value, n) is not None for n in layout.field_names())


@dataclass(frozen=True, slots=True)
class Field:
    """One named field; a :class:`Bits` or :class:`Reserved` field needs no name."""

    name: str
    kind: Kind


def fill(size: int) -> Field:
    """Reserved/filler bytes."""
    return Field("", Reserved(size))


def packed(size: int, *parts: Part) -> Field:
    """A byte (or word) of bit fields."""
    return Field("", Bits(size, *parts))


class LayoutInfo(Kind):
    """The shape of a layout, independent of the record type it builds (see :class:`Layout`)."""

    name: str
    fields: tuple[Field, ...]
    factory: Callable[..., object]
    min_size: int
    _offsets: dict[str, int]

    def field_names(self) -> tuple[str, ...]:
        return tuple(self._offsets)

    def offset_of(self, name: str) -> int:
        """Byte offset of field ``name`` (a bit field reports its byte)."""
        return self._offsets[name]


class Layout(LayoutInfo, Generic[T]):
    """An ordered record of fields decoded into (and encoded from) a frozen dataclass.

    ``required``: how many leading fields every valid table has (``None`` = all); the data may
    end after any later field.  ``atomic`` layouts (date/time types) are never partial.
    ``exact``: data longer than the layout is an error (dimensioned tables: the dimension tables
    are stale), otherwise extra bytes from newer firmware are ignored.
    """

    factory: Callable[..., T]

    def __init__(
        self,
        name: str,
        factory: Callable[..., T],
        fields: Sequence[Field],
        *,
        required: int | None = None,
        atomic: bool = False,
        exact: bool = False,
        hint: str = "check the meter firmware generation",
    ) -> None:
        self.name = name
        self.factory = factory
        self.record_type: type = factory if isinstance(factory, type) else object
        self.fields = tuple(fields)
        self.atomic = atomic
        self.exact = exact
        self.hint = hint
        self.size = sum(f.kind.size for f in self.fields)
        n_req = len(self.fields) if required is None else required
        self.min_size = sum(f.kind.size for f in self.fields[:n_req])
        self._offsets: dict[str, int] = {}
        pos = 0
        for f in self.fields:
            for name_ in _names(f):
                self._offsets[name_] = pos
            pos += f.kind.size

    # -- decoding ---------------------------------------------------------------------------
    def read(self, r: _Reader, path: str) -> T:
        if self.atomic and r.remaining < self.size:
            r.take(self.size, path)  # raises TruncatedTableError with the full story
        values: dict[str, object] = {}
        for f in self.fields:
            if r.exhausted_before(f.kind):
                for name_ in _names(f):
                    values[name_] = None
                continue
            sub = f"{path}.{f.name}" if f.name else path
            if isinstance(f.kind, Bits):
                values.update(f.kind.read(r, sub))
            elif f.name:
                values[f.name] = f.kind.read(r, sub)
            else:
                f.kind.read(r, sub)
        return self.factory(**values)

    def decode(self, data: bytes) -> T:
        """Decode a whole table (or a prefix of it, see the module docstring)."""
        data = bytes(data)
        r = _Reader(data, self.name, self.hint)
        if len(data) < self.min_size:
            raise TruncatedTableError(
                f"{self.name}: expected at least {self.min_size} bytes (the fields every "
                f"firmware has), received {len(data)}. Re-read the table; if it stays short, "
                f"{self.hint}."
            )
        value = self.read(r, self.name)
        if self.exact and r.remaining:
            raise TableLengthError(
                f"{self.name}: expected at most {self.size} bytes for the current dimensions, "
                f"received {len(data)}. The meter's configuration has probably changed: "
                f"{self.hint}, then read {self.name} again."
            )
        return value

    # -- encoding ---------------------------------------------------------------------------
    def write(self, value: object, path: str, out: bytearray) -> bool:
        stopped: str | None = None
        for i, f in enumerate(self.fields):
            names = _names(f)
            if not names and stopped is None and self._unset_after(value, i):
                stopped = f"filler at offset {self._field_offset(i)}"  # table ends here
                continue
            present = [n for n in names if getattr(value, n) is not None]
            if stopped is not None:
                if present:
                    raise TableEncodeError(
                        f"{path}.{present[0]} is set but earlier field {stopped} is missing: "
                        "only trailing fields may be left out"
                    )
                continue
            if names and len(present) < len(names):
                if present:
                    raise TableEncodeError(f"{path}: set all bit fields of a byte, or none")
                stopped = names[0]
                continue
            sub = f"{path}.{f.name}" if f.name else path
            if isinstance(f.kind, Bits):
                f.kind.write({n: getattr(value, n) for n in names}, sub, out)
            elif not f.kind.write(getattr(value, f.name) if f.name else None, sub, out):
                stopped = f.name
        return stopped is None

    def _unset_after(self, value: object, index: int) -> bool:
        """Whether fields follow ``index`` and all are unset (the table ends before them)."""
        later = [getattr(value, n) for f in self.fields[index + 1 :] for n in _names(f)]
        return bool(later) and all(v is None for v in later)

    def _field_offset(self, index: int) -> int:
        return sum(f.kind.size for f in self.fields[:index])

    def encode(self, value: T) -> bytes:
        """Encode ``value``; trailing ``None`` fields are left out (an older, shorter table)."""
        out = bytearray()
        self.write(value, self.name, out)
        return bytes(out)


def list_table(name: str, factory: Callable[..., T], items: Field, *, hint: str) -> Layout[T]:
    """A dimensioned table that is one list (an :class:`Array` or :class:`Records` field).

    Data may end after any whole item (a partial read, or fewer entries than the dimensions
    allow); data longer than the dimensions allow raises :class:`TableLengthError`.
    """
    return Layout(name, factory, [items], required=0, exact=True, hint=hint)


def _names(f: Field) -> tuple[str, ...]:
    if isinstance(f.kind, Bits):
        return tuple(p.name for p in f.kind.parts)
    return (f.name,) if f.name else ()


# -- common wire types (MEP guide, chapter 4 "Data Types") ------------------------------------
U8, U16, U32 = UInt(1), UInt(2), UInt(4)
I16, I32 = Int(2), Int(4)
#: NI_FMAT1 / NI_FMAT2 are "defined to be INT32 for this MEP server" (BT00 "Non-integer Format").
NI_FMAT1 = I32
NI_FMAT2 = I32

TIME: Layout[TimeOfDay] = Layout(
    "TIME",
    TimeOfDay,
    [Field("hour", U8), Field("minute", U8), Field("second", U8)],
    atomic=True,
)
STIME_DATE: Layout[STimeDate] = Layout(
    "STIME_DATE",
    STimeDate,
    [
        Field("year", Year()),
        Field("month", U8),
        Field("day", U8),
        Field("hour", U8),
        Field("minute", U8),
    ],
    atomic=True,
)
LTIME_DATE: Layout[LTimeDate] = Layout(
    "LTIME_DATE",
    LTimeDate,
    [
        Field("year", Year()),
        Field("month", U8),
        Field("day", U8),
        Field("hour", U8),
        Field("minute", U8),
        Field("second", U8),
    ],
    atomic=True,
)
