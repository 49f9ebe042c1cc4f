"""What happened on the link: per operation (:class:`Observation`) and in total
(:class:`LinkStatistics`).

A request's state machine writes only its :class:`Observation`; when the request ends, the
session adds it to the client's :class:`LinkStatistics` (:meth:`LinkStatistics.absorb`).  So
every event is recorded once, and the diagnosis of a failed request sees just that request.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass(slots=True)
class Observation:
    """What the line did during one operation (all sends of one request)."""

    frames_sent: int = 0  # request frames put on the line, resends included (optical:
    # our packets and the NAKs asking for one of the meter's again)
    bytes_sent: int = 0
    bytes_received: int = 0
    resends: int = 0  # requests sent again: after a timeout (a write or procedure as the
    # identical frame, a read under the next number) or a damaged reply
    replies: int = 0  # replies that verified and were used
    timeouts: int = 0  # sends that got no usable reply in time
    damaged_replies: int = 0  # frames whose digest or content did not verify (discarded)
    late_replies: int = 0  # replies to a request given up after a timeout (recognised, dropped)
    garbage_bytes: int = 0  # bytes that never formed a frame
    echoed_frames: int = 0  # our own request frames read back
    alerts: int = 0  # ``00 00`` alert sequences from the meter
    sequence_resyncs: int = 0  # 0x0C replies (sequence number adopted)
    sequence_conflicts: int = 0  # ... of them to a number at its first send: someone else's
    repeated_damage: int = 0  # the same damaged reply again: not noise, which varies
    auth_failures: int = 0  # 0x0B replies
    idt_changes: int = 0  # reconfigurations seen through ET04's IDT version
    tls_handshakes: int = 0
    # The optical port (C12.18):
    naks: int = 0  # our packets the meter answered with a NAK
    duplicates: int = 0  # response packets received twice (acknowledged again, dropped)
    skipped_bytes: int = 0  # bytes that are not C12.18 (MEP traffic on a shared UART, noise)
    mep_frames: int = 0  # whole MEP frames among them (MEP traffic on a shared UART)
    busy_answers: int = 0  # bsy / dnr answers (waited for, asked again)
    key_refusals: int = 0  # Security services refused
    sessions: int = 0  # C12.18 sessions started (Ident to Security)

    def add(self, other: Observation) -> None:
        for name in _OBSERVED:
            setattr(self, name, getattr(self, name) + getattr(other, name))


_OBSERVED = tuple(f.name for f in fields(Observation))


@dataclass(slots=True)
class LinkStatistics(Observation):
    """Everything the client saw on the line since it was created (reconnects included)."""

    requests: int = 0  # operations started (a read, a write, a TLS handshake step)
    alerts_serviced: int = 0
    reconnects: int = 0

    def absorb(self, seen: Observation) -> None:
        """Add what one operation observed."""
        Observation.add(self, seen)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
