"""Open a port by name and move bytes over it (asyncio streams underneath).

Port names: a device path (``/dev/ttyUSB0``, a pty), ``tcp://host:port`` (ser2net, ESP-Link,
the simulator) or any pyserial URL (``rfc2217://host:port``, ``socket://``...).  Serial devices
and pyserial URLs go through pyserial-asyncio-fast; ``tcp://`` uses asyncio's own streams
(no serial settings to carry, and one less thread hop).
"""

from __future__ import annotations

import asyncio
import contextlib
from enum import Enum
from typing import Protocol

import serial
import serial_asyncio_fast

from mepgate.errors import PortUnavailableError

_READ_CHUNK = 4096


class EnableLine(Enum):
    """Which modem line, if any, drives the MEP port's ENABLE input."""

    NONE = "none"
    DTR = "dtr"
    RTS = "rts"


class Link(Protocol):
    """A bidirectional byte stream to the meter."""

    port: str
    baud: int

    async def write(self, data: bytes) -> None:
        """Queue ``data`` and wait until the OS has taken it."""

    async def read(self, timeout: float) -> bytes:
        """What arrived within ``timeout`` seconds (``b""`` if nothing); raises
        :class:`PortUnavailableError` when the port has gone away."""

    async def close(self) -> None: ...


CLOSE_TIMEOUT = 1.0  # seconds a closing link may take to flush before it is dropped


class StreamLink:
    """A :class:`Link` over an asyncio reader/writer pair."""

    def __init__(
        self, port: str, baud: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.port = port
        self.baud = baud
        self._reader = reader
        self._writer = writer

    def __repr__(self) -> str:
        return f"StreamLink({self.port!r}, baud={self.baud})"

    async def write(self, data: bytes) -> None:
        if self._writer.is_closing():
            raise PortUnavailableError(f"{self.port} is closed; it has to be opened again")
        try:
            self._writer.write(data)
            await self._writer.drain()
        except (OSError, serial.SerialException) as error:
            raise PortUnavailableError(f"writing to {self.port} failed: {error}") from error

    async def read(self, timeout: float) -> bytes:
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            # that arrives as the read completes, and the poller would never stop.
            async with asyncio.timeout(max(timeout, 0.0)):
                data = await self._reader.read(_READ_CHUNK)
        except TimeoutError:
            return b""
        except (OSError, serial.SerialException) as error:
            raise PortUnavailableError(f"reading from {self.port} failed: {error}") from error
        if not data:
            raise PortUnavailableError(
                f"{self.port} went away (end of stream): the adapter was unplugged or the "
                "remote end closed the connection"
            )
        return data

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError, serial.SerialException, ConnectionError, TimeoutError):
            # A peer that stopped reading (a hung bridge) would keep unsent bytes, and this
            # wait, forever: give it a moment, then drop the connection.
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self._writer.wait_closed()
            return
        self._writer.transport.abort()


def _split_tcp(port: str) -> tuple[str, int]:
    rest = port[len("tcp://") :].rstrip("/")
    host, sep, number = rest.rpartition(":")
    if not sep or not number.isdigit() or not host:
        raise PortUnavailableError(f"{port!r}: write a TCP port as tcp://host:port")
    return host.strip("[]"), int(number)


async def open_link(port: str, *, baud: int = 9600, enable: EnableLine = EnableLine.NONE) -> Link:
    """Open ``port``; with ``enable``, raise DTR or RTS to enable the MEP port."""
    try:
        if port.startswith("tcp://"):
            host, number = _split_tcp(port)
            reader, writer = await asyncio.open_connection(host, number)
        else:
            reader, writer = await serial_asyncio_fast.open_serial_connection(
                url=port, baudrate=baud, bytesize=8, parity="N", stopbits=1
            )
            _drive_enable(writer, enable)
    except (OSError, serial.SerialException, ValueError) as error:
        raise PortUnavailableError(
            f"cannot open {port}: {error}. Check the device name (ls /dev/serial/by-id/), "
            "that no other program holds it, and your permissions (group dialout)"
        ) from error
    return StreamLink(port, baud, reader, writer)


def _drive_enable(writer: asyncio.StreamWriter, enable: EnableLine) -> None:
    if enable is EnableLine.NONE:
        return
    device = writer.transport.get_extra_info("serial")
    if not isinstance(device, serial.SerialBase):
        return
    if enable is EnableLine.DTR:
        device.dtr = True
    else:
        device.rts = True
