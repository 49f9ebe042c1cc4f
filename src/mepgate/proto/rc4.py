"""Optional MEP payload encryption (MEP guide, appendix B "Encryption").

The cipher is RC4.  Its per-exchange key is built in two steps:

1. ``encrypt_key``: RC4 keyed with the first 16 bytes of the MEP key (MBK or MAK, whichever
   signed the request), run over a 16-byte constant.
2. The first 8 bytes of that are XORed with the request's digest; RC4 is keyed with the result.

That keystream encrypts the request's message + sequence number, and then -- continuing, not
restarting -- the response message.  Digests are always computed over the plain text.
"""

from __future__ import annotations

from mepgate.errors import LocalProtocolError
from mepgate.proto.constants import DIGEST_SIZE
from mepgate.proto.digest import key16

# MEP guide, appendix B: the constant half of the encryption key.
CONSTANT_KEY = bytes.fromhex("388B8FBC36A8558587AFC90FB23A3B99")


class _Rc4:
    """The RC4 stream cipher: key schedule, then a keystream XORed onto the data."""

    __slots__ = ("_s", "_x", "_y")

    def __init__(self, key: bytes) -> None:
        s = list(range(256))
        j = 0
        for i in range(256):
            j = (j + s[i] + key[i % len(key)]) & 0xFF
            s[i], s[j] = s[j], s[i]
        self._s = s
        self._x = 0
        self._y = 0

    def apply(self, data: bytes) -> bytes:
        s, x, y = self._s, self._x, self._y
        out = bytearray(len(data))
        for n, byte in enumerate(data):
            x = (x + 1) & 0xFF
            y = (y + s[x]) & 0xFF
            s[x], s[y] = s[y], s[x]
            out[n] = byte ^ s[(s[x] + s[y]) & 0xFF]
        self._x, self._y = x, y
        return bytes(out)

    def copy(self) -> _Rc4:
        twin = _Rc4.__new__(_Rc4)
        twin._s, twin._x, twin._y = list(self._s), self._x, self._y
        return twin


def encrypt_key(key: bytes) -> bytes:
    """The 16-byte key derived from a MEP key and the constant (step 1 above)."""
    return _Rc4(key16(key)).apply(CONSTANT_KEY)


class Rc4Stream:
    """The keystream of one exchange: seeded by the request digest, shared by both directions.

    Call :meth:`apply` on the request (message + sequence number) first, then on the response
    message; RC4 is symmetric, so the same calls encrypt and decrypt.
    """

    __slots__ = ("_cipher",)

    def __init__(self, key: bytes, request_digest: bytes) -> None:
        if len(request_digest) != DIGEST_SIZE:
            raise LocalProtocolError(
                f"the RC4 stream is seeded with an {DIGEST_SIZE}-byte request digest, "
                f"got {len(request_digest)} bytes"
            )
        seed = bytearray(encrypt_key(key))
        for n in range(DIGEST_SIZE):
            seed[n] ^= request_digest[n]
        self._cipher = _Rc4(bytes(seed))

    def apply(self, data: bytes) -> bytes:
        """XOR the next ``len(data)`` keystream bytes onto ``data``."""
        return self._cipher.apply(data)

    def copy(self) -> Rc4Stream:
        """An independent stream at the same position (to decrypt a reply more than once)."""
        twin = Rc4Stream.__new__(Rc4Stream)
        twin._cipher = self._cipher.copy()
        return twin

    def __repr__(self) -> str:
        return "Rc4Stream(<keystream hidden>)"
