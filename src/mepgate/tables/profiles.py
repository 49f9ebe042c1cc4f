"""Realistic :class:`~mepgate.tables.dimensions.Dimensions` for the simulator and for tests.

Where the numbers come from (MEP guide unless stated):

``gen4_3phase`` -- firmware 4.30, three phases.  BT21: flags as in the guide's BT21 example
  (0x3F: season, date/time, demand reset counter and lock, cumulative and continuous demand;
  0x0E: self-read sequence number, daily and weekly self-reads), 12 self-reads, 19 summations
  ("set to 19" for firmware 4.0+), 8 demands, 0 coincident values, 1 occurrence, 4 tiers,
  8 present demands, 84 present values (BT28 list, values 0..83 as of 4.30).  ET11: the
  guide's default values with 6 devices and 2 MEP channels (4.0+), 3 error screens (4.30).
``gen3_3phase`` -- firmware 3.70..3.8x, three phases: the guide's BT21 example (15 summations,
  8 demands, 4 tiers, 8 present demands) but with the 55 present values of firmware 3.70
  (the example's 26 belong to firmware 3.10..3.4x).  ET11 without the 4.0+ fields, 5 devices.
``gen3_1phase`` -- firmware 3.70, one phase, demand not configured: BT21 with 11 summations and
  no demand registers (the shape of the guide's RC4 Example 1, whose 44-byte BT23 read is
  exactly 11 summations with no demand reset counter).  The guide describes no separate
  single-phase BT27, so the 55 present values are the same; L2/L3 values read zero.

All share: BT61 with one data set (15-minute intervals, 96 per block, 4 channels, 100 blocks;
the guide gives only maxima: 1440 intervals, 16 channels), BT71 with 2-byte event arguments
and 100 history entries (BT71 is not in the guide: an assumption), BT00.17 = 9 manufacturer
status bytes (the guide's value), ET55 energy register unit 1 (the default).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from mepgate.tables.dimensions import (
    ActualRegister,
    Dimensions,
    MfgDimensions,
    PresentRegisterSelection,
)
from mepgate.tables.events import ActualLog
from mepgate.tables.load_profile import ActualLoadProfile, DataSetDimension
from mepgate.tables.registers import GUIDE_PRESENT_VALUE_SOURCES


@dataclass(frozen=True, kw_only=True, slots=True)
class MeterProfile:
    """A kind of meter: its dimensions plus what the dimension tables do not say."""

    name: str
    firmware: str
    phases: int
    dims: Dimensions


#: Demand sources used for the present demands (an assumption: Fwd/Rev/Imp/Exp W and the
#: four quadrant VAr sources; the guide marks BT27 as fixed but lists no default).
_DEMAND_SOURCES = (8, 9, 10, 11, 104, 105, 106, 107)


def _register(*, summations: int, demand: bool, present_values: int) -> ActualRegister:
    return ActualRegister(
        season_info_field=True,
        date_time_field=True,
        demand_reset_counter=demand,
        demand_reset_lock=demand,
        cumulative_demand=demand,
        continuous_cumulative_demand=demand,
        time_remaining=False,
        self_read_inhibit_overflow=False,
        self_read_sequence_number=True,
        daily_self_read=True,
        weekly_self_read=True,
        self_read_demand_reset=0,
        number_of_self_reads=12,
        number_of_summations=summations,
        number_of_demands=8 if demand else 0,
        number_of_coincident_values=0,
        number_of_occurrences=1 if demand else 0,
        number_of_tiers=4,
        number_of_present_demands=8 if demand else 0,
        number_of_present_values=present_values,
    )


def _mfg(*, gen4: bool) -> MfgDimensions:
    return MfgDimensions(
        number_of_devices=6 if gen4 else 5,
        config_entry_size=66,
        status_entry_size=36,
        on_demand_queue_size=5,
        on_demand_entry_size=6,
        data_entry_size=517,
        transaction_request_length=896,
        transaction_response_length=1785,
        on_demand_write_entry_size=25,
        phase_measurement_data_size=16,
        config_entry_2_size=22,
        number_of_group_ids=10,
        number_of_harmonics=10,
        mbus_multicast_message_length=65,
        et22_alarm_size=120,
        mep_data_sources=6,
        et48_entry_count=10,
        max_critical_event_bitmaps=10,
        et57_entry_count=16,
        time_based_relay_switches=80,
        mep_data_alert_sources=10,
        ram_only_transaction_request_length=261,
        ram_only_transaction_response_length=769,
        mep_channel_count=2 if gen4 else None,
        error_caution_screen_count=3 if gen4 else None,
    )


def _load_profile() -> ActualLoadProfile:
    return ActualLoadProfile(
        memory_length=104832,
        set1_inhibit_overflow=False,
        set2_inhibit_overflow=False,
        set3_inhibit_overflow=False,
        set4_inhibit_overflow=False,
        end_reading_supported=False,
        end_pulse_supported=False,
        set1_scalar_divisor=False,
        set2_scalar_divisor=False,
        set3_scalar_divisor=False,
        set4_scalar_divisor=False,
        extended_interval_status=True,
        simple_interval_status=True,
        uint8_supported=False,
        uint16_supported=False,
        uint32_supported=False,
        int8_supported=False,
        int16_supported=False,
        int32_supported=True,
        ni_fmat1_supported=False,
        ni_fmat2_supported=False,
        data_sets=(
            DataSetDimension(
                number_of_blocks=100,
                intervals_per_block=96,
                number_of_channels=4,
                interval_time_min=15,
            ),
        ),
    )


_HISTORY = ActualLog(
    log_flags=0,
    number_of_std_events=0,
    number_of_mfg_events=0,
    history_argument_length=2,
    event_argument_length=0,
    number_of_history_entries=100,
    number_of_event_entries=0,
)


def _profile(
    name: str, firmware: str, phases: int, *, gen4: bool, summations: int, demand: bool, pv: int
) -> MeterProfile:
    register = _register(summations=summations, demand=demand, present_values=pv)
    selection = PresentRegisterSelection(
        present_demand_sources=_DEMAND_SOURCES[: register.number_of_present_demands],
        present_value_sources=GUIDE_PRESENT_VALUE_SOURCES[:pv],
    )
    dims = Dimensions(
        register=register,
        mfg=_mfg(gen4=gen4),
        present_selection=selection,
        load_profile=_load_profile(),
        history=_HISTORY,
    )
    return MeterProfile(name=name, firmware=firmware, phases=phases, dims=dims)


def gen4_3phase() -> MeterProfile:
    """A Gen 4 (firmware 4.30) three-phase meter: 19 summations, 84 present values."""
    return _profile("gen4-3phase", "4.30", 3, gen4=True, summations=19, demand=True, pv=84)


def gen3_3phase() -> MeterProfile:
    """A Gen 3 (firmware 3.70) three-phase meter: 15 summations, 55 present values."""
    return _profile("gen3-3phase", "3.70", 3, gen4=False, summations=15, demand=True, pv=55)


def gen3_1phase() -> MeterProfile:
    """A Gen 3 (firmware 3.70) single-phase meter without demand: 11 summations."""
    return _profile("gen3-1phase", "3.70", 1, gen4=False, summations=11, demand=False, pv=55)


#: Profile name -> constructor (read-only).
PROFILES: Mapping[str, Callable[[], MeterProfile]] = MappingProxyType(
    {p().name: p for p in (gen4_3phase, gen3_3phase, gen3_1phase)}
)
