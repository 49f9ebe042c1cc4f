"""Table ids and names.

C12.19 numbers standard ("basic") tables BT0..BT2047 as ids 0..2047 and manufacturer
("extended") tables ETn as 2048 + n (MEP guide, chapter 4: e.g. "ET03 (2051, 0x0803)").  Two
entries of the guide's table of contents disagree with that rule (ET46 printed as 2046/0x07FE,
ET79 as 0x0849); the rule is used, as the section headings of the other tables confirm it.
"""

from __future__ import annotations

import re
from enum import IntEnum

from mepgate.tables.errors import UnknownTableError

#: Manufacturer (extended) tables start here (bit 11 of the 2-byte table id).
MFG_TABLE_BASE = 0x0800
#: Table ids travel as UINT16 in C12.18 requests.
MAX_TABLE_ID = 0xFFFF


class TableId(IntEnum):
    """Tables mepgate knows by name (those in the MEP guide, plus BT03/BT71 it refers to)."""

    BT00 = 0
    BT01 = 1
    BT03 = 3
    BT07 = 7
    BT08 = 8
    BT15 = 15
    BT20 = 20
    BT21 = 21
    BT22 = 22
    BT23 = 23
    BT24 = 24
    BT25 = 25
    BT26 = 26
    BT27 = 27
    BT28 = 28
    BT30 = 30
    BT33 = 33
    BT50 = 50
    BT52 = 52
    BT53 = 53
    BT54 = 54
    BT55 = 55
    BT60 = 60
    BT61 = 61
    BT62 = 62
    BT63 = 63
    BT64 = 64
    BT65 = 65
    BT66 = 66
    BT67 = 67
    BT71 = 71
    BT74 = 74
    ET03 = MFG_TABLE_BASE + 3
    ET04 = MFG_TABLE_BASE + 4
    ET09 = MFG_TABLE_BASE + 9
    ET11 = MFG_TABLE_BASE + 11
    ET13 = MFG_TABLE_BASE + 13
    ET14 = MFG_TABLE_BASE + 14
    ET15 = MFG_TABLE_BASE + 15
    ET16 = MFG_TABLE_BASE + 16
    ET21 = MFG_TABLE_BASE + 21
    ET23 = MFG_TABLE_BASE + 23
    ET29 = MFG_TABLE_BASE + 29
    ET31 = MFG_TABLE_BASE + 31
    ET34 = MFG_TABLE_BASE + 34
    ET36 = MFG_TABLE_BASE + 36
    ET41 = MFG_TABLE_BASE + 41
    ET42 = MFG_TABLE_BASE + 42
    ET45 = MFG_TABLE_BASE + 45
    ET46 = MFG_TABLE_BASE + 46
    ET47 = MFG_TABLE_BASE + 47
    ET50 = MFG_TABLE_BASE + 50
    ET51 = MFG_TABLE_BASE + 51
    ET52 = MFG_TABLE_BASE + 52
    ET53 = MFG_TABLE_BASE + 53
    ET54 = MFG_TABLE_BASE + 54
    ET55 = MFG_TABLE_BASE + 55
    ET57 = MFG_TABLE_BASE + 57
    ET58 = MFG_TABLE_BASE + 58
    ET59 = MFG_TABLE_BASE + 59
    ET61 = MFG_TABLE_BASE + 61
    ET62 = MFG_TABLE_BASE + 62
    ET66 = MFG_TABLE_BASE + 66
    ET70 = MFG_TABLE_BASE + 70
    ET71 = MFG_TABLE_BASE + 71
    ET74 = MFG_TABLE_BASE + 74
    ET75 = MFG_TABLE_BASE + 75
    ET79 = MFG_TABLE_BASE + 79
    ET80 = MFG_TABLE_BASE + 80
    ET81 = MFG_TABLE_BASE + 81
    ET85 = MFG_TABLE_BASE + 85
    ET89 = MFG_TABLE_BASE + 89
    ET90 = MFG_TABLE_BASE + 90
    ET97 = MFG_TABLE_BASE + 97

    def describe(self) -> str:
        """``"BT28 Present Register Data"``: the short name and the guide's title."""
        return f"{self.name} {_TITLES[self]}"


