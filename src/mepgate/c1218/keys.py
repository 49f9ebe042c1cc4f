"""The C12.18 password (an OSGP meter's MK, PK or RK) as users enter it; never shown.

Optical guide, "Security": the Security service carries a 20-byte password that must match
one of the meter's keys.  Grid companies hand out the read-only key (RK) as 20 characters;
open readers send those characters as ASCII bytes, one open tool decodes them as hex instead.
Both forms are accepted, but only explicitly: 20 characters are sent as ASCII, and a key that
really is binary is written ``hex:`` followed by 40 hex digits.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Literal

from mepgate.c1218.constants import PASSWORD_SIZE
from mepgate.proto.errors import InvalidKeyError

HEX_PREFIX = "hex:"
_PRINTABLE = frozenset(string.ascii_letters + string.digits + string.punctuation)
_HEXDIGITS = frozenset(string.hexdigits)


@dataclass(frozen=True, slots=True, repr=False)
class Password:
    """The 20 password bytes (``value``); ``repr``/``str`` never reveal them.  ``entered_as``
    tells how the user wrote it, for advice when the meter refuses it."""

    value: bytes
    entered_as: Literal["ascii", "hex"] = field(default="ascii", compare=False)

    def __post_init__(self) -> None:
        if len(self.value) != PASSWORD_SIZE:
            raise InvalidKeyError(
                f"a C12.18 password is {PASSWORD_SIZE} bytes, got {len(self.value)}"
            )

    def __repr__(self) -> str:
        return f"Password(<{PASSWORD_SIZE} bytes hidden, entered as {self.entered_as}>)"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return repr(self)


def parse_password(text: str) -> Password:
    """The password as the user typed it: 20 characters exactly as the grid company sent
    them (sent as ASCII), or ``hex:`` and 40 hex digits (spaces and colons between them are
    ignored).  Anything else raises :class:`InvalidKeyError` saying what to enter instead."""
    entered = text.strip()
    if entered.lower().startswith(HEX_PREFIX):
        digits = entered[len(HEX_PREFIX) :].replace(" ", "").replace(":", "")
        if len(digits) != 2 * PASSWORD_SIZE or not set(digits) <= _HEXDIGITS:
            raise InvalidKeyError(
                f"after '{HEX_PREFIX}' an optical key needs {2 * PASSWORD_SIZE} hex digits "
                f"({PASSWORD_SIZE} bytes); got {len(digits)} characters"
            )
        return Password(bytes.fromhex(digits), "hex")
    if not entered:
        raise InvalidKeyError(
            f"the optical key is empty; enter the {PASSWORD_SIZE}-character key (for reading, "
            "the RK) your grid company sent you"
        )
    if len(entered) == 2 * PASSWORD_SIZE and set(entered) <= _HEXDIGITS:
        raise InvalidKeyError(
            f"this key has {len(entered)} hex digits. If it is the {PASSWORD_SIZE} characters "
            f"converted to hex, enter the {PASSWORD_SIZE} characters instead; if the grid "
            f"company gave it as {2 * PASSWORD_SIZE} hex digits of a binary key, write it as "
            f"'{HEX_PREFIX}' followed by the digits."
        )
    if not set(entered) <= _PRINTABLE:
        raise InvalidKeyError(
            "the optical key contains spaces or characters outside printable ASCII; enter the "
            f"{PASSWORD_SIZE} characters exactly as the grid company sent them"
        )
    if len(entered) != PASSWORD_SIZE:
        raise InvalidKeyError(
            f"the optical key has {len(entered)} characters; it has exactly {PASSWORD_SIZE}. "
            "Copy it again from the grid company's letter or file (a binary key is written "
            f"'{HEX_PREFIX}' followed by {2 * PASSWORD_SIZE} hex digits)"
        )
    return Password(entered.encode("ascii"), "ascii")
