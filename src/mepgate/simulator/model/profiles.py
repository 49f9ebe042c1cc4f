"""The simulator's meter profiles: a :class:`mepgate.tables.profiles.MeterProfile` (dimensions)
plus what the simulator needs beyond the tables (model name, ratings, the reconfiguration).

Model names are illustrative (Echelon/NES style, 8 characters for BT01 "Model").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mepgate.errors import LocalProtocolError
from mepgate.tables.profiles import MeterProfile, gen3_1phase, gen3_3phase, gen4_3phase


class UnknownProfileError(LocalProtocolError):
    """A profile name the simulator does not know."""


@dataclass(frozen=True, kw_only=True, slots=True)
class SimProfile:
    """One kind of simulated meter."""

    meter: MeterProfile
    model: str  # BT01 "Model", at most 8 characters
    program_id: bytes  # ET04 "Program ID" (8 bytes): changes with the firmware image
    max_current_a: int
    reconfigured_present_values: int  # BT21.9 after a reconfiguration (and back again)

    @property
    def name(self) -> str:
        return self.meter.name

    @property
    def firmware_word(self) -> int:
        """BT01 bytes 14..15 as one word: major (4 bits), minor (7), build (5)."""
        major, minor = (int(part) for part in self.meter.firmware.split(".")[:2])
        return major << 12 | minor << 5


def _gen4_3phase() -> SimProfile:
    # 4.10 had 75 present values (GUIDE_PRESENT_VALUE_SOURCES' docstring).
    return SimProfile(
        meter=gen4_3phase(),
        model="83334-3I",
        program_id=bytes.fromhex("4e45530430000001"),
        max_current_a=100,
        reconfigured_present_values=75,
    )


def _gen3_3phase() -> SimProfile:
    # 3.50 had 41 present values.
    return SimProfile(
        meter=gen3_3phase(),
        model="83331-3I",
        program_id=bytes.fromhex("454c4f4e03700001"),
        max_current_a=80,
        reconfigured_present_values=41,
    )


def _gen3_1phase() -> SimProfile:
    return SimProfile(
        meter=gen3_1phase(),
        model="83321-1I",
        program_id=bytes.fromhex("454c4f4e03700002"),
        max_current_a=80,
        reconfigured_present_values=41,
    )


SIM_PROFILES: dict[str, Callable[[], SimProfile]] = {
    "gen4-3phase": _gen4_3phase,
    "gen3-3phase": _gen3_3phase,
    "gen3-1phase": _gen3_1phase,
}


def sim_profile(name: str) -> SimProfile:
    """The profile called ``name``; :class:`UnknownProfileError` lists the known ones."""
    try:
        return SIM_PROFILES[name]()
    except KeyError:
        raise UnknownProfileError(
            f"unknown meter profile {name!r}; choose one of: {', '.join(sorted(SIM_PROFILES))}"
        ) from None
