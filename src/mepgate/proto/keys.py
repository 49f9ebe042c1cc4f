"""MEP keys (MBK / MAK) as grid companies hand them out, and a type that never shows them.

MEP guide, "Access Levels": the keys may be up to 20 bytes long, of which only the first 16
are used.  Grid companies send the MBK as 20 ASCII characters that look like hex but are not
hex; users are sometimes told to drop the last four, so 16 characters are accepted too.
"""

from __future__ import annotations

import string

from mepgate.proto.digest import KEY_BYTES_USED
from mepgate.proto.errors import InvalidKeyError

HANDED_OUT_LENGTH = 20
HEX_PREFIX = "hex:"
_PRINTABLE = frozenset(string.ascii_letters + string.digits + string.punctuation)
_HEXDIGITS = frozenset(string.hexdigits)


class MepKey(bytes):
    """The 16 key bytes in use.  A ``bytes`` whose ``repr``/``str`` never reveal the value."""

    def __repr__(self) -> str:
        return f"MepKey(<{len(self)} bytes hidden>)"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return repr(self)


def parse_key(text: str) -> MepKey:
    """Turn the key as the user typed it into the 16 key bytes in use (a :class:`MepKey`).

    Accepted: 20 characters exactly as sent by the grid company (the last four are not used),
    or the first 16 of them; ``hex:`` followed by 32 or 40 hex digits for a key that really
    is binary.  A bare 40-hex-digit string is refused: that is the 20 characters converted to
    hex, which some guides tell users to do, and it cannot be told apart from a real key.
    """
    entered = text.strip()
    if entered.lower().startswith(HEX_PREFIX):
        return _parse_hex(entered[len(HEX_PREFIX) :].replace(" ", "").replace(":", ""))
    if len(entered) in (2 * HANDED_OUT_LENGTH, 2 * KEY_BYTES_USED) and set(entered) <= _HEXDIGITS:
        raise InvalidKeyError(
            f"this key has {len(entered)} hex digits: it looks like the key converted to hex. "
            f"Enter the {HANDED_OUT_LENGTH} characters exactly as the grid company sent them "
            f"(they look like hex but are not). If your key really is binary, write it as "
            f"'{HEX_PREFIX}' followed by the hex digits."
        )
    if not entered:
        raise InvalidKeyError(
            f"the key is empty; enter the {HANDED_OUT_LENGTH}-character MEP key (MBK) "
            "your grid company sent you"
        )
    if not set(entered) <= _PRINTABLE:
        raise InvalidKeyError(
            "the key contains spaces or characters outside printable ASCII; enter the "
            f"{HANDED_OUT_LENGTH} characters exactly as the grid company sent them"
        )
    if len(entered) not in (HANDED_OUT_LENGTH, KEY_BYTES_USED):
        raise InvalidKeyError(
            f"the key has {len(entered)} characters; a MEP key has {HANDED_OUT_LENGTH} "
            f"(or just the first {KEY_BYTES_USED} of them). Copy it again from the grid "
            "company's letter or file"
        )
    return MepKey(entered.encode("ascii")[:KEY_BYTES_USED])


def _parse_hex(digits: str) -> MepKey:
    if len(digits) not in (2 * KEY_BYTES_USED, 2 * HANDED_OUT_LENGTH) or not (
        set(digits) <= _HEXDIGITS
    ):
        raise InvalidKeyError(
            f"after '{HEX_PREFIX}' a key needs {2 * KEY_BYTES_USED} or "
            f"{2 * HANDED_OUT_LENGTH} hex digits; got {len(digits)} characters"
        )
    return MepKey(bytes.fromhex(digits)[:KEY_BYTES_USED])
