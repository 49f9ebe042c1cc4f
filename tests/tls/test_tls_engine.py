"""Client <-> server TLS-PSK sessions in memory."""

from __future__ import annotations

import pytest
from mbedtls import tls as mbedtls_tls

from mepgate.errors import LocalProtocolError, RemoteProtocolError
from mepgate.tls import (
    CIPHER_SUITE,
    RECORD_OVERHEAD,
    KeyId,
    PskIdentity,
    PskMismatchError,
    SessionState,
    TlsAuthenticationError,
    TlsClosedError,
    TlsError,
    TlsHandshakeError,
    TlsPskClient,
    TlsPskServer,
    UnknownPskIdentityError,
)

MBK = bytes.fromhex("000102030405060708090a0b0c0d0e0f10111213")
MAK = bytes.fromhex("a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3")
OTHER = bytes.fromhex("f0e1d2c3b4a5968778695a4b3c2d1e0f")

# Guide ch. 2, TLS Example 2: a partial read of table 0x0846 (offset 0x8E, 1 byte).
C12_REQUEST = bytes.fromhex("3F084600008E0001")
C12_RESPONSE = bytes.fromhex("00000102")

# Guide ch. 2, TLS Example 1, the client's second flight up to the Finished ciphertext:
# ClientKeyExchange with identity 64 00 01, ChangeCipherSpec, then the Finished record header
# and its explicit nonce (sequence number 0).
GUIDE_SECOND_FLIGHT_PREFIX = bytes.fromhex(
    "160303000910000005000364000114030300010116030300280000000000000000"
)


def handshake(client: TlsPskClient, server: TlsPskServer) -> list[bytes]:
    """Run a full handshake, returning the flights in order (client first)."""
    flights = [client.start_handshake()]
    sender: TlsPskClient | TlsPskServer = client
    receiver: TlsPskClient | TlsPskServer = server
    for _ in range(6):
        receiver_gets = flights[-1]
        receiver.receive(receiver_gets)
        progress = receiver.do_handshake()
        if progress.outgoing:
            flights.append(progress.outgoing)
        if client.handshake_complete and server.handshake_complete:
            return flights
        sender, receiver = receiver, sender
    raise AssertionError("handshake did not finish")


def failed_handshake(
    client: TlsPskClient, server: TlsPskServer
) -> tuple[TlsHandshakeError, TlsHandshakeError]:
    """Run a handshake expected to fail; return the server's and then the client's error."""
    server.receive(client.start_handshake())
    client.receive(server.do_handshake().outgoing)
    server.receive(client.do_handshake().outgoing)
    with pytest.raises(TlsHandshakeError) as server_error:
        server.do_handshake()
    client.receive(server_error.value.outgoing)
    with pytest.raises(TlsHandshakeError) as client_error:
        client.do_handshake()
    return server_error.value, client_error.value


@pytest.fixture
def pair() -> tuple[TlsPskClient, TlsPskServer]:
    client = TlsPskClient(MAK, key_id=KeyId.MAK)
    server = TlsPskServer({KeyId.MBK: MBK, KeyId.MAK: MAK})
    handshake(client, server)
    return client, server


# -- handshake --------------------------------------------------------------------------------


