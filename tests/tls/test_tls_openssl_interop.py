"""Interoperability of the TLS-PSK engine with OpenSSL's ``s_client`` and ``s_server``.

The engine is sans-IO, so these tests pump its bytes through a localhost TCP socket.

``-psk_identity`` takes a C string, so the 3-byte MEP identity has to be free of NUL bytes.
Client id 0x4241 (sent LSB first: ``A`` ``B``) with key id 1 (MAK) gives the identity
``b"AB\\x01"``, which fits in an argv string as is.  Key id 0 (MBK) would need a NUL, so the
OpenSSL tests use the MAK -- as the guide's TLS Example 1 does.
"""

from __future__ import annotations

import select
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from mepgate.tls import (
    KeyId,
    PskIdentity,
    PskMismatchError,
    TlsPskClient,
    TlsPskServer,
    UnknownPskIdentityError,
)

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="needs the openssl command-line tool")

TIMEOUT = 10.0  # seconds, for every socket operation and subprocess
MAK = bytes.fromhex("0102030405060708090a0b0c0d0e0f1011121314")
PSK_HEX = MAK[:16].hex()
IDENTITY = PskIdentity(client_id=0x4241, key_id=KeyId.MAK)
IDENTITY_ARG = IDENTITY.to_bytes().decode("ascii")  # "AB\x01"
OPENSSL_SUITE = "PSK-AES256-GCM-SHA384"  # OpenSSL's name for TLS_PSK_WITH_AES_256_GCM_SHA384


def take_records(pending: bytearray) -> bytes:
    """Remove and return the complete TLS records at the start of ``pending``."""
    end = 0
    while len(pending) - end >= 5:
        length = int.from_bytes(pending[end + 3 : end + 5], "big")
        if end + 5 + length > len(pending):
            break
        end += 5 + length
    whole = bytes(pending[:end])
    del pending[:end]
    return whole


# -- our server, OpenSSL's client -------------------------------------------------------------


@dataclass
class ServedSession:
    received: bytes = b""
    identity: PskIdentity | None = None
    error: BaseException | None = None


def serve_one(listener: socket.socket, server: TlsPskServer, reply: bytes) -> ServedSession:
    """Accept one connection, handshake, read one line, answer ``reply`` and close."""
    result = ServedSession()
    try:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(TIMEOUT)
            while not server.handshake_complete:
                data = conn.recv(4096)
                if not data:
                    raise ConnectionError("the client left during the handshake")
                server.receive(data)
                try:
                    progress = server.do_handshake()
                except Exception as exc:
                    conn.sendall(getattr(exc, "outgoing", b""))
                    raise
                conn.sendall(progress.outgoing)
            result.identity = server.peer_identity
            pending = bytearray()
            while not result.received.endswith(b"\n"):
                data = conn.recv(4096)
                if not data:
                    break
                pending += data
                if whole := take_records(pending):
                    result.received += server.decrypt(whole)
            conn.sendall(server.encrypt(reply) + server.close())
    except Exception as exc:
        result.error = exc
    return result


@dataclass
class ClientRun:
    returncode: int
    output: str  # stdout and stderr


def run_s_client(psk_hex: str, identity: str, stdin: bytes) -> tuple[ServedSession, ClientRun]:
    """Run ``openssl s_client`` against a TlsPskServer; return what each side saw."""
    assert OPENSSL is not None
    server = TlsPskServer({KeyId.MAK: MAK})
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(TIMEOUT)
        port = listener.getsockname()[1]
        outcome: list[ServedSession] = []
        thread = threading.Thread(
            target=lambda: outcome.append(serve_one(listener, server, b"pong from mepgate\n"))
        )
        thread.start()
        # -ign_eof: after sending stdin, keep reading until the server closes the connection.
        command = [
            OPENSSL,
            "s_client",
            "-connect",
            f"127.0.0.1:{port}",
            "-psk",
            psk_hex,
            "-psk_identity",
            identity,
            "-cipher",
            OPENSSL_SUITE,
            "-tls1_2",
            "-ign_eof",
        ]
        try:
            completed = subprocess.run(
                command, input=stdin, capture_output=True, timeout=TIMEOUT, check=False
            )
        finally:
            thread.join(TIMEOUT)
        assert not thread.is_alive()
    output = completed.stdout.decode(errors="replace") + completed.stderr.decode(errors="replace")
    return outcome[0], ClientRun(completed.returncode, output)


