"""The M-Bus sub-meters wired to the simulated meter: one to four devices of different media.

Each device has a register that advances with simulated time (a seeded draw per hour of
consumption), and answers the meter's hourly scheduled billing read with a real EN 13757-3
variable-data response (built with :mod:`mepgate.mbus.encode`).  The meter keeps the latest
answer per slot in ET16 and the device's status in ET14 (MEP guide, "Reading M-Bus Scheduled
Read Data"): the gateway reads exactly what a real meter would hold.

A device can stop answering (``stops_at``: simulated time): from then on each scheduled read
is an attempt without an answer -- ET14 says "M-Bus device down" and "failed comms on read",
ET16 keeps the last answer (stale), and the ground truth says it is not responding.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

from mepgate.errors import LocalProtocolError
from mepgate.mbus.encode import bcd_record, int_record, long_header
from mepgate.tables.timestamps import LTimeDate

MBUS_MEDIA = ("gas", "water", "heat", "electricity")
"""What ``--mbus`` accepts, in the order of the slots when nothing else says."""
MAX_MBUS_DEVICES = 4


@dataclass(frozen=True, slots=True)
class _Kind:
    medium: int  # EN 13757-3 medium code
    manufacturer: str
    unit: str  # the unit the ground truth's value is in
    scale: float  # register count x scale = value in unit
    per_hour: tuple[int, ...]  # register counts per simulated hour, drawn uniformly
    start: tuple[int, int]  # initial register range


_KINDS = {
    # Gas: 8-digit BCD litres (VIF 0x13, 10^-3 m³), like a diaphragm meter's pulse module.
    "gas": _Kind(0x03, "ELS", "m³", 1e-3, (0, 0, 20, 60, 150, 400), (1_000_000, 9_000_000)),
    # Water: 8-digit BCD litres plus the value at the last billing date (storage 1).
    "water": _Kind(0x07, "ACW", "m³", 1e-3, (0, 0, 0, 5, 20, 60, 150), (50_000, 900_000)),
    # Heat: 8-digit BCD kWh (VIF 0x06, 10^3 Wh), volume, flow and return temperatures.
    "heat": _Kind(0x04, "SEN", "kWh", 1.0, (0, 1, 2, 3, 5), (1_000, 40_000)),
    # Electricity (a heat pump's own meter): a 32-bit binary Wh register (VIF 0x03).
    "electricity": _Kind(0x02, "ABB", "kWh", 1e-3, (0, 50, 300, 800), (100_000, 9_000_000)),
}


@dataclass(frozen=True, slots=True)
class MBusTruth:
    """A sub-meter's ground truth: what its last answer said, and whether it still answers.

    ``value`` (in ``unit``: m³ or kWh) is the register of the last successful read -- what
    ET16 holds -- and ``read_at`` when that was (UTC); ``register`` the raw count.
    """

    slot: int  # 1..4, as the MEP guide numbers them
    medium: str
    medium_code: int
    identification: str
    manufacturer: str
    unit: str
    value: float
    register: int
    read_at: dt.datetime | None
    responding: bool
    reads: int


@dataclass(slots=True)
class MBusDevice:
    """One device on the M-Bus, in ``slot`` (0-based table index)."""

    slot: int
    medium: str
    identification: int
    register: int
    rng: random.Random
    stops_at: dt.datetime | None = None
    access_number: int = 0
    attempts: int = 0
    answers: int = 0
    reported: int = 0  # the register at the last answered read
    read_at: LTimeDate | None = None
    read_time: dt.datetime | None = None
    answering: bool = True
    telegram: bytes = b""
    last_storage1: int = 0
    _consumed_until: dt.datetime | None = field(default=None)

    @property
    def kind(self) -> _Kind:
        return _KINDS[self.medium]

    @property
    def handle(self) -> int:
        """ET14 "Device Handle": 1..999 are M-Bus devices."""
        return self.slot + 1

    def consume_until(self, when: dt.datetime) -> None:
        """The register follows consumption, one seeded draw per whole simulated hour."""
        hour = when.replace(minute=0, second=0, microsecond=0)
        if self._consumed_until is None:
            self._consumed_until = hour
            return
        while self._consumed_until < hour:
            self.register += self.rng.choice(self.kind.per_hour)
            self._consumed_until += dt.timedelta(hours=1)

    def scheduled_read(self, when: dt.datetime, local: dt.datetime | None = None) -> None:
        """The meter's billing read at UTC ``when`` (``local``: the meter's local time, which
        ET16 stamps): an answer, or (once stopped) an attempt without one."""
        self.consume_until(when)
        self.attempts += 1
        if self.stops_at is not None and when >= self.stops_at:
            self.answering = False
            return
        self.answering = True
        self.answers += 1
        self.access_number = (self.access_number + 1) & 0xFF
        if when.hour == 0 or not self.telegram:  # the billing-date value, once a day
            self.last_storage1 = self.register
        self.reported = self.register
        self.read_time = when
        self.read_at = LTimeDate.from_datetime(local or when)
        self.telegram = self._encode(when)

    def _encode(self, when: dt.datetime) -> bytes:
        """The 12-byte long header, the records, and ET16's zero terminator."""
        kind = self.kind
        header = long_header(
            identification=self.identification,
            manufacturer=kind.manufacturer,
            version=1,
            medium=kind.medium,
            access_number=self.access_number,
        )
        records = _date_time(when)
        if self.medium == "gas":
            records = bcd_record(0x13, self.register % 10**8) + records
            records += bytes([0x01, 0xFD, 0x17, 0x00])  # error flags: none
        elif self.medium == "water":
            records = bcd_record(0x13, self.register % 10**8) + records
            records += bcd_record(0x13, self.last_storage1 % 10**8, storage=1)
        elif self.medium == "heat":
            volume = self.register * 7 // 10  # ~0.07 m³ per kWh, in 10^-2 m³
            records = (
                bcd_record(0x06, self.register % 10**8)
                + bcd_record(0x14, volume % 10**8)
                + bcd_record(0x5A, 550 + self.rng.randrange(100), digits=4)
                + bcd_record(0x5E, 350 + self.rng.randrange(100), digits=4)
                + records
            )
        else:
            records = int_record(0x03, self.register & 0x7FFFFFFF) + records
        return header + records + b"\0"

    def truth(self) -> MBusTruth:
        kind = self.kind
        value = self.reported * kind.scale
        return MBusTruth(
            slot=self.slot + 1,
            medium=self.medium,
            medium_code=kind.medium,
            identification=f"{self.identification:08d}",
            manufacturer=kind.manufacturer,
            unit=kind.unit,
            value=round(value, 9),
            register=self.reported,
            read_at=self.read_time,
            responding=self.answering,
            reads=self.answers,
        )