def test_handshake_completes_like_the_guide_example() -> None:
    client = TlsPskClient(MAK, key_id=KeyId.MAK, client_id=100)
    server = TlsPskServer({KeyId.MAK: MAK})
    flights = handshake(client, server)

    assert len(flights) == 4
    hello, server_hello, client_finish, server_finish = flights
    # ClientHello: TLS 1.2, no session id, offering only 0x00A9 plus the renegotiation SCSV.
    assert hello[:3] == bytes.fromhex("160303")
    assert hello[5] == 0x01
    assert hello[9:11] == bytes.fromhex("0303")
    assert hello[43] == 0  # session id length
    assert hello[44:50] == bytes.fromhex("000400a900ff")
    # ServerHello picks 0x00A9, followed by an empty ServerHelloDone.
    assert server_hello[9:11] == bytes.fromhex("0303")
    session_id_length = server_hello[43]
    suite_at = 44 + session_id_length
    assert server_hello[suite_at : suite_at + 2] == bytes.fromhex("00a9")
    assert server_hello.endswith(bytes.fromhex("16030300040e000000"))
    # The client's flight and the server's answer have the guide's layout and lengths
    # (0x42 and 0x34 bytes including the one-byte MEP code).
    assert client_finish.startswith(GUIDE_SECOND_FLIGHT_PREFIX)
    assert len(client_finish) == 0x42 - 1
    assert server_finish.startswith(bytes.fromhex("1403030001011603030028"))
    assert len(server_finish) == 0x34 - 1

    assert client.state is server.state is SessionState.ESTABLISHED
    assert server.peer_identity == PskIdentity(100, KeyId.MAK)
    assert client.do_handshake().complete
    assert client.do_handshake().outgoing == b""


def test_server_answers_the_guide_client_hello_like_the_meter() -> None:
    # Guide ch. 2, TLS Example 1: the MEP client's ClientHello has no extensions at all.
    guide_hello = bytes.fromhex(
        "160303002f0100002b03035ca65721aa86a8db2d599157aa0c33811942a7ee9289f1663362197685"
        "0ddff4000004" + "00a900ff0100"
    )
    server = TlsPskServer({KeyId.MAK: MAK})
    server.receive(guide_hello)
    flight = server.do_handshake().outgoing
    # Same shape and size as the meter's answer in the example (0x60 bytes with the MEP code):
    # ServerHello with a 32-byte session id, suite 0x00A9, only renegotiation_info, then an
    # empty ServerHelloDone.
    assert len(flight) == 0x60 - 1
    assert flight[:5] == bytes.fromhex("1603030051")
    assert flight[43] == 32
    assert flight.endswith(bytes.fromhex("00a9000005ff0100010016030300040e000000"))


def test_handshake_progress_reports_incomplete_until_done() -> None:
    client = TlsPskClient(MBK, key_id=KeyId.MBK)
    server = TlsPskServer({KeyId.MBK: MBK})
    server.receive(client.start_handshake())
    first = server.do_handshake()
    assert not first.complete
    assert not server.do_handshake().outgoing  # nothing new without input
    client.receive(first.outgoing)
    second = client.do_handshake()
    assert not second.complete
    assert not client.handshake_complete
    server.receive(second.outgoing)
    third = server.do_handshake()
    assert third.complete
    client.receive(third.outgoing)
    assert client.do_handshake().complete


def test_handshake_bytes_may_arrive_one_at_a_time() -> None:
    client = TlsPskClient(MAK, key_id=KeyId.MAK)
    server = TlsPskServer({KeyId.MAK: MAK})
    for byte in client.start_handshake():
        server.receive(bytes([byte]))
    server_flight = server.do_handshake().outgoing
    client.receive(server_flight[:7])
    assert client.do_handshake().outgoing == b""  # a partial record is not enough
    client.receive(server_flight[7:])
    server.receive(client.do_handshake().outgoing)
    client.receive(server.do_handshake().outgoing)
    assert client.do_handshake().complete
    assert server.handshake_complete


def test_server_selects_the_key_named_by_the_key_id() -> None:
    server = TlsPskServer({KeyId.MBK: MBK, KeyId.MAK: MAK})
    handshake(TlsPskClient(MBK, key_id=KeyId.MBK, client_id=7), server)
    assert server.peer_identity == PskIdentity(7, KeyId.MBK)

    # The MAK presented under the MBK's key id does not work: the key id alone picks the key.
    server = TlsPskServer({KeyId.MBK: MBK, KeyId.MAK: MAK})
    server_error, _ = failed_handshake(TlsPskClient(MAK, key_id=KeyId.MBK), server)
    assert isinstance(server_error, PskMismatchError)


