"""What a failed link most likely means, in plain language.

The client records what the line did while an operation failed
(:class:`~mepgate.client.stats.Observation`) and
:func:`diagnose` names the likely cause; every :class:`~mepgate.client.errors.MeterLinkError`
carries one, and ``mepgate doctor`` prints it.  The mapping follows what installers meet in
the field (see the design notes): silence, an echo, garbage, 0x0B, 0x0C storms.
"""

from __future__ import annotations

from enum import Enum

from mepgate.client.stats import Observation


class Diagnosis(Enum):
    OK = "ok"
    NO_ANSWER = "no-answer"
    ECHO = "echo"
    GARBLED = "garbled"
    NOISY = "noisy"
    WRONG_KEY = "wrong-key"
    SEQUENCE_CONFLICT = "sequence-conflict"
    PORT_UNAVAILABLE = "port-unavailable"
    PORT_BUSY = "port-busy"
    BAD_REPLY = "bad-reply"
    TLS_FAILED = "tls-failed"
    OPTICAL_SESSION = "optical-session"  # MEP side: a Gen 2/3 meter busy with its optical port
    # The optical port's own (C12.18):
    NAK_STORM = "nak-storm"
    KEY_REFUSED = "key-refused"
    LOCKED_OUT = "locked-out"
    OPTICAL_DISABLED = "optical-disabled"
    HELD_OFF = "held-off"
    SHARED_PORT = "shared-port"

    def advice(self, interface: str = "mep") -> str:
        """What it means and what to do, in the words of ``interface`` (``mep`` or
        ``optical``: silence means a loose wire on one and a misplaced probe on the other)."""
        if interface == "optical":
            return _OPTICAL_ADVICE.get(self) or _ADVICE[self]
        return _ADVICE.get(self) or _OPTICAL_ADVICE[self]


KEY_ADVICE = (
    "check the MBK: enter the 20 characters exactly as the grid company sent them "
    "(they look like hex but are not; do not convert them to hex)"
)

_ADVICE = {
    Diagnosis.OK: "the meter answers and accepts the key",
    Diagnosis.NO_ANSWER: (
        "the meter does not answer: not a single byte came back. Check the wiring (TX, RX, "
        "ground) and the ENABLE line (--enable dtr|rts if your adapter drives it). The MEP "
        "port may also be disabled by the grid company: some disable it by default and "
        "reopen it on request (usually a form on their website)"
    ),
    Diagnosis.ECHO: (
        "our own bytes come back unchanged: TX and RX are bridged (a loopback, a wrong "
        "adapter mode, or TX wired to RX) and the meter is not heard. Check the wiring"
    ),
    Diagnosis.GARBLED: (
        "bytes arrive but never form a MEP frame: the baud rate is wrong (the port runs at "
        "9600 unless ET13 was changed; try --baud) or the level shifter is missing or wrong "
        "(the MEP port needs an RS-232 level shifter such as a MAX3232)"
    ),
    Diagnosis.NOISY: (
        "the meter answers, but replies get lost or arrive damaged (digest errors): check the "
        "cable, its length and shielding, the ground, and the level shifter's supply"
    ),
    Diagnosis.WRONG_KEY: f"authentication failure (0x0B): the meter rejects the key; {KEY_ADVICE}",
    Diagnosis.SEQUENCE_CONFLICT: (
        "the meter keeps rejecting our sequence number (0x0C): another MEP client is using "
        "the port, or an optical-port session is active (Gen 2/3 meters share one UART). "
        "Stop the other client or wait for the optical session to end"
    ),
    Diagnosis.PORT_UNAVAILABLE: (
        "the port cannot be used: check the device name or address, the cable, and that no "
        "other program holds the port"
    ),
    Diagnosis.PORT_BUSY: (
        "the serial server (ser2net, ESP-Link) accepts the connection and closes it at once: "
        "another client holds its port. Stop the other client (another mepgate, a Home "
        "Assistant integration, a terminal) or give each its own serial server port"
    ),
    Diagnosis.BAD_REPLY: (
        "the meter answers with valid frames but not what was asked (a partial read of the "
        "wrong size, a table that never ends): its firmware may be faulty, or the device on "
        "this port is not a meter's MEP port. Report it with `mepgate dump` and --trace"
    ),
    Diagnosis.TLS_FAILED: (
        "the meter requires TLS and the TLS handshake failed: the meter rejects the key or its "
        f"identity (MBK or MAK, see --key-id); {KEY_ADVICE}"
    ),
    Diagnosis.OPTICAL_SESSION: (
        "an optical session is active on the meter: it answered on its MEP port and then fell "
        "silent, as a Gen 2/3 meter does while its optical port is in use (the two share one "
        "serial port, and MEP is switched out until the optical session ends). mepgate goes "
        "on when it ends; if nobody is reading the optical port, check the MEP cable"
    ),
}


_OPTICAL_KEY_ADVICE = (
    "the optical port takes one of the meter's three keys: the unique key (MK, all access), "
    "the provisioning key (PK, can be disabled) or the read-only key (RK, reads everything "
    "but keys, calibration and download data). Grid companies that allow optical reading "
    "usually give the RK. Enter its 20 characters exactly as sent (they are sent as ASCII, "
    "not converted), or hex: followed by 40 hex digits if you were given the bytes"
)

