"""``mepgate serve`` and ``demo`` on a listen address they cannot have: one line that says why and
how to pick another (``--listen``), exit 2, no traceback (it was uvicorn's ~50-line traceback
and exit 3).  The address is held by a real socket; each command runs as a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

MEPGATE = str(Path(sys.executable).with_name("mepgate"))
EXIT_USAGE = 2


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port another program listens on."""
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MEPGATE, *args],
        capture_output=True,
        text=True,
        timeout=120,  # a hang guard: it answers at once
        env={**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg")},
        check=False,
    )


def assert_one_line_saying(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == EXIT_USAGE, result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("error: cannot listen on ")
    for word in (*words, "--listen HOST:PORT"):
        assert word in line
    assert result.stdout == ""


@pytest.mark.parametrize("command", ["demo", "serve"])
def test_a_busy_listen_address_is_one_line_and_exit_2(
    command: str, held_port: int, tmp_path: Path
) -> None:
    address = f"127.0.0.1:{held_port}"
    config = tmp_path / "mepgate.toml"
    config.write_text('[[meter]]\nname = "house"\nport = "sim:gen4-3phase"\n')
    options = ["--config", str(config)] if command == "serve" else []
    result = run(tmp_path, command, *options, "--data-dir", str(tmp_path), "--listen", address)
    assert_one_line_saying(result, address, "the address is in use")
    assert not (tmp_path / "mepgate.db").exists()  # nothing started before the address was had


def test_an_address_that_is_not_this_computers_is_named(tmp_path: Path) -> None:
    # TEST-NET-1 (RFC 5737): no computer has it, so binding fails at once; nothing is sent.
    result = run(tmp_path, "demo", "--data-dir", str(tmp_path), "--listen", "192.0.2.1:8080")
    assert_one_line_saying(result, "192.0.2.1:8080", "this computer has no such address")
