"""Sequence numbers against replay (MEP guide, "RC4 Authentication").

The client adds one after every request it sends, retries included.  The server accepts a
number 1..8 ahead of the last one it accepted (so a few lost requests do not matter) and
answers anything else -- a repeat, a number behind, or too far ahead -- with 0x0C carrying
the number to continue from.  In the guide's example 1 the client then sends that number
plus one; a number one past the last accepted is inside the window either way.
"""

from __future__ import annotations

from dataclasses import dataclass

from mepgate.proto.errors import LocalProtocolError
from mepgate.proto.frames import SEQUENCE_MODULO

WINDOW = 8
"""How far ahead of the last accepted number the server still accepts (MEP guide)."""

RECONFIGURATION_STEP = 25
"""How far a meter advances its sequence number when its tables are re-dimensioned
(MEP guide, "Dynamic Sizing of Tables")."""


def _check(value: int) -> int:
    if not 0 <= value < SEQUENCE_MODULO:
        raise LocalProtocolError(f"a sequence number has 32 bits, got {value}")
    return value


class ClientSequence:
    """The client's counter.  Start it anywhere; a 0x0C reply tells the right number."""

    __slots__ = ("_last",)

    def __init__(self, start: int = 0) -> None:
        self._last = (_check(start) - 1) % SEQUENCE_MODULO

    def take(self) -> int:
        """The number for the next request sent (a resend counts as a request)."""
        self._last = (self._last + 1) % SEQUENCE_MODULO
        return self._last

    def adopt(self, number: int) -> None:
        """Continue after ``number``, as a 0x0C reply asks; the next request uses number + 1."""
        self._last = _check(number)

    @property
    def last(self) -> int:
        return self._last


@dataclass(slots=True)
class SequenceWindow:
    """The server's view: the last accepted number, and the acceptance rule."""

    last_accepted: int

    def __post_init__(self) -> None:
        _check(self.last_accepted)

    def accepts(self, number: int) -> bool:
        return 1 <= (number - self.last_accepted) % SEQUENCE_MODULO <= WINDOW

    def accept(self, number: int) -> bool:
        """Accept ``number`` if inside the window (and remember it); False means reply 0x0C."""
        if not self.accepts(number):
            return False
        self.last_accepted = number
        return True

    @property
    def expected(self) -> int:
        """The number a 0x0C reply carries: the one to continue from."""
        return (self.last_accepted + 1) % SEQUENCE_MODULO

    def advance(self, step: int) -> None:
        """Jump ahead, as a meter does on reboot-free reconfiguration."""
        self.last_accepted = (self.last_accepted + step) % SEQUENCE_MODULO