_OPTICAL_ADVICE = {
    Diagnosis.OK: "the meter answers on the optical port and accepts the key",
    Diagnosis.NO_ANSWER: (
        "the meter does not answer on the optical port: not a single byte came back. Check "
        "that the probe sits on the meter's optical port (the two small windows on the front), "
        "that it is aligned and the right way round (the cable usually points down), and that "
        "it is the probe's port you gave (--port). A meter whose optical port the grid "
        "company disabled (ET55) or that holds it off after a session timeout is silent too"
    ),
    Diagnosis.ECHO: (
        "only our own bytes come back: the probe echoes what it sends (a cheap IR head) and "
        "the meter is not heard. Check the probe's position and alignment on the optical port"
    ),
    Diagnosis.GARBLED: (
        "bytes arrive but never form a C12.18 packet: the baud rate is wrong (the optical "
        "port runs at 9600; try --baud 9600) or the probe is not an IR head for this port"
    ),
    Diagnosis.NOISY: (
        "the meter answers, but packets get lost or arrive damaged: re-seat and align the "
        "probe, shade it from sunlight and lamps (ambient light disturbs infrared), and keep "
        "its cable still"
    ),
    Diagnosis.NAK_STORM: (
        "the meter keeps answering our packets with NAK (it receives them damaged): the probe "
        "is misaligned or disturbed by ambient light. Re-seat it on the optical port, turn it "
        "the right way round, and shade it from sunlight and lamps"
    ),
    Diagnosis.WRONG_KEY: f"the meter refused the key; {_OPTICAL_KEY_ADVICE}",
    Diagnosis.KEY_REFUSED: f"the meter refused the key (C12.18 Security); {_OPTICAL_KEY_ADVICE}",
    Diagnosis.LOCKED_OUT: (
        "the meter has locked the optical port after too many refused keys (firmware 4.30 "
        "and later, set by the grid company in ET55): wait until the lockout ends, then try "
        f"once with the right key. {_OPTICAL_KEY_ADVICE}"
    ),
    Diagnosis.OPTICAL_DISABLED: (
        "the grid company has disabled the meter's optical port (ET55 \"Disable Optical "
        'Port"): only they can enable it again. Use the MEP port if it is open, or ask them'
    ),
    Diagnosis.HELD_OFF: (
        "the meter ended the optical session at its session timeout and ignores the optical "
        "port for its hold-off time (300 s by default): mepgate waits for it to pass and "
        "renews its sessions earlier from then on. Nothing needs doing"
    ),
    Diagnosis.SHARED_PORT: (
        "bytes that are not C12.18 arrive and the meter does not answer: a MEP device is "
        "using the meter's shared serial port (Gen 2/3 meters have one UART for MEP and "
        "optical, and MEP has priority). Stop the MEP client or read through it instead"
    ),
    Diagnosis.BAD_REPLY: (
        "the meter answers with valid packets but not what was asked: its firmware may be "
        "faulty. Report it with `mepgate dump` and --trace"
    ),
    Diagnosis.PORT_UNAVAILABLE: (
        "the probe's port cannot be used: check the device name (a USB IR head shows up as "
        "/dev/ttyUSB0 or similar), that it is plugged in, and that no other program holds it"
    ),
}


def diagnose_optical(seen: Observation) -> Diagnosis:
    """:func:`diagnose` for the optical port: the meter's NAKs, MEP frames among the bytes
    that are not C12.18 (MEP traffic on a shared UART) and refused keys are evidence of their
    own."""
    answered = seen.replies or seen.busy_answers or seen.key_refusals
    if seen.key_refusals and not seen.replies:
        return Diagnosis.KEY_REFUSED
    if answered or seen.damaged_replies or seen.duplicates:
        lossy = seen.timeouts or seen.naks > 1 or seen.damaged_replies
        return Diagnosis.NOISY if lossy else Diagnosis.OK
    if seen.mep_frames:
        # MEP traffic explains NAKs too: each MEP frame switches the shared UART back, and
        # the packet that switches it to optical again is lost (the meter NAKs it).
        return Diagnosis.SHARED_PORT
    if seen.naks:
        return Diagnosis.NAK_STORM
    if seen.skipped_bytes:
        # Not MEP: what is left of the meter's packets after heavy damage (their start or
        # length hit), or noise.
        return Diagnosis.NOISY
    if seen.echoed_frames:
        return Diagnosis.ECHO
    if seen.bytes_received == 0:
        return Diagnosis.NO_ANSWER
    return Diagnosis.GARBLED


def diagnose(seen: Observation) -> Diagnosis:
    """The most likely cause of a failure, from what the line did.

    Each name needs its evidence: a wrong key, confirmed 0x0B replies (or replies that fail
    their digest the same way every time: noise never repeats itself); another client, 0x0C
    to numbers at their first send on an otherwise clean line (a 0x0C to a resent frame is
    the meter telling us it got the first copy); a noisy line, frames lost or damaged while the
    meter answers; garbled, bytes that never form a frame.
    """
    # A reply that came after its (learnt) timeout is late, not lost.
    lossy = seen.timeouts > seen.late_replies or seen.damaged_replies > seen.repeated_damage
    if seen.auth_failures and not seen.replies:
        return Diagnosis.WRONG_KEY
    if seen.repeated_damage and not seen.replies and not seen.sequence_resyncs:
        return Diagnosis.WRONG_KEY
    if seen.sequence_conflicts and not seen.replies and not lossy:
        return Diagnosis.SEQUENCE_CONFLICT
    answered = seen.replies or seen.sequence_resyncs or seen.auth_failures
    if answered or seen.damaged_replies:
        return Diagnosis.NOISY if lossy else Diagnosis.OK
    if seen.echoed_frames:
        return Diagnosis.ECHO
    if seen.bytes_received == 0:
        return Diagnosis.NO_ANSWER
    return Diagnosis.GARBLED
