"""TLS-PSK for the MEP port: a sans-IO engine on top of python-mbedtls.

See :mod:`mepgate.tls.engine` for how the pieces fit and the MEP Client Developer's Guide,
ch. 2 ("Using TLS Security to secure MEP Ports", "PSK Identity Hint") for the requirements.
"""

from __future__ import annotations

from mepgate.tls._records import RECORD_OVERHEAD
from mepgate.tls.engine import (
    CIPHER_SUITE,
    HandshakeProgress,
    SessionState,
    TlsPskClient,
    TlsPskServer,
)
from mepgate.tls.errors import (
    PskIdentityError,
    PskMismatchError,
    TlsAuthenticationError,
    TlsClosedError,
    TlsError,
    TlsHandshakeError,
    UnknownPskIdentityError,
)
from mepgate.tls.identity import (
    DEFAULT_CLIENT_ID,
    IDENTITY_LENGTH,
    PSK_LENGTH,
    KeyId,
    PskIdentity,
    psk_from_mep_key,
)

__all__ = [
    "CIPHER_SUITE",
    "DEFAULT_CLIENT_ID",
    "IDENTITY_LENGTH",
    "PSK_LENGTH",
    "RECORD_OVERHEAD",
    "HandshakeProgress",
    "KeyId",
    "PskIdentity",
    "PskIdentityError",
    "PskMismatchError",
    "SessionState",
    "TlsAuthenticationError",
    "TlsClosedError",
    "TlsError",
    "TlsHandshakeError",
    "TlsPskClient",
    "TlsPskServer",
    "UnknownPskIdentityError",
    "psk_from_mep_key",
]
