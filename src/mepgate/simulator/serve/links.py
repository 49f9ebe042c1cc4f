"""The simulator's front ends: a TCP port and a pseudo-terminal, each carrying one
:class:`~mepgate.simulator.serve.port.MeterPort` to one client at a time."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import socket
import tty

from mepgate.simulator.serve.port import ServedPort

log = logging.getLogger(__name__)

READ_SIZE = 4096


class StreamLink:
    """A TCP connection as a :class:`~mepgate.simulator.serve.port.Link`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self) -> bytes:
        return await self._reader.read(READ_SIZE)

    async def write(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()


class TcpFrontEnd:
    """``tcp://host:port``: one connection at a time.  A second one is accepted and closed at
    once, as serial servers (ser2net, ESP-Link) do while their port is in use: the line is one
    UART, and a waiting client would only see silence."""

    def __init__(self, port: ServedPort) -> None:
        self.port = port
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> str:
        """Listen; returns the URL with the port actually bound (``port=0`` picks one)."""
        self._server = await asyncio.start_server(self._serve, host, port)
        bound = self._server.sockets[0].getsockname()
        shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        return f"tcp://{shown}:{bound[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._connections:
            self.port.stats.refused += 1
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            return
        sock = writer.get_extra_info("socket")
        if sock is not None:
            # Paced bytes must leave when written, not when Nagle decides.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._connections.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self.port.serve(StreamLink(reader, writer))
        finally:
            if task is not None:
                self._tasks.discard(task)
            self._connections.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._connections):
                writer.close()
            # Python 3.11's wait_closed() does not wait for the connection handlers: let them
            # see their closed connection and end, or the loop closes with them pending.
            # (Cancelling them instead makes asyncio's stream callback log a traceback.)
            if self._tasks:
                await asyncio.wait(set(self._tasks), timeout=1.0)
            await self._server.wait_closed()


class PtyLink:
    """The master side of a pseudo-terminal as a :class:`~mepgate.simulator.serve.port.Link`."""

    def __init__(self, master: int) -> None:
        self._master = master
        self._incoming: asyncio.Queue[bytes] = asyncio.Queue()
        asyncio.get_running_loop().add_reader(master, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self._master, READ_SIZE)
        except BlockingIOError:
            return
        except OSError as error:
            if error.errno != errno.EIO:
                raise
            return  # no client has the device open (we keep a slave fd, so rarely seen)
        self._incoming.put_nowait(data)

    async def read(self) -> bytes:
        return await self._incoming.get()

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._master, view)
            except BlockingIOError:
                # Nobody drains the device: a real line drops what nobody listens to.
                log.debug("pty full, %d bytes dropped", len(view))
                return
            view = view[written:]

    def close(self) -> None:
        with contextlib.suppress(ValueError, OSError):
            asyncio.get_running_loop().remove_reader(self._master)


class PtyFrontEnd:
    """A pseudo-terminal that looks like a serial device (``/dev/pts/N``) to the client.

    The simulator keeps the device side open itself, so the line exists (and keeps its raw
    settings) while clients open and close it; bytes the meter sends while no client has it
    open wait in the device's input queue, so a client should flush its input on opening.
    """

    def __init__(self, port: ServedPort) -> None:
        self.port = port
        self._fds: tuple[int, int] | None = None
        self._task: asyncio.Task[None] | None = None
        self._link: PtyLink | None = None

    async def start(self) -> str:
        """Open the pseudo-terminal and start serving; returns the device path."""
        master, slave = os.openpty()
        self._fds = (master, slave)
        tty.setraw(slave)  # no echo, no line editing: bytes pass as on a UART
        flags = fcntl.fcntl(master, fcntl.F_GETFL)
        fcntl.fcntl(master, fcntl.F_SETFL, flags | os.O_NONBLOCK)
        self._link = PtyLink(master)
        self._task = asyncio.create_task(self.port.serve(self._link))
        return os.ttyname(slave)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._link is not None:
            self._link.close()
        for fd in self._fds or ():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = None