_TITLES: dict[TableId, str] = {
    TableId.BT00: "General Configuration",
    TableId.BT01: "General Manufacturer Information",
    TableId.BT03: "End Device Mode Status",
    TableId.BT07: "Procedure Initiate",
    TableId.BT08: "Procedure Response",
    TableId.BT15: "Constants",
    TableId.BT20: "Dimension Register",
    TableId.BT21: "Actual Register",
    TableId.BT22: "Data Selection",
    TableId.BT23: "Current Register Data",
    TableId.BT24: "Previous Season Data",
    TableId.BT25: "Previous Demand Reset Data",
    TableId.BT26: "Self-Read Data",
    TableId.BT27: "Present Register Selection",
    TableId.BT28: "Present Register Data",
    TableId.BT30: "Dimension Display",
    TableId.BT33: "Primary Display List",
    TableId.BT50: "Dimension Time and TOU",
    TableId.BT52: "UTC Clock",
    TableId.BT53: "Time Offset",
    TableId.BT54: "Calendar",
    TableId.BT55: "Local Clock State",
    TableId.BT60: "Dimension Load Profile",
    TableId.BT61: "Actual Load Profile",
    TableId.BT62: "Load Profile Control",
    TableId.BT63: "Load Profile Status",
    TableId.BT64: "Load Profile Data, Data Set 1",
    TableId.BT65: "Load Profile Data, Data Set 2",
    TableId.BT66: "Load Profile Data, Data Set 3",
    TableId.BT67: "Load Profile Data, Data Set 4",
    TableId.BT71: "Actual Log",
    TableId.BT74: "History Log Data (Primary Event Log)",
    TableId.ET03: "Utility Information",
    TableId.ET04: "System Information",
    TableId.ET09: "Power Quality",
    TableId.ET11: "MFG Dimension Table",
    TableId.ET13: "MEP/M-Bus Device Configuration",
    TableId.ET14: "MEP/M-Bus Device Status",
    TableId.ET15: "MEP/M-Bus On-demand Requests",
    TableId.ET16: "MEP/M-Bus Device Data",
    TableId.ET21: "Load Profile Internal Configuration",
    TableId.ET23: "Miscellaneous Information",
    TableId.ET29: "Hardware Configuration",
    TableId.ET31: "Meter One-time-read Log",
    TableId.ET34: "Additional M-Bus/MEP Device Configuration",
    TableId.ET36: "Manufacturer (Extended) Table Actual Dimensions",
    TableId.ET41: "Historical Demand Reset Log",
    TableId.ET42: "Interface Definition",
    TableId.ET45: "MEP Recurring Read Log",
    TableId.ET46: "Control Output Read-Only Data",
    TableId.ET47: "Calendar Override Settings",
    TableId.ET50: "MEP Inbound Data Space",
    TableId.ET51: "MEP Device Configuration",
    TableId.ET52: "MEP Transaction Request Table",
    TableId.ET53: "MEP Transaction Response Table",
    TableId.ET54: "Meter Status",
    TableId.ET55: "Meter Configuration",
    TableId.ET57: "M-Bus Data Type Table",
    TableId.ET58: "M-Bus/MEP Status Extension",
    TableId.ET59: "MEP Procedure Response",
    TableId.ET61: "Time-Based Relay Control Calendar",
    TableId.ET62: "Load Profile Display Configuration",
    TableId.ET66: "Load Profile Source ID Mapping Table",
    TableId.ET70: "RAM Only Status",
    TableId.ET71: "Delta Data Alerts",
    TableId.ET74: "MEP Recurring Read Extended Log",
    TableId.ET75: "Primary Load Profile Channel Change Log",
    TableId.ET79: "History Log Data (Alternate Event Log)",
    TableId.ET80: "Average Power Settings",
    TableId.ET81: "Power Outage Log",
    TableId.ET85: "MEP Procedure Response (MEP2)",
    TableId.ET89: "Meter LN Status",
    TableId.ET90: "Dimension LN",
    TableId.ET97: "Meter Configuration LN",
}


def table_name(table_id: int) -> str:
    """``"BT28"``, ``"ET13"``, or ``"0xF000"`` for ids outside the BT/ET ranges."""
    if 0 <= table_id < MFG_TABLE_BASE:
        return f"BT{table_id:02d}"
    if MFG_TABLE_BASE <= table_id < 2 * MFG_TABLE_BASE:
        return f"ET{table_id - MFG_TABLE_BASE:02d}"
    return f"0x{table_id:04X}"


def describe(table_id: int) -> str:
    """Human description with the hex id: ``"ET13 MEP/M-Bus Device Configuration (0x080D)"``."""
    try:
        known = TableId(table_id)
    except ValueError:
        return f"{table_name(table_id)} (0x{table_id:04X}, not described in the MEP guide)"
    return f"{known.describe()} (0x{table_id:04X})"


_NAMED = re.compile(r"(BT|ET)\s*(\d{1,4})", re.IGNORECASE)
_HEX = re.compile(r"0x([0-9a-f]{1,4})", re.IGNORECASE)
_DEC = re.compile(r"\d{1,5}")


def parse_table_id(text: str) -> int:
    """Parse ``BT28``, ``bt28``, ``ET13``, ``28``, ``0x001C`` or ``2061`` into a table id."""
    s = text.strip()
    if m := _NAMED.fullmatch(s):
        number = int(m.group(2))
        if number < MFG_TABLE_BASE:
            base = 0 if m.group(1).upper() == "BT" else MFG_TABLE_BASE
            return base + number
    elif m := _HEX.fullmatch(s):
        return int(m.group(1), 16)
    elif _DEC.fullmatch(s) and int(s) <= MAX_TABLE_ID:
        return int(s)
    raise UnknownTableError(
        f"cannot read {text!r} as a table id: use BTn or ETn with n in 0..2047 (e.g. BT28, "
        f"et13), a decimal id 0..{MAX_TABLE_ID} (e.g. 28, 2061) or hex 0x0000..0xFFFF "
        "(e.g. 0x001C)"
    )
