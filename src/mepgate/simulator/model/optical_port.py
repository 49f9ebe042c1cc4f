"""The meter's optical-port settings: the denial-of-service timers, the lockout, the off switch.

They live in table bytes the decoders in :mod:`mepgate.tables` do not cover, so the model keeps
them as raw bytes and :func:`optical_settings` reads them back; a write over MEP or the
optical port changes what the optical server does.

* Gen 2/3 -- ET51 "MEP Device Configuration" (optical guide, ET51): offset 0 bit 0 "Enable
  Optical D.O.S. Timer" (True when shipped), offset 4 UINT16 "Optical Session Timeout" (600 s),
  offset 6 UINT16 "Optical Session Hold-Off" (300 s).  The MEP guide's prose calls the timer
  disabled by default while its table says True: the simulator ships it enabled, writes turn
  it off.
* Gen 4 -- ET55 "Meter Configuration" at A+41: bit 0 "Enable Optical D.O.S. Timer" (False when
  shipped), bit 1 "Disable Optical Port"; A+42 UINT16 timeout (600 s), A+44 UINT16 hold-off
  (300 s).  Firmware 4.30 and later: offset 22 "Optical Failed Authentication Lockout
  Threshold" and 23 "... Lockout Duration" in minutes (both 0 = off).

Table contents are LSB first (the meter's order), unlike C12.18 protocol fields.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_SESSION_TIMEOUT_S = 600
DEFAULT_HOLD_OFF_S = 300

ET51_ELEMENT_SIZE = 10
"""One "MEP Device Configuration" element: flags, health timeout (2), on-demand timeout,
optical session timeout (2), hold-off (2), MEP down reset duration, HAN flags."""
_ET51_DOS_FLAG = 0x01
_ET51_TIMEOUT = 4
_ET51_HOLD_OFF = 6

ET55_LOCKOUT_THRESHOLD = 22
ET55_LOCKOUT_MINUTES = 23
ET55_OPTICAL_FLAGS = 41  # from A
_ET55_DOS_FLAG = 0x01
_ET55_PORT_DISABLED_FLAG = 0x02
ET55_OPTICAL_SIZE = 5  # A+41 flags, A+42 timeout, A+44 hold-off


@dataclass(frozen=True, slots=True, kw_only=True)
class OpticalSettings:
    """What the optical server enforces, read from the tables above."""

    dos_enabled: bool = False
    session_timeout_s: int = DEFAULT_SESSION_TIMEOUT_S
    hold_off_s: int = DEFAULT_HOLD_OFF_S
    port_disabled: bool = False
    lockout_threshold: int = 0
    lockout_minutes: int = 0


def et51_default(channels: int) -> bytes:
    """ET51 as shipped: one element per MEP channel (ET11 "MEP Channel Count")."""
    element = bytearray(ET51_ELEMENT_SIZE)
    element[0] = _ET51_DOS_FLAG
    element[1:3] = (60).to_bytes(2, "little")  # MEP Health Timeout
    element[3] = 30  # On-demand and One-Time Read Timeout
    element[_ET51_TIMEOUT : _ET51_TIMEOUT + 2] = DEFAULT_SESSION_TIMEOUT_S.to_bytes(2, "little")
    element[_ET51_HOLD_OFF : _ET51_HOLD_OFF + 2] = DEFAULT_HOLD_OFF_S.to_bytes(2, "little")
    element[8] = 1  # MEP Down Reset Duration
    return bytes(element) * max(1, channels)


def et55_optical_default() -> bytes:
    """The five bytes at ET55 A+41 as shipped: timers off, port on, 600 s / 300 s."""
    return (
        bytes([0])
        + DEFAULT_SESSION_TIMEOUT_S.to_bytes(2, "little")
        + DEFAULT_HOLD_OFF_S.to_bytes(2, "little")
    )


def optical_settings(
    *, generation: int, firmware: str, et51: bytes | None, et55: bytes | None, et55_a: int | None
) -> OpticalSettings:
    """The settings in force, from the current table bytes (missing bytes: shipped values)."""
    lockout = (0, 0)
    if (
        et55 is not None
        and len(et55) > ET55_LOCKOUT_MINUTES
        and _firmware_at_least(firmware, (4, 30))
    ):
        lockout = (et55[ET55_LOCKOUT_THRESHOLD], et55[ET55_LOCKOUT_MINUTES])
    if generation >= 4:
        if et55 is None or et55_a is None or len(et55) < et55_a + 41 + ET55_OPTICAL_SIZE:
            block = et55_optical_default()
        else:
            start = et55_a + ET55_OPTICAL_FLAGS
            block = et55[start : start + ET55_OPTICAL_SIZE]
        return OpticalSettings(
            dos_enabled=bool(block[0] & _ET55_DOS_FLAG),
            port_disabled=bool(block[0] & _ET55_PORT_DISABLED_FLAG),
            session_timeout_s=int.from_bytes(block[1:3], "little"),
            hold_off_s=int.from_bytes(block[3:5], "little"),
            lockout_threshold=lockout[0],
            lockout_minutes=lockout[1],
        )
    element = et51[:ET51_ELEMENT_SIZE] if et51 is not None else b""
    if len(element) < ET51_ELEMENT_SIZE:
        element = et51_default(1)
    return OpticalSettings(
        dos_enabled=bool(element[0] & _ET51_DOS_FLAG),
        session_timeout_s=int.from_bytes(element[_ET51_TIMEOUT : _ET51_TIMEOUT + 2], "little"),
        hold_off_s=int.from_bytes(element[_ET51_HOLD_OFF : _ET51_HOLD_OFF + 2], "little"),
        lockout_threshold=lockout[0],
        lockout_minutes=lockout[1],
    )


def _firmware_at_least(firmware: str, version: tuple[int, int]) -> bool:
    parts = firmware.split(".")
    try:
        major, minor = int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        return False
    return (major, minor) >= version
