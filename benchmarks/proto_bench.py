"""How much of a maximum-size frame's wire time the protocol core costs.

Digests, encodes and decodes the largest MEP exchange (476 bytes after the length field) and
prints the CPU time per operation as a fraction of that frame's wire time at 9600 baud 8N1
(10 bits per byte).  Run: ``python benchmarks/proto_bench.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

from mepgate.proto import AccessLevel, ReadRequest, SequenceWindow, check_request, digest
from mepgate.proto.constants import DEFAULT_BAUD, MAX_MESSAGE, MAX_READ_DATA, wire_time
from mepgate.proto.frames import prepare_request
from mepgate.proto.messages import encode_read_reply
from mepgate.proto.server import Accepted

KEY = b"A1B2C3D4E5F6A7B8C9D0"


def best_of(repeats: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(20):
            fn()
        best = min(best, (time.perf_counter() - start) / 20)
    return best


def main() -> None:
    request = ReadRequest(table_id=0x1C, offset=0, count=MAX_READ_DATA)
    frame_time = wire_time(2 + MAX_MESSAGE, DEFAULT_BAUD)
    print(f"maximum frame: {2 + MAX_MESSAGE} bytes, {frame_time * 1000:.1f} ms on the wire")
    for encrypt in (False, True):
        exchange = prepare_request(request.to_bytes(), 41, KEY, encrypt=encrypt)
        verdict = check_request(
            exchange.frame, {AccessLevel.BASIC: KEY}, SequenceWindow(last_accepted=40)
        )
        if not isinstance(verdict, Accepted):
            raise SystemExit("benchmark set-up failed: request not accepted")
        reply = verdict.reply(encode_read_reply(bytes(request.count)))
        if len(reply) != 2 + MAX_MESSAGE:
            raise SystemExit(f"benchmark set-up failed: reply is {len(reply)} bytes")
        body = reply[2:]
        message = request.to_bytes()
        figures = {
            "digest": best_of(5, partial(digest, KEY, body)),
            "encode request": best_of(
                5, partial(prepare_request, message, 41, KEY, encrypt=encrypt)
            ),
            "decode response": best_of(5, partial(exchange.decode, reply, KEY)),
        }
        mode = "encrypted" if encrypt else "plain"
        for name, seconds in figures.items():
            print(
                f"{mode:9} {name:16} {seconds * 1e6:8.0f} us = "
                f"{seconds / frame_time:.4f} of the frame's wire time"
            )


if __name__ == "__main__":
    main()
