"""Just enough TLS record parsing to check framing and to read plaintext handshake details.

We never decrypt here; python-mbedtls does the cryptography.  This module only looks at record
headers (RFC 5246, section 6.2.1) and at the few messages that travel in the clear before
ChangeCipherSpec: alerts (section 7.2) and the PSK ClientKeyExchange (RFC 4279, section 2).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from mepgate.tls.errors import TlsError

HEADER_LENGTH: Final = 5
# Record content types (RFC 5246, section 6.2.1) read in the clear.
ALERT: Final = 0x15
HANDSHAKE: Final = 0x16
_CLIENT_KEY_EXCHANGE: Final = 0x10

#: Bytes a TLS_PSK_WITH_AES_256_GCM_SHA384 record adds to its plaintext: 5-byte header,
#: 8-byte explicit nonce, 16-byte GCM tag (RFC 5288, section 3).  The guide's TLS Example 2
#: shows it: an 8-byte C12.18 request travels as a record with a 0x20-byte body.
RECORD_OVERHEAD: Final = HEADER_LENGTH + 8 + 16

ALERT_NAMES: Final = {
    0: "close_notify",
    10: "unexpected_message",
    20: "bad_record_mac",
    40: "handshake_failure",
    47: "illegal_parameter",
    50: "decode_error",
    51: "decrypt_error",
    70: "protocol_version",
    80: "internal_error",
    115: "unknown_psk_identity",
}


@dataclass(frozen=True, slots=True)
class Record:
    content_type: int
    body: bytes


def iter_records(data: bytes) -> Iterator[Record]:
    """Yield the complete records at the start of ``data``; ignore a trailing partial one."""
    pos = 0
    while len(data) - pos >= HEADER_LENGTH:
        length = int.from_bytes(data[pos + 3 : pos + 5], "big")
        end = pos + HEADER_LENGTH + length
        if end > len(data):
            return
        yield Record(data[pos], data[pos + HEADER_LENGTH : end])
        pos = end


def check_whole_records(data: bytes) -> None:
    """Raise :class:`TlsError` unless ``data`` is a non-empty run of complete records."""
    if not data:
        raise TlsError("expected at least one TLS record, got no bytes")
    total = sum(HEADER_LENGTH + len(record.body) for record in iter_records(data))
    if total != len(data):
        raise TlsError(
            f"TLS data ends in a truncated record ({len(data) - total} stray bytes after "
            f"{total} bytes of whole records)"
        )


def plaintext_alert(data: bytes) -> int | None:
    """Return the description of the first unencrypted alert in ``data``, if any.

    Before ChangeCipherSpec an alert record has a 2-byte body (level, description); once
    encrypted it is longer, so its description is not readable here.
    """
    for record in iter_records(data):
        if record.content_type == ALERT and len(record.body) == 2:
            return record.body[1]
    return None


def client_psk_identity(data: bytes) -> bytes | None:
    """Return the PSK identity of a ClientKeyExchange found in ``data``, if any."""
    for record in iter_records(data):
        body = record.body
        if record.content_type != HANDSHAKE or len(body) < 6 or body[0] != _CLIENT_KEY_EXCHANGE:
            continue
        length = int.from_bytes(body[4:6], "big")
        if 6 + length <= len(body):
            return body[6 : 6 + length]
    return None


def alert_name(description: int) -> str:
    return ALERT_NAMES.get(description, f"alert {description}")