def test_openssl_s_client_completes_handshake_and_exchanges_data() -> None:
    served, client = run_s_client(PSK_HEX, IDENTITY_ARG, b"ping from s_client\n")

    assert served.error is None, client.output
    assert client.returncode == 0, client.output
    assert f"Cipher is {OPENSSL_SUITE}" in client.output
    assert "Protocol  : TLSv1.2" in client.output
    assert served.identity == IDENTITY
    # Application data went both ways, so both ends derived the same keys.
    assert served.received == b"ping from s_client\n"
    assert "pong from mepgate" in client.output


def test_openssl_s_client_with_wrong_psk_is_refused() -> None:
    served, client = run_s_client("ff" * 16, IDENTITY_ARG, b"ping\n")

    assert isinstance(served.error, PskMismatchError), client.output
    # s_client prints its session summary before it reads our alert, so judge by the alert.
    assert "alert bad record mac" in client.output
    assert client.returncode != 0
    assert "pong" not in client.output


def test_openssl_s_client_with_unknown_key_id_is_refused() -> None:
    served, client = run_s_client(PSK_HEX, "AB\x02", b"ping\n")

    assert isinstance(served.error, UnknownPskIdentityError), client.output
    assert served.error.identity == b"AB\x02"
    assert "alert unknown psk identity" in client.output
    assert client.returncode != 0


# -- our client, OpenSSL's server -------------------------------------------------------------


@pytest.fixture
def s_server() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``openssl s_server`` for one PSK connection, echoing each line reversed (-rev)."""
    assert OPENSSL is not None
    command = [
        OPENSSL,
        "s_server",
        "-accept",
        "127.0.0.1:0",
        "-nocert",
        "-psk",
        PSK_HEX,
        "-psk_identity",
        IDENTITY_ARG,
        "-cipher",
        OPENSSL_SUITE,
        "-tls1_2",
        "-naccept",
        "1",
        "-rev",
    ]
    # Unbuffered (bufsize=0): readline() then never reads past the line it returns, so select()
    # on the pipe is an honest "is there more output" test.
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        bufsize=0,
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + TIMEOUT
        port = None
        while port is None:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([process.stdout], [], [], max(remaining, 0))
            assert ready, "openssl s_server did not start listening"
            line = process.stdout.readline().decode(errors="replace")
            assert line, "openssl s_server exited early"
            if line.startswith("ACCEPT"):
                port = int(line.rsplit(":", 1)[1])
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(TIMEOUT)


def test_client_completes_handshake_with_openssl_s_server(
    s_server: tuple[subprocess.Popen[bytes], int],
) -> None:
    process, port = s_server
    client = TlsPskClient(MAK, key_id=KeyId.MAK, client_id=IDENTITY.client_id)
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as conn:
        conn.sendall(client.start_handshake())
        while not client.handshake_complete:
            data = conn.recv(4096)
            assert data, "s_server closed the connection during the handshake"
            client.receive(data)
            conn.sendall(client.do_handshake().outgoing)

        conn.sendall(client.encrypt(b"hello meter\n"))
        echoed = b""
        pending = bytearray()
        while not echoed.endswith(b"\n"):
            data = conn.recv(4096)
            assert data, "s_server closed the connection before answering"
            pending += data
            if whole := take_records(pending):
                echoed += client.decrypt(whole)
        conn.sendall(client.close())

    assert echoed == b"retem olleh\n"
    stdout, _ = process.communicate(timeout=TIMEOUT)
    output = stdout.decode(errors="replace")
    assert f"Ciphersuite: {OPENSSL_SUITE}" in output
    assert "Protocol version: TLSv1.2" in output
    assert "PSK warning" not in output  # s_server saw exactly the identity it expected
