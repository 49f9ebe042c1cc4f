"""Procedures: a write to BT07 starts one, BT08 / ET59 / ET85 hold the result.

MEP guide, chapter 4 "Calling Procedures" and "Procedure Header Fields".  BT07 data, LSB
first: procedure number in bits 0..11 of a 16-bit word (standard procedures BPxx are 0..2047,
manufacturer procedures EPxx are 2048 + xx), response handling in bits 12..15, then the
procedure sequence number (PSN), then the procedure's parameters.  The response table holds
the procedure number (bits 0..11), the PSN, a result code and the procedure's output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum

from mepgate.proto.codes import ProcedureResult
from mepgate.proto.errors import LocalProtocolError, MalformedMessageError

MANUFACTURER_BASE = 2048
MAX_PROCEDURE = 0x0FFF
HEADER_SIZE = 3  # number word + PSN
RESPONSE_HEADER_SIZE = 4  # number word + PSN + result

BT07_PROCEDURE_INITIATE = 0x0007
BT08_PROCEDURE_RESPONSE = 0x0008
ET59_MEP_PROCEDURE_RESPONSE = 0x083B

EP16_CHANGE_CLOCK_BY_DELTA = MANUFACTURER_BASE + 16
EP17_REMOVE_MEP_DEVICE = MANUFACTURER_BASE + 17
EP39_POST_MEP_DATA = MANUFACTURER_BASE + 39


class MepPostType(IntEnum):
    """EP39 "Post MEP Data": the first parameter byte, saying what the post is.

    The one definition of these values, for the client and the simulator's meter model.
    MEP guide, "Communication Model" (alert responses) names "Scheduled Read Data",
    "Scheduled Read Data + Alarms" and "Clear M-Bus Alert"; "Delta Data Alerts", step 5, gives
    the only number the guide prints: "Clear Delta Data Alert" type (12).  This edition has no
    EP39 entry in "Tables and Procedures for the MEP Protocol", so the other values (0..4) are
    mepgate's assumption, chosen not to collide with 12; verify them against a real meter or a
    later edition of the guide before relying on them.
    """

    SCHEDULED_READ_DATA = 0  # assumed
    SCHEDULED_READ_DATA_WITH_ALARMS = 1  # assumed
    ON_DEMAND_READ_DATA = 2  # assumed
    ON_DEMAND_READ_DATA_WITH_ALARMS = 3  # assumed
    CLEAR_MBUS_ALERT = 4  # assumed
    CLEAR_DELTA_DATA_ALERT = 12  # MEP guide, "Delta Data Alerts", step 5

    def describe(self) -> str:
        return _POST_TYPE_TEXT[self]


_POST_TYPE_TEXT = {
    MepPostType.SCHEDULED_READ_DATA: "scheduled read data (answers a scheduled read request)",
    MepPostType.SCHEDULED_READ_DATA_WITH_ALARMS: (
        "scheduled read data with alarms (answers a scheduled read request)"
    ),
    MepPostType.ON_DEMAND_READ_DATA: "on-demand read data (answers an ET15 request)",
    MepPostType.ON_DEMAND_READ_DATA_WITH_ALARMS: "on-demand read data with alarms",
    MepPostType.CLEAR_MBUS_ALERT: "clear the M-Bus change alert",
    MepPostType.CLEAR_DELTA_DATA_ALERT: "clear the delta data alert",
}


def ep39_parameters(post: MepPostType, data: bytes = b"") -> bytes:
    """EP39's parameters: the post type byte, then the posted data."""
    return bytes([post]) + data


PSN_FIRST = 5
PSN_LAST = 9
"""A MEP client's procedure sequence numbers lie in 5..9, and consecutive ones differ."""

_NAME = re.compile(r"^\s*(BP|EP)\s*0*(\d{1,4})\s*$", re.IGNORECASE)


def procedure_number(text: str) -> int:
    """``EP39`` -> 2087, ``BP10`` -> 10; also plain numbers and ``0x`` hex."""
    match = _NAME.match(text)
    if match:
        base = MANUFACTURER_BASE if match.group(1).upper() == "EP" else 0
        value = base + int(match.group(2))
    else:
        try:
            value = int(text.strip(), 0)
        except ValueError:
            raise LocalProtocolError(
                f"{text!r} is not a procedure; write it as EP39, BP10, 2087 or 0x0827"
            ) from None
    if not 0 <= value <= MAX_PROCEDURE:
        raise LocalProtocolError(f"procedure numbers are 0..{MAX_PROCEDURE}, got {value}")
    return value


def procedure_name(number: int) -> str:
    if number >= MANUFACTURER_BASE:
        return f"EP{number - MANUFACTURER_BASE:02d}"
    return f"BP{number:02d}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcedureCall:
    """What a client writes to BT07."""

    number: int
    psn: int
    parameters: bytes = b""
    response_handling: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.number <= MAX_PROCEDURE:
            raise LocalProtocolError(f"procedure numbers are 0..{MAX_PROCEDURE}")
        if not 0 <= self.psn <= 0xFF or not 0 <= self.response_handling <= 0xF:
            raise LocalProtocolError("PSN is one byte and response handling four bits")

    def to_bytes(self) -> bytes:
        word = self.number | (self.response_handling << 12)
        return word.to_bytes(2, "little") + bytes([self.psn]) + self.parameters

    @classmethod
    def from_bytes(cls, data: bytes) -> ProcedureCall:
        if len(data) < HEADER_SIZE:
            raise MalformedMessageError(
                f"BT07 write of {len(data)} bytes; a procedure call needs at least {HEADER_SIZE}"
            )
        word = int.from_bytes(data[:2], "little")
        return cls(
            number=word & MAX_PROCEDURE,
            response_handling=word >> 12,
            psn=data[2],
            parameters=data[HEADER_SIZE:],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcedureResponse:
    """What BT08 / ET59 / ET85 hold after a procedure ran."""

    number: int
    psn: int
    result: int
    data: bytes = b""

    def to_bytes(self) -> bytes:
        return (
            (self.number & MAX_PROCEDURE).to_bytes(2, "little")
            + bytes([self.psn, self.result])
            + self.data
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> ProcedureResponse:
        if len(data) < RESPONSE_HEADER_SIZE:
            raise MalformedMessageError(
                f"procedure response of {len(data)} bytes; it needs at least "
                f"{RESPONSE_HEADER_SIZE} (number, PSN, result)"
            )
        return cls(
            number=int.from_bytes(data[:2], "little") & MAX_PROCEDURE,
            psn=data[2],
            result=data[3],
            data=data[RESPONSE_HEADER_SIZE:],
        )

    def answers(self, call: ProcedureCall) -> bool:
        """Whether this is the result of ``call`` (and not of an optical or PLC user's)."""
        return self.number == call.number and self.psn == call.psn

    def describe(self) -> str:
        try:
            return ProcedureResult(self.result).describe()
        except ValueError:
            return f"procedure-specific result code {self.result}"


class ProcedureSequence:
    """The client's PSN: cycles 5..9 so consecutive calls never repeat one."""

    __slots__ = ("_next",)

    def __init__(self, start: int = PSN_FIRST) -> None:
        if not PSN_FIRST <= start <= PSN_LAST:
            raise LocalProtocolError(f"a MEP client's PSN lies in {PSN_FIRST}..{PSN_LAST}")
        self._next = start

    def take(self) -> int:
        psn = self._next
        self._next = PSN_FIRST if psn == PSN_LAST else psn + 1
        return psn