def _date_time(when: dt.datetime) -> bytes:
    """A type F date/time record (VIF 0x6D) of ``when``."""
    year = when.year - 2000
    raw = bytes(
        [
            when.minute & 0x3F,
            when.hour & 0x1F,
            (when.day & 0x1F) | ((year & 0x07) << 5),
            (when.month & 0x0F) | ((year & 0x78) << 1),
        ]
    )
    return bytes([0x04, 0x6D]) + raw


def parse_mbus(text: str) -> tuple[str, ...]:
    """``"gas,water"`` -> ``("gas", "water")``; ``"none"`` or ``""`` -> no devices."""
    names = tuple(n.strip().lower() for n in text.split(",") if n.strip())
    if names in ((), ("none",)):
        return ()
    unknown = [n for n in names if n not in _KINDS]
    if unknown:
        raise LocalProtocolError(
            f"unknown M-Bus medium {unknown[0]!r}: choose from {', '.join(MBUS_MEDIA)} "
            "(comma-separated, one to four), or none"
        )
    if len(names) > MAX_MBUS_DEVICES:
        raise LocalProtocolError(
            f"a MEP meter has {MAX_MBUS_DEVICES} M-Bus slots, {len(names)} devices given"
        )
    return names


def build_devices(
    media: tuple[str, ...], *, seed: int, stops: dict[int, dt.datetime] | None = None
) -> list[MBusDevice]:
    """Devices in slots 0.. for ``media``; ``stops`` maps a 1-based slot to when it stops."""
    devices = []
    for slot, medium in enumerate(media):
        rng = random.Random(f"{seed}:mbus:{slot}:{medium}")
        low, high = _KINDS[medium].start
        devices.append(
            MBusDevice(
                slot=slot,
                medium=medium,
                identification=rng.randrange(10_000_000, 99_999_999),
                register=rng.randrange(low, high),
                rng=rng,
                stops_at=(stops or {}).get(slot + 1),
            )
        )
    return devices
