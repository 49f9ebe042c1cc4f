"""The MEP authentication digest (MEP guide, appendix A "Authentication Digest").

The digest is a keyed, bit-serial mixing function with an 8-byte running value.  Each key
byte contributes its bits one at a time (least significant first); each bit step folds in one
message byte.  After the message runs out, ``end=True`` pads with zero bytes until the pass
over the key (1.5 times the key length: bytes 0..23 of a 16-byte key) is complete.

The state (running value, key-byte index ``i``, bit position ``j``) can be carried across
calls.  That is how a response is verified: the request (message + sequence number) is fed
with ``end=False`` and the state kept; the response message is then fed with ``end=True``.

Note, faithful to the reference: a request whose message + sequence number is an exact
multiple of 192 bytes (24 key bytes x 8 bits) gets no zero padding when digested in one call
with ``end=True``, but a full zero pass when digested as ``end=False`` followed by an empty
``end=True`` call.  We always digest a request in one call, as the guide's "method 2" does.
"""

from __future__ import annotations

from dataclasses import dataclass

from mepgate.errors import LocalProtocolError
from mepgate.proto.constants import DIGEST_SIZE

KEY_BYTES_USED = 16
"""Only the first 16 bytes of a (20-byte) MEP key take part (MEP guide, "Access Levels")."""

_ITERATIONS = KEY_BYTES_USED + KEY_BYTES_USED // 2  # the key is walked 1.5 times per pass


def _mix(value: bytearray, v: int, last: int, m: int, key_bit: int) -> int:
    """One bit step of the appendix A mixing function on position ``v``; returns new ``last``."""
    n = ~(value[v] + v) & 0xFF
    if key_bit:
        term = ((n << 1) | (n >> 7)) & 0xFF  # rotate left by one
    else:
        term = -(((n >> 1) | (n << 7)) & 0xFF)  # minus (rotate right by one)
    new = (last + m + term) & 0xFF
    value[v] = new
    return new


@dataclass(frozen=True, slots=True)
class DigestState:
    """An immutable snapshot of the digest computation; ``update`` returns a new one.

    ``value`` is the 8-byte running digest; ``i`` and ``j`` are the position in the key
    (byte index within the 1.5-pass, and bit offset within that byte).
    """

    value: bytes = bytes(DIGEST_SIZE)
    i: int = 0
    j: int = 0

    def update(self, key: bytes, data: bytes, *, end: bool) -> DigestState:
        """Feed ``data``; with ``end=True`` finish the pass so ``value`` is the digest."""
        k = key16(key)
        value = bytearray(self.value)
        i, j = self.i, self.j
        idx, remaining = 0, len(data)
        while True:
            while True:
                key_byte = k[i % KEY_BYTES_USED] >> j
                last = value[(8 - j) & 7]
                v = 7 - j
                while True:
                    if remaining:
                        m = data[idx]
                        idx += 1
                        remaining -= 1
                    elif end:
                        m = 0
                    else:
                        # Out of data but not the end: stop here, mid key byte.
                        return DigestState(value=bytes(value), i=i, j=7 - v)
                    last = _mix(value, v, last, m, key_byte & 1)
                    key_byte >>= 1
                    if v == 0:
                        break
                    v -= 1
                j = 0
                i += 1
                if i >= _ITERATIONS:
                    break
            i = 0
            if remaining == 0:
                return DigestState(value=bytes(value), i=i, j=j)


def key16(key: bytes) -> bytes:
    if len(key) < KEY_BYTES_USED:
        raise LocalProtocolError(
            f"a MEP key must have at least {KEY_BYTES_USED} bytes, this one has {len(key)}; "
            "enter the key exactly as the grid company sent it (see mepgate.proto.parse_key)"
        )
    return key[:KEY_BYTES_USED]


def digest(key: bytes, data: bytes) -> bytes:
    """The 8-byte MEP digest of ``data`` under the first 16 bytes of ``key``."""
    return DigestState().update(key, data, end=True).value


def request_digest(key: bytes, request_body: bytes) -> tuple[bytes, DigestState]:
    """A request's digest and the state kept to verify its response, in one pass.

    ``request_body`` is the plain message + sequence number.  The digest equals
    :func:`digest` of the same bytes: when the body fills whole passes over the key, a
    one-call digest adds no zero padding, so neither do we.
    """
    state = DigestState().update(key, request_body, end=False)
    if request_body and state.i == 0 and state.j == 0:
        return state.value, state
    return state.update(key, b"", end=True).value, state
