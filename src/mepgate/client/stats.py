"""Counters of what happened on the link: for ``doctor``, the poller and benchmarks."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(slots=True)
class LinkStatistics:
    """Everything the client saw on the line since it was created (reconnects included)."""

    requests: int = 0  # operations started (a read, a write, a TLS handshake step)
    frames_sent: int = 0  # request frames put on the line, resends included
    resends: int = 0  # identical frames sent again after a timeout
    replies: int = 0  # replies that verified and were used
    timeouts: int = 0  # sends that got no usable reply in time
    damaged_replies: int = 0  # frames whose digest or content did not verify (discarded)
    garbage_bytes: int = 0  # bytes that never formed a frame
    echoed_frames: int = 0  # our own request frames read back
    alerts: int = 0  # ``00 00`` alert sequences from the meter
    alerts_serviced: int = 0
    sequence_resyncs: int = 0  # 0x0C replies (sequence number adopted)
    auth_failures: int = 0  # 0x0B replies
    idt_changes: int = 0  # reconfigurations seen through ET04's IDT version
    tls_handshakes: int = 0
    reconnects: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
