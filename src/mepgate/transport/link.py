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

from mepgate.errors import PortBusyError, PortUnavailableError

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
CONNECT_TIMEOUT = 10.0
"""Seconds a ``tcp://`` connection may take: an address that drops packets would otherwise
hold the caller for the system's SYN timeout (minutes)."""
BUSY_WITHIN = 2.0
"""A serial server that closes a connection this soon, before sending anything, refused it
(ser2net does so while another client holds its port)."""


class StreamLink:
    """A :class:`Link` over an asyncio reader/writer pair."""

    def __init__(
        self, port: str, baud: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.port = port
        self.baud = baud
        self._reader = reader
        self._writer = writer
        self._opened = asyncio.get_running_loop().time()
        self._received = False

    def __repr__(self) -> str:
        return f"StreamLink({self.port!r}, baud={self.baud})"

    async def write(self, data: bytes) -> None:
        if self._writer.is_closing():
            raise self._gone("the connection is closed")
        try:
            self._writer.write(data)
            await self._writer.drain()
        except ConnectionError as error:
            raise self._gone(f"writing failed: {error}") from error
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
        except ConnectionError as error:
            raise self._gone(f"reading failed: {error}") from error
        except (OSError, serial.SerialException) as error:
            raise PortUnavailableError(f"reading from {self.port} failed: {error}") from error
        if not data:
            raise self._gone("end of stream")
        self._received = True
        return data

    def _gone(self, how: str) -> PortUnavailableError:
        """The other end closed or reset the connection: at once after opening, a serial
        server whose port is busy (ser2net refuses a second client so); later, an adapter or
        bridge that went away."""
        quick = asyncio.get_running_loop().time() - self._opened < BUSY_WITHIN
        if self.port.startswith("tcp://") and quick and not self._received:
            return PortBusyError(
                f"{self.port} closed the connection at once ({how}): the serial server's port "
                "is busy (another client is connected to it) or it refuses this address"
            )
        return PortUnavailableError(
            f"{self.port} went away ({how}): the adapter was unplugged or the remote end "
            "closed the connection"
        )

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError, serial.SerialException, ConnectionError, TimeoutError):
            # A peer that stopped reading (a hung bridge) would keep unsent bytes, and this
            # wait, forever: give it a moment, then drop the connection.
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self._writer.wait_closed()
            return
        self._writer.transport.abort()


def split_tcp(port: str) -> tuple[str, int]:
    """``tcp://host:port`` as (host, port); raises :class:`PortUnavailableError` naming what
    is wrong with it."""
    rest = port[len("tcp://") :].rstrip("/")
    host, sep, number = rest.rpartition(":")
    if not sep or not number.isdigit() or not host or not 0 < int(number) < 65536:
        raise PortUnavailableError(
            f"{port!r}: write a TCP port as tcp://host:port, the port a number from 1 to 65535"
        )
    return host.strip("[]"), int(number)


async def open_link(port: str, *, baud: int = 9600, enable: EnableLine = EnableLine.NONE) -> Link:
    """Open ``port``; with ``enable``, raise DTR or RTS to enable the MEP port."""
    if port.startswith("tcp://"):
        reader, writer = await _connect_tcp(port)
        return StreamLink(port, baud, reader, writer)
    try:
        reader, writer = await serial_asyncio_fast.open_serial_connection(
            url=port, baudrate=baud, bytesize=8, parity="N", stopbits=1
        )
        _drive_enable(writer, enable)
    except (OSError, serial.SerialException, ValueError) as error:
        raise PortUnavailableError(
            f"cannot open {port}: {_why(error)}. Check the device name (ls /dev/serial/by-id/), "
            "that no other program holds it, and your permissions (group dialout)"
        ) from error
    return StreamLink(port, baud, reader, writer)


async def _connect_tcp(port: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, number = split_tcp(port)
    where = f"{host}:{number}"
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            return await asyncio.open_connection(host, number)
    except TimeoutError:
        raise PortUnavailableError(
            f"cannot connect to {where}: no answer within {CONNECT_TIMEOUT:g} s. Check the "
            "address and that the serial server (ser2net, ESP-Link) is on the network"
        ) from None
    except ConnectionRefusedError:
        raise PortUnavailableError(
            f"cannot connect to {where}: connection refused. Check that the serial server "
            "(ser2net, ESP-Link) is running and listens on that port"
        ) from None
    except OSError as error:
        raise PortUnavailableError(
            f"cannot connect to {where}: {_why(error)}. Check the host name or address"
        ) from None


def _why(error: BaseException) -> str:
    """An OS error's own words, without Python's ``[Errno N]`` decoration."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.rstrip(".")
    return str(error)


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