def test_only_the_first_16_bytes_of_the_key_matter() -> None:
    client = TlsPskClient(MAK[:16] + b"\x00\x00\x00\x00", key_id=KeyId.MAK)
    server = TlsPskServer({KeyId.MAK: MAK[:16]})
    handshake(client, server)
    assert server.decrypt(client.encrypt(C12_REQUEST)) == C12_REQUEST


# -- application data -------------------------------------------------------------------------


def test_application_data_flows_both_ways(pair: tuple[TlsPskClient, TlsPskServer]) -> None:
    client, server = pair
    request = client.encrypt(C12_REQUEST)
    # The guide's TLS Example 2: an 8-byte request travels in a record with a 0x20-byte body.
    assert request[:5] == bytes.fromhex("1703030020")
    assert C12_REQUEST not in request
    assert server.decrypt(request) == C12_REQUEST
    response = server.encrypt(C12_RESPONSE)
    assert response[:5] == bytes.fromhex("170303001c")
    assert client.decrypt(response) == C12_RESPONSE

    for size in (1, 100, 446, 2000):
        payload = bytes(i % 251 for i in range(size))
        record = client.encrypt(payload)
        assert len(record) == size + RECORD_OVERHEAD
        assert server.decrypt(record) == payload
        assert client.decrypt(server.encrypt(payload[::-1])) == payload[::-1]


def test_explicit_nonce_counts_records(pair: tuple[TlsPskClient, TlsPskServer]) -> None:
    client, server = pair
    records = [client.encrypt(C12_REQUEST) for _ in range(3)]
    assert [r[5:13] for r in records] == [n.to_bytes(8, "big") for n in (1, 2, 3)]
    assert [server.decrypt(r) for r in records] == [C12_REQUEST] * 3


def test_several_records_decrypt_in_one_call(pair: tuple[TlsPskClient, TlsPskServer]) -> None:
    client, server = pair
    records = client.encrypt(b"one") + client.encrypt(b"two") + client.encrypt(b"three")
    assert server.decrypt(records) == b"onetwothree"


def test_truncated_record_is_rejected_and_session_survives(
    pair: tuple[TlsPskClient, TlsPskServer],
) -> None:
    client, server = pair
    record = client.encrypt(C12_REQUEST)
    with pytest.raises(TlsError, match="truncated"):
        server.decrypt(record[:-1])
    assert server.handshake_complete
    assert server.decrypt(record) == C12_REQUEST


def test_tampered_record_ends_the_session(pair: tuple[TlsPskClient, TlsPskServer]) -> None:
    client, server = pair
    record = bytearray(client.encrypt(C12_REQUEST))
    record[-1] ^= 0x01
    with pytest.raises(TlsError, match="rejected") as info:
        server.decrypt(bytes(record))
    assert isinstance(info.value, RemoteProtocolError)
    assert info.value.outgoing[:1] == b"\x15"  # a fatal alert for the client
    assert server.state is SessionState.CLOSED
    with pytest.raises(LocalProtocolError):
        server.encrypt(C12_RESPONSE)


def test_replayed_record_is_rejected(pair: tuple[TlsPskClient, TlsPskServer]) -> None:
    client, server = pair
    record = client.encrypt(C12_REQUEST)
    assert server.decrypt(record) == C12_REQUEST
    with pytest.raises(TlsError):
        server.decrypt(record)


def test_close_notify_reaches_the_peer(pair: tuple[TlsPskClient, TlsPskServer]) -> None:
    client, server = pair
    alert = client.close()
    assert alert[:3] == bytes.fromhex("150303")
    assert client.state is SessionState.CLOSED
    with pytest.raises(TlsClosedError):
        server.decrypt(alert)
    assert client.close() == b""  # closing twice sends nothing more


