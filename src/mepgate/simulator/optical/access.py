"""Who may do what over the optical port: the three keys and the hardware lock.

Optical guide, "Security and Keys": the C12.18 Security password must equal one of the meter's
keys -- the Unique Key (MK, everything), the Provisioning Key (PK, not the security keys, no
firmware download) or the Read-only Key (RK, reads everything but the keys, calibration and
download data).  Each table section adds its own "Read access:" and "Write access:" line;
"Open, key not required" tables (BT00, BT01, ET03) are readable after Logon alone.  The
hardware lock supersedes the keys for the tables and procedures it covers ("Hardware Lock").
Every refusal is "Insufficient Security Clearance" (isc).
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field

from mepgate.proto import ResponseCode
from mepgate.simulator.static_store import MAK_WRITABLE_DEFAULT
from mepgate.tables.ids import TableId

ISC = ResponseCode.NO_PERMISSION
"""C12.18 "isc" (0x03), insufficient security clearance: the same byte as MEP's 0x03."""

BT07_PROCEDURE_INITIATE = 0x0007


class OpticalKey(enum.IntEnum):
    """The level a Security service reached (NONE: logged on, no password yet)."""

    NONE = 0
    RK = 1
    PK = 2
    MK = 3

    def describe(self) -> str:
        return _KEY_TEXT[self]


_KEY_TEXT = {
    OpticalKey.NONE: "no key: only the open tables (BT00, BT01, ET03) can be read",
    OpticalKey.RK: "Read-only Key: reads all but keys, calibration and download data",
    OpticalKey.PK: "Provisioning Key: reads and writes all but the security keys, no download",
    OpticalKey.MK: "Unique Key: every table and procedure the hardware lock leaves open",
}

# "Read access: Open, key not required" (BT00, BT01, ET03 sections).
OPEN_TABLES = frozenset({TableId.BT00, TableId.BT01, TableId.ET03})
# "Read access: MK, PK" (BT04, ET21 and ET51 sections): not for the RK.
NOT_FOR_RK = frozenset({0x0004, TableId.ET21, TableId.ET51})
# "Write access: MK, PK" (ET51) on top of the tables a MEP Advanced Key may write.
OPTICAL_WRITABLE = MAK_WRITABLE_DEFAULT | {TableId.ET51}


@dataclass(frozen=True, slots=True, kw_only=True)
class HardwareLock:
    """The tables and procedures the hardware lock closes, whatever the key.

    The guide leaves the set to the country; the simulator's default locks writing the
    register data (BT23), one of the guide's examples ("writing of register data").
    """

    reads: frozenset[int] = frozenset()
    writes: frozenset[int] = frozenset({TableId.BT23})
    procedures: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class OpticalAccess:
    """The access rules of one meter's optical port.

    ``key_tables``, ``calibration_tables`` and ``download_tables`` name the tables the RK may
    not read (the PK may not read or write ``key_tables``); the simulated meter models none of
    them, so they are empty unless a test adds some.  ``download_procedures`` are the
    firmware-download procedures the PK may not start.
    """

    hardware_lock: HardwareLock = field(default_factory=HardwareLock)
    key_tables: frozenset[int] = frozenset()
    calibration_tables: frozenset[int] = frozenset()
    download_tables: frozenset[int] = frozenset()
    download_procedures: frozenset[int] = frozenset()
    writable: frozenset[int] = OPTICAL_WRITABLE

    def read(self, key: OpticalKey, table_id: int) -> ResponseCode | None:
        """None when ``key`` may read ``table_id``, else the refusal code (isc)."""
        if table_id in self.hardware_lock.reads:
            return ISC
        if table_id in OPEN_TABLES:
            return None
        if key is OpticalKey.NONE:
            return ISC
        if key is OpticalKey.RK and table_id in (
            NOT_FOR_RK | self.key_tables | self.calibration_tables | self.download_tables
        ):
            return ISC
        if key is OpticalKey.PK and table_id in self.key_tables:
            return ISC
        return None

    def write(self, key: OpticalKey, table_id: int) -> ResponseCode | None:
        """None when ``key`` may write ``table_id``, else the refusal code (isc)."""
        if table_id in self.hardware_lock.writes or key in (OpticalKey.NONE, OpticalKey.RK):
            return ISC
        if table_id not in self.writable and table_id not in self.key_tables:
            return ISC  # "Write access: None" (or not listed as writable)
        if key is OpticalKey.PK and table_id in (self.key_tables | self.download_tables):
            return ISC
        return None

    def may_run(self, key: OpticalKey, procedure: int) -> bool:
        """Whether ``key`` may start ``procedure`` (a BT07 write it was allowed to make)."""
        if procedure in self.hardware_lock.procedures:
            return False
        return not (key is OpticalKey.PK and procedure in self.download_procedures)


def key_level(password: bytes, keys: Mapping[OpticalKey, bytes]) -> OpticalKey | None:
    """The highest level whose key equals the 20-byte ``password``; None when none does."""
    for level in (OpticalKey.MK, OpticalKey.PK, OpticalKey.RK):
        key = keys.get(level)
        if key is not None and hmac.compare_digest(key, password):
            return level
    return None
