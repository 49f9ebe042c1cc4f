"""TLS-PSK endpoints for the MEP port, on memory buffers (no sockets).

MEP Client Developer's Guide, ch. 2, "Using TLS Security to secure MEP Ports": TLS 1.2 only,
cipher suite TLS_PSK_WITH_AES_256_GCM_SHA384, the PSK is the first 16 bytes of the MBK or MAK,
no session cache; the meter runs mbed TLS 2.16.  "Request and Response Message Formats for TLS
security" says how these bytes travel: the first client handshake flight in a TLS_HANDSHAKE
(0x58) request, later flights in TLS_HANDSHAKE_CONT (0x59), application data in TLS_TABLE
(0x80).  Framing is :mod:`mepgate.proto`'s job; this module only produces and consumes the TLS
bytes.

Both endpoints are sans-IO: feed received bytes with :meth:`receive`, step the handshake with
:meth:`do_handshake` (which returns the bytes to send), then use :meth:`encrypt` and
:meth:`decrypt`.  A typical client exchange::

    client = TlsPskClient(mak, key_id=KeyId.MAK)
    hello = client.start_handshake()          # send with code 0x58
    client.receive(server_flight)
    progress = client.do_handshake()          # send progress.outgoing with code 0x59
    client.receive(server_finished)
    assert client.do_handshake().complete
    record = client.encrypt(c12_request)      # send with code 0x80
    c12_response = client.decrypt(response_record)
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Final

from mbedtls import tls
from mbedtls.exceptions import TLSError

from mepgate.errors import LocalProtocolError
from mepgate.tls import _records
from mepgate.tls.errors import (
    PskIdentityError,
    PskMismatchError,
    TlsClosedError,
    TlsError,
    TlsHandshakeError,
    UnknownPskIdentityError,
)
from mepgate.tls.identity import (
    DEFAULT_CLIENT_ID,
    KeyId,
    PskIdentity,
    psk_from_mep_key,
)

#: mbed TLS's name of TLS_PSK_WITH_AES_256_GCM_SHA384 (0x00A9), the only suite a meter offers.
CIPHER_SUITE: Final = "TLS-PSK-WITH-AES-256-GCM-SHA384"

# mbed TLS error codes (ssl.h), as the positive numbers python-mbedtls reports.
_ERR_UNKNOWN_IDENTITY: Final = 0x6C80
_ERR_INVALID_MAC: Final = 0x7180
_ERR_FATAL_ALERT_MESSAGE: Final = 0x7780
_ERR_PEER_CLOSE_NOTIFY: Final = 0x7880
_ERR_BAD_HS_FINISHED: Final = 0x7E80

# Alerts (RFC 5246 7.2, RFC 4279 2) a peer sends when the identity or the key does not match.
_ALERT_BAD_RECORD_MAC: Final = 20
_ALERT_DECRYPT_ERROR: Final = 51
_ALERT_UNKNOWN_PSK_IDENTITY: Final = 115

# Each do_handshake() call advances mbed TLS one state at a time; a full TLS 1.2 PSK
# handshake has fewer than 20 states, so this only guards against a library bug looping.
_MAX_HANDSHAKE_STEPS: Final = 64
# Larger than any TLS record's plaintext (2**14), so one read returns one whole record.
_READ_CHUNK: Final = 2**14 + 2048
_OUTPUT_CHUNK: Final = 2**15


# "Using TLS Security to secure MEP Ports": TLS v1.2 with exactly one cipher suite.  PSK suites
# carry no certificates, so there is nothing to validate.
_BASE_CONFIGURATION: Final = tls.TLSConfiguration(
    ciphers=(CIPHER_SUITE,),
    lowest_supported_version=tls.TLSVersion.TLSv1_2,
    highest_supported_version=tls.TLSVersion.TLSv1_2,
    validate_certificates=False,
)


def _error_code(exc: TLSError) -> int | None:
    code = getattr(exc, "err", None)
    return abs(code) if isinstance(code, int) else None


def _handshake_over(buffer: tls.TLSWrappedBuffer) -> bool:
    # ``_handshake_state`` is python-mbedtls's only view of the handshake state; its stub types
    # the enum members as ``int``, so compare by name.
    return buffer._handshake_state.name == "HANDSHAKE_OVER"


def _describe(exc: TLSError) -> str:
    # python-mbedtls messages are mbed TLS's error strings; they never include key material.
    return exc.msg or f"mbed TLS error 0x{_error_code(exc) or 0:04X}"


@dataclass(frozen=True, slots=True)
class HandshakeProgress:
    """What one :meth:`do_handshake` call produced.

    ``outgoing`` are the TLS bytes to send to the peer now (possibly empty); ``complete`` is true
    once the handshake is over and :meth:`encrypt`/:meth:`decrypt` may be used.
    """

    outgoing: bytes
    complete: bool


class SessionState(enum.Enum):
    """Where a TLS-PSK endpoint stands."""

    IDLE = "idle"  # no session: start one (client) or reset (server)
    HANDSHAKING = "handshaking"
    ESTABLISHED = "established"
    CLOSED = "closed"  # closed by us or the peer, or failed


class _Endpoint:
    """Machinery shared by the client and the server: one python-mbedtls buffer per session."""

    def __init__(self) -> None:
        self._buffer: tls.TLSWrappedBuffer | None = None
        self._state = SessionState.IDLE
        # Bytes received since the last do_handshake(), read for plaintext alerts/identities.
        self._handshake_input = bytearray()

    # -- subclasses ----------------------------------------------------------------------------
    def _new_buffer(self) -> tls.TLSWrappedBuffer:
        raise NotImplementedError

    def _handshake_error(self, exc: TLSError, received: bytes, outgoing: bytes) -> TlsError:
        raise NotImplementedError

    # -- public API ----------------------------------------------------------------------------
    @property
    def state(self) -> SessionState:
        return self._state

    @property
    def handshake_complete(self) -> bool:
        return self._state is SessionState.ESTABLISHED

    def receive(self, data: bytes) -> None:
        """Feed TLS bytes received from the peer (any split; records may span calls)."""
        buffer = self._require_session()
        if self._state is SessionState.HANDSHAKING:
            self._handshake_input += data
        buffer.receive_from_network(bytes(data))

    def do_handshake(self) -> HandshakeProgress:
        """Advance the handshake as far as the received bytes allow.

        Returns the bytes to send and whether the handshake is complete.  Raises a
        :class:`~mepgate.tls.errors.TlsHandshakeError` (whose ``outgoing`` holds the alert to
        send, if any) when the peer's bytes make the handshake fail.
        """
        buffer = self._require_session()
        if self._state is SessionState.ESTABLISHED:
            return HandshakeProgress(b"", complete=True)
        received = bytes(self._handshake_input)
        self._handshake_input.clear()
        try:
            for _ in range(_MAX_HANDSHAKE_STEPS):
                if _handshake_over(buffer):
                    break
                try:
                    buffer.do_handshake()
                except tls.WantWriteError:
                    continue  # output is queued in memory; keep stepping
                except tls.WantReadError:
                    break  # needs more bytes from the peer
        except TLSError as exc:
            outgoing = self._drain(buffer)
            self._state = SessionState.CLOSED
            raise self._handshake_error(exc, received, outgoing) from exc
        complete = _handshake_over(buffer)
        if complete:
            self._state = SessionState.ESTABLISHED
        return HandshakeProgress(self._drain(buffer), complete=complete)

    def encrypt(self, plaintext: bytes) -> bytes:
        """Return the TLS application-data record(s) carrying ``plaintext``."""
        buffer = self._require_established()
        if not plaintext:
            raise LocalProtocolError("nothing to encrypt: the plaintext is empty")
        try:
            buffer.write(bytes(plaintext))
        except TLSError as exc:
            self._state = SessionState.CLOSED
            raise TlsError(
                f"could not encrypt: {_describe(exc)}", outgoing=self._drain(buffer)
            ) from exc
        return self._drain(buffer)

    def decrypt(self, records: bytes) -> bytes:
        """Return the plaintext of ``records``, one or more complete application-data records.

        A record that fails authentication (tampered, replayed, out of order) ends the session
        with :class:`~mepgate.tls.errors.TlsError`; a close_notify alert with
        :class:`~mepgate.tls.errors.TlsClosedError`.
        """
        buffer = self._require_established()
        _records.check_whole_records(records)
        buffer.receive_from_network(bytes(records))
        plaintext = bytearray()
        chunk = bytearray(_READ_CHUNK)
        while True:
            try:
                # The stub types the target as ``bytes``; it must be writable, as here.
                count = buffer.readinto(chunk, len(chunk))  # type: ignore[arg-type]
            except tls.WantReadError:
                break
            except tls.RaggedEOF:
                continue  # an empty application-data record: nothing to add
            except TLSError as exc:
                self._state = SessionState.CLOSED
                outgoing = self._drain(buffer)
                if _error_code(exc) == _ERR_PEER_CLOSE_NOTIFY:
                    raise TlsClosedError(
                        "the peer closed the TLS session", outgoing=outgoing
                    ) from exc
                raise TlsError(
                    f"a TLS record from the peer was rejected: {_describe(exc)}",
                    outgoing=outgoing,
                ) from exc
            plaintext += chunk[:count]
        return bytes(plaintext)

    def close(self) -> bytes:
        """End the session; return the close_notify alert to send (empty if none is due)."""
        buffer = self._buffer
        state, self._state = self._state, SessionState.CLOSED
        if buffer is None or state is not SessionState.ESTABLISHED:
            return b""
        try:
            buffer.shutdown()
        except TLSError:
            return b""
        return self._drain(buffer)

    # -- helpers -------------------------------------------------------------------------------
    def _start_session(self) -> tls.TLSWrappedBuffer:
        # A fresh mbed TLS context per session: nothing is resumed ("The TLS Session Cache will
        # not be supported").
        self._buffer = self._new_buffer()
        self._state = SessionState.HANDSHAKING
        self._handshake_input.clear()
        return self._buffer

    def _require_session(self) -> tls.TLSWrappedBuffer:
        if self._buffer is None or self._state in (SessionState.IDLE, SessionState.CLOSED):
            raise LocalProtocolError(
                f"no TLS session in progress (state {self._state.value}); start a new handshake"
            )
        return self._buffer

    def _require_established(self) -> tls.TLSWrappedBuffer:
        buffer = self._require_session()
        if self._state is not SessionState.ESTABLISHED:
            raise LocalProtocolError("the TLS handshake is not complete yet")
        return buffer

    @staticmethod
    def _drain(buffer: tls.TLSWrappedBuffer) -> bytes:
        out = bytearray()
        while chunk := buffer.peek_outgoing(_OUTPUT_CHUNK):
            buffer.consume_outgoing(len(chunk))
            out += chunk
        return bytes(out)


class TlsPskClient(_Endpoint):
    """The MEP client's side of a TLS-PSK session.

    ``psk`` is the MEP key (16 to 20 bytes; the first 16 are used), ``key_id`` says whether it
    is the MBK or the MAK, ``client_id`` goes into the PSK identity.  Because python-mbedtls
    sends identities as UTF-8 text, only client ids whose identity bytes are valid UTF-8 can be
    used (see :attr:`PskIdentity.sendable`); any id with both bytes below 0x80 is fine.
    """

    def __init__(
        self, psk: bytes, *, key_id: KeyId | int, client_id: int = DEFAULT_CLIENT_ID
    ) -> None:
        super().__init__()
        try:
            key = KeyId(key_id)
        except ValueError:
            raise LocalProtocolError(f"a key id is 0 (MBK) or 1 (MAK), got {key_id!r}") from None
        self._identity = PskIdentity(client_id=client_id, key_id=key)
        if not self._identity.sendable:
            raise LocalProtocolError(
                f"client id 0x{client_id:04X} cannot be sent: python-mbedtls only sends PSK "
                "identities that are valid UTF-8; pick a client id whose two bytes are below 0x80"
            )
        identity_text = self._identity.to_bytes().decode("utf-8")
        self._context = tls.ClientContext(
            replace(_BASE_CONFIGURATION, pre_shared_key=(identity_text, psk_from_mep_key(psk)))
        )

    def __repr__(self) -> str:
        return f"TlsPskClient(identity={self._identity!r}, state={self._state.value})"

    @property
    def identity(self) -> PskIdentity:
        return self._identity

    def start_handshake(self) -> bytes:
        """Drop any session and return a new ClientHello (MEP TLS_HANDSHAKE, code 0x58)."""
        self._start_session()
        return self.do_handshake().outgoing

    def _new_buffer(self) -> tls.TLSWrappedBuffer:
        return self._context.wrap_buffers(None)

    def _handshake_error(self, exc: TLSError, received: bytes, outgoing: bytes) -> TlsError:
        code = _error_code(exc)
        alert = _records.plaintext_alert(received)
        if code == _ERR_FATAL_ALERT_MESSAGE and alert is not None:
            name = _records.alert_name(alert)
            if alert == _ALERT_UNKNOWN_PSK_IDENTITY:
                return UnknownPskIdentityError(
                    f"the server does not know PSK identity {self._identity} ({name} alert)",
                    outgoing=outgoing,
                    identity=self._identity.to_bytes(),
                )
            if alert in (_ALERT_BAD_RECORD_MAC, _ALERT_DECRYPT_ERROR):
                return PskMismatchError(
                    f"the server rejected our Finished message ({name} alert): it holds a "
                    f"different {self._identity.key_id.name} than ours",
                    outgoing=outgoing,
                )
            return TlsHandshakeError(
                f"the server aborted the TLS handshake with a {name} alert", outgoing=outgoing
            )
        if code in (_ERR_INVALID_MAC, _ERR_BAD_HS_FINISHED):
            return PskMismatchError(
                f"the server's Finished message does not verify: it holds a different "
                f"{self._identity.key_id.name} than ours",
                outgoing=outgoing,
            )
        return TlsHandshakeError(f"TLS handshake failed: {_describe(exc)}", outgoing=outgoing)


@dataclass(slots=True)
class _Lookup:
    identity: bytes
    problem: str | None  # why no key was returned, or None when one was


class _KeyIdPskStore(Mapping[str, bytes]):
    """The server's PSK store, keyed by identity but selecting the key by the key-id byte.

    python-mbedtls's server asks a ``Mapping[str, bytes]`` for the identity the client sent
    (decoded as UTF-8) and treats any exception as "unknown identity".  The client id is not
    validated by the meter ("PSK Identity Hint"), so rather than listing all 65536 client ids
    per key, this mapping decodes the identity and returns the key its key-id byte names.  It
    also remembers the last lookup so the server can say who connected and why it was refused.
    """

    def __init__(self, keys: Mapping[KeyId, bytes]) -> None:
        self._keys = dict(keys)
        self.last_lookup: _Lookup | None = None

    def __repr__(self) -> str:
        return f"_KeyIdPskStore(key_ids={sorted(k.name for k in self._keys)})"

    def __getitem__(self, identity: str) -> bytes:
        raw = identity.encode("utf-8")
        try:
            key_id = PskIdentity.from_bytes(raw).key_id
        except PskIdentityError as exc:
            self.last_lookup = _Lookup(raw, str(exc))
            raise KeyError(identity) from None
        psk = self._keys.get(key_id)
        if psk is None:
            self.last_lookup = _Lookup(raw, f"the server has no {key_id.name} configured")
            raise KeyError(identity)
        self.last_lookup = _Lookup(raw, None)
        return psk

    def __iter__(self) -> Iterator[str]:
        # Every identity python-mbedtls could hand us: a UTF-8-decodable client id followed by a
        # configured key id.
        for key_id in sorted(self._keys):
            for client_id in range(0x10000):
                raw = PskIdentity(client_id, key_id).to_bytes()
                try:
                    yield raw.decode("utf-8")
                except UnicodeDecodeError:
                    continue

    def __len__(self) -> int:
        return sum(1 for _ in self)


class TlsPskServer(_Endpoint):
    """The meter's side of a TLS-PSK session (used by the simulator).

    ``keys`` maps each key id the server accepts (``KeyId.MBK``/``KeyId.MAK`` or 0/1) to its MEP
    key (16 to 20 bytes; the first 16 are used).  The server is ready for a ClientHello when
    constructed; call :meth:`reset` to drop the session and expect a new one (what a meter
    does on a TLS_HANDSHAKE request, code 0x58).
    """

    def __init__(self, keys: Mapping[KeyId, bytes] | Mapping[int, bytes]) -> None:
        super().__init__()
        if not keys:
            raise LocalProtocolError("a TLS-PSK server needs at least one key (MBK or MAK)")
        psks: dict[KeyId, bytes] = {}
        for key_id, key in keys.items():
            try:
                psks[KeyId(key_id)] = psk_from_mep_key(key)
            except ValueError:
                raise LocalProtocolError(
                    f"a key id is 0 (MBK) or 1 (MAK), got {key_id!r}"
                ) from None
        self._store = _KeyIdPskStore(psks)
        self._context = tls.ServerContext(
            replace(_BASE_CONFIGURATION, pre_shared_key_store=self._store)
        )
        self.reset()

    def __repr__(self) -> str:
        key_ids = ", ".join(sorted(k.name for k in self._store._keys))
        return f"TlsPskServer(key_ids=[{key_ids}], state={self._state.value})"

    def reset(self) -> None:
        """Drop any session and wait for a new ClientHello."""
        self._store.last_lookup = None
        self._start_session()

    @property
    def peer_identity(self) -> PskIdentity | None:
        """The identity the client authenticated with, once its key has been selected."""
        lookup = self._store.last_lookup
        if lookup is None or lookup.problem is not None:
            return None
        return PskIdentity.from_bytes(lookup.identity)

    def _new_buffer(self) -> tls.TLSWrappedBuffer:
        return self._context.wrap_buffers()

    def _handshake_error(self, exc: TLSError, received: bytes, outgoing: bytes) -> TlsError:
        code = _error_code(exc)
        if code == _ERR_UNKNOWN_IDENTITY:
            lookup = self._store.last_lookup
            identity: bytes | None
            if lookup is not None and lookup.problem is not None:
                identity, why = lookup.identity, lookup.problem
            else:
                # python-mbedtls never asked the store: the identity is not valid UTF-8.
                identity = _records.client_psk_identity(received)
                why = "python-mbedtls can only look up identities that are valid UTF-8"
            shown = identity.hex(" ") if identity is not None else "unknown"
            return UnknownPskIdentityError(
                f"rejected PSK identity [{shown}]: {why}", outgoing=outgoing, identity=identity
            )
        if code in (_ERR_INVALID_MAC, _ERR_BAD_HS_FINISHED):
            peer = self.peer_identity
            key = peer.key_id.name if peer is not None else "key"
            return PskMismatchError(
                f"the client's Finished message does not verify: it holds a different {key}",
                outgoing=outgoing,
            )
        if code == _ERR_FATAL_ALERT_MESSAGE:
            alert = _records.plaintext_alert(received)
            name = f"a {_records.alert_name(alert)}" if alert is not None else "an encrypted"
            return TlsHandshakeError(
                f"the client aborted the TLS handshake with {name} alert", outgoing=outgoing
            )
        return TlsHandshakeError(f"TLS handshake failed: {_describe(exc)}", outgoing=outgoing)
