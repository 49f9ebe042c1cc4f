"""A blocking, timestamped view of a simulator's line, for tests and benchmarks.

Not a MEP client (that is :mod:`mepgate.client`): no retries, no sequence bookkeeping.  It
writes exactly the bytes it is given and reports what came back and *when*, byte by byte,
so tests can check the wire behaviour itself -- segment pauses, alert pacing, faults.
"""

from __future__ import annotations

import os
import select
import socket
import termios
import time
import tty
from collections import deque
from dataclasses import dataclass
from urllib.parse import urlsplit

from mepgate.errors import LocalProtocolError, MepgateError
from mepgate.proto import NEED_DATA, Alert, Exchange, Frame, FrameBuffer, Response, prepare_request
from mepgate.proto.errors import FramingError

READ_SIZE = 4096


class ProbeTimeoutError(MepgateError, TimeoutError):
    """Nothing (or not enough) arrived on the line in time."""


@dataclass(frozen=True, slots=True)
class Received:
    """A frame or alert off the line, with the arrival times of its first and last bytes."""

    event: Frame | Alert
    first: float
    last: float

    @property
    def wire(self) -> bytes:
        return self.event.wire if isinstance(self.event, Frame) else b"\x00\x00"


class LineProbe:
    """One end of a line to a simulator: ``tcp://host:port`` or a pty device path."""

    def __init__(self, fd: int, *, sock: socket.socket | None = None) -> None:
        self._fd = fd
        self._sock = sock
        self._frames = FrameBuffer(minimum=1)
        self._times: deque[float] = deque()  # arrival time of each byte held by _frames
        self.garbage = 0  # bytes the framer dropped

    @classmethod
    def open(cls, where: str) -> LineProbe:
        if where.startswith("tcp://"):
            parts = urlsplit(where)
            if parts.hostname is None or parts.port is None:
                raise LocalProtocolError(f"expected tcp://host:port, got {where!r}")
            sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            return cls(sock.fileno(), sock=sock)
        fd = os.open(where, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(fd)
        termios.tcflush(fd, termios.TCIFLUSH)  # what the meter sent while nobody listened
        return cls(fd)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        else:
            os.close(self._fd)

    def __enter__(self) -> LineProbe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- raw bytes -----------------------------------------------------------------------------
    def send(self, data: bytes) -> float:
        """Write ``data``; returns the time the write completed."""
        view = memoryview(data)
        while view:
            select.select([], [self._fd], [], 1.0)
            try:
                written = os.write(self._fd, view) if self._sock is None else self._sock.send(view)
            except BlockingIOError:
                continue
            view = view[written:]
        return time.monotonic()

    def read_raw(self, timeout: float) -> list[tuple[float, bytes]]:
        """Every chunk that arrives until the line has been quiet for ``timeout`` seconds."""
        chunks: list[tuple[float, bytes]] = []
        while (chunk := self._read_chunk(timeout)) is not None:
            chunks.append((time.monotonic(), chunk))
        return chunks

    def _read_chunk(self, timeout: float) -> bytes | None:
        ready, _, _ = select.select([self._fd], [], [], max(0.0, timeout))
        if not ready:
            return None
        try:
            data = (
                os.read(self._fd, READ_SIZE) if self._sock is None else self._sock.recv(READ_SIZE)
            )
        except BlockingIOError:
            return b""
        if not data:
            raise ConnectionError("the simulator closed the line")
        return data

    # -- frames --------------------------------------------------------------------------------
    def next(self, timeout: float = 1.0) -> Received:
        """The next frame or alert, waiting at most ``timeout`` seconds for it to complete."""
        deadline = time.monotonic() + timeout
        while True:
            before = self._frames.pending
            try:
                event = self._frames.next_event()
            except FramingError as error:
                self.garbage += error.discarded
                for _ in range(error.discarded):
                    self._times.popleft()
                continue
            if event is not NEED_DATA:
                assert not isinstance(event, type(NEED_DATA))
                size = before - self._frames.pending
                times = [self._times.popleft() for _ in range(size)]
                return Received(event=event, first=times[0], last=times[-1])
            remaining = deadline - time.monotonic()
            chunk = self._read_chunk(remaining) if remaining > 0 else None
            if chunk is None:
                raise ProbeTimeoutError(f"no whole frame within {timeout} s")
            now = time.monotonic()
            self._frames.receive_data(chunk)
            self._times.extend([now] * len(chunk))

    def next_frame(self, timeout: float = 1.0) -> Received:
        """The next frame, skipping alerts."""
        deadline = time.monotonic() + timeout
        while True:
            received = self.next(max(0.0, deadline - time.monotonic()))
            if isinstance(received.event, Frame):
                return received

    def exchange(self, request: bytes, timeout: float = 1.0) -> Received:
        """Send a request frame and return the next frame that comes back."""
        self.send(request)
        return self.next_frame(timeout)

    def request(
        self,
        message: bytes,
        *,
        key: bytes,
        seq: int,
        encrypt: bool = False,
        timeout: float = 1.0,
    ) -> Response:
        """A whole RC4-protected request/response; the reply's digest is verified."""
        exchange: Exchange = prepare_request(message, seq, key, encrypt=encrypt)
        return exchange.decode(self.exchange(exchange.frame, timeout).wire, key)