def test_new_handshake_replaces_the_session(pair: tuple[TlsPskClient, TlsPskServer]) -> None:
    client, server = pair
    old_record = client.encrypt(C12_REQUEST)
    server.reset()  # what a meter does on TLS_HANDSHAKE (0x58)
    assert server.state is SessionState.HANDSHAKING
    assert server.peer_identity is None
    handshake(client, server)
    assert server.decrypt(client.encrypt(b"fresh")) == b"fresh"
    with pytest.raises(TlsError):
        server.decrypt(old_record)


# -- failures ---------------------------------------------------------------------------------


def test_wrong_psk_fails_on_both_ends() -> None:
    client = TlsPskClient(OTHER, key_id=KeyId.MAK)
    server = TlsPskServer({KeyId.MAK: MAK})
    server_error, client_error = failed_handshake(client, server)

    assert isinstance(server_error, PskMismatchError)
    assert isinstance(server_error, TlsAuthenticationError)
    assert server_error.outgoing == bytes.fromhex("15030300020214")  # fatal bad_record_mac
    assert isinstance(client_error, PskMismatchError)
    assert "MAK" in str(client_error)
    assert client.state is server.state is SessionState.CLOSED
    with pytest.raises(LocalProtocolError):
        client.encrypt(C12_REQUEST)


def test_unconfigured_key_id_is_an_unknown_identity() -> None:
    client = TlsPskClient(MAK, key_id=KeyId.MAK, client_id=100)
    server = TlsPskServer({KeyId.MBK: MBK})
    server_error, client_error = failed_handshake(client, server)

    assert isinstance(server_error, UnknownPskIdentityError)
    assert server_error.identity == bytes.fromhex("640001")
    assert "no MAK configured" in str(server_error)
    assert server_error.outgoing == bytes.fromhex("15030300020273")  # unknown_psk_identity
    assert server.peer_identity is None
    assert isinstance(client_error, UnknownPskIdentityError)
    assert client_error.identity == bytes.fromhex("640001")


def _raw_client_flight(
    identity: str,
    server: TlsPskServer,
    version: mbedtls_tls.TLSVersion = mbedtls_tls.TLSVersion.TLSv1_2,
) -> None:
    """Drive ``server`` with a bare python-mbedtls client sending an arbitrary identity."""
    config = mbedtls_tls.TLSConfiguration(
        ciphers=(CIPHER_SUITE,),
        lowest_supported_version=mbedtls_tls.TLSVersion.TLSv1,
        highest_supported_version=version,
        pre_shared_key=(identity, MAK[:16]),
    )
    raw = mbedtls_tls.ClientContext(config).wrap_buffers(None)

    def step() -> bytes:
        for _ in range(20):
            try:
                raw.do_handshake()
            except mbedtls_tls.WantWriteError:
                continue
            except mbedtls_tls.WantReadError:
                break
        out = raw.peek_outgoing(1 << 15)
        raw.consume_outgoing(len(out))
        return out

    server.receive(step())
    raw.receive_from_network(server.do_handshake().outgoing)
    server.receive(step())
    server.do_handshake()


@pytest.mark.parametrize(
    ("identity", "message"),
    [("d\x00\x02", "key id 2"), ("d\x00\x01\x00", "3 bytes long"), ("d\x00", "3 bytes long")],
)
def test_malformed_identities_are_unknown(identity: str, message: str) -> None:
    server = TlsPskServer({KeyId.MBK: MBK, KeyId.MAK: MAK})
    with pytest.raises(UnknownPskIdentityError, match=message) as info:
        _raw_client_flight(identity, server)
    assert info.value.identity == identity.encode()


def test_server_refuses_anything_but_tls_1_2() -> None:
    server = TlsPskServer({KeyId.MAK: MAK})
    with pytest.raises(TlsHandshakeError) as info:
        _raw_client_flight("d\x00\x01", server, version=mbedtls_tls.TLSVersion.TLSv1_1)
    assert not isinstance(info.value, TlsAuthenticationError)
    alert = info.value.outgoing
    assert (alert[0], alert[-2:]) == (0x15, bytes.fromhex("0246"))  # fatal protocol_version


def test_identity_python_mbedtls_cannot_decode_is_unknown() -> None:
    # Client id 0x00C8 gives identity C8 00 01, which is not UTF-8; our client refuses to send
    # it, so patch it into a real flight (same length) to see how the server copes.
    client = TlsPskClient(MAK, key_id=KeyId.MAK, client_id=100)
    server = TlsPskServer({KeyId.MAK: MAK})
    server.receive(client.start_handshake())
    client.receive(server.do_handshake().outgoing)
    flight = client.do_handshake().outgoing
    assert flight.count(bytes.fromhex("640001")) == 1
    server.receive(flight.replace(bytes.fromhex("640001"), bytes.fromhex("c80001")))
    with pytest.raises(UnknownPskIdentityError, match="UTF-8") as info:
        server.do_handshake()
    assert info.value.identity == bytes.fromhex("c80001")
    assert info.value.outgoing == bytes.fromhex("15030300020273")


# -- API misuse and secrets -------------------------------------------------------------------


def test_misuse_is_a_local_error() -> None:
    client = TlsPskClient(MAK, key_id=KeyId.MAK)
    with pytest.raises(LocalProtocolError, match="no TLS session"):
        client.do_handshake()
    with pytest.raises(LocalProtocolError):
        client.receive(b"\x16\x03\x03")
    client.start_handshake()
    with pytest.raises(LocalProtocolError, match="not complete"):
        client.encrypt(C12_REQUEST)
    with pytest.raises(LocalProtocolError, match="not complete"):
        client.decrypt(bytes.fromhex("1703030000"))


def test_empty_plaintext_is_refused(pair: tuple[TlsPskClient, TlsPskServer]) -> None:
    client, _ = pair
    with pytest.raises(LocalProtocolError, match="empty"):
        client.encrypt(b"")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"key_id": 2}, "key id"),
        ({"key_id": KeyId.MAK, "client_id": 0x10000}, "16-bit"),
        ({"key_id": KeyId.MAK, "client_id": 0x00C8}, "UTF-8"),
    ],
)
def test_client_arguments_are_checked(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(LocalProtocolError, match=message):
        TlsPskClient(MAK, **kwargs)


def test_server_arguments_are_checked() -> None:
    with pytest.raises(LocalProtocolError, match="at least one key"):
        TlsPskServer({})
    with pytest.raises(LocalProtocolError, match="key id"):
        TlsPskServer({5: MAK})
    with pytest.raises(LocalProtocolError, match="got 4 bytes"):
        TlsPskServer({KeyId.MAK: b"\x01\x02\x03\x04"})
    with pytest.raises(LocalProtocolError, match="got 12 bytes"):
        TlsPskClient(MAK[:12], key_id=KeyId.MAK)


def _leaks(text: str) -> bool:
    """Whether ``text`` shows any of the test keys' PSKs, in hex or as a bytes repr."""
    lowered = text.lower()
    return any(
        psk.hex() in lowered or psk.hex(" ") in lowered or repr(psk)[2:-1] in text
        for psk in (MBK[:16], MAK[:16], OTHER[:16])
    )


def test_secrets_stay_out_of_reprs_and_errors() -> None:
    client = TlsPskClient(OTHER, key_id=KeyId.MAK)
    server = TlsPskServer({KeyId.MBK: MBK, KeyId.MAK: MAK})
    texts = [repr(client), str(client), repr(server), str(server), repr(server._store)]
    server_error, client_error = failed_handshake(client, server)
    for error in (server_error, client_error):
        texts += [str(error), repr(error)]
        cause = error.__cause__
        assert cause is not None
        texts += [str(cause), repr(cause)]
    assert not any(_leaks(text) for text in texts), texts
    assert _leaks(repr(MAK)), "the leak detector itself must work"
    assert "MBK" in repr(server)
    assert "MAK" in repr(server)
