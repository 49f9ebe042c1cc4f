"""The meter's (mostly) fixed tables: BT00, BT01, BT03, BT22, ET03, ET04, ET55.

Values are the MEP guide's documented defaults where it gives them (BT00's "Value" column,
ET04's rated voltage / frequency); everything else is a plausible choice for a Danish
direct-connected meter.
"""

from __future__ import annotations

import random

from mepgate.simulator.model.profiles import SimProfile
from mepgate.tables.dimensions import DataSelection, Dimensions, MeterConfiguration
from mepgate.tables.identity import (
    GeneralConfiguration,
    ManufacturerInformation,
    SystemInformation,
    UtilityInformation,
)
from mepgate.tables.registers import SUMMATION_FIELDS
from mepgate.tables.sources import SOURCE_IDS
from mepgate.tables.status import EndDeviceStatus
from mepgate.tables.timestamps import LTimeDate

MANUFACTURER = "ELON"  # BT00/BT01 "Manufacturer": "NES or ELON" in the guide
_NI_FORMAT_INT32 = 8  # BT00 "Non-integer Format": 4-byte signed integer
#: BT22 source ids of summations whose name the source list spells differently or lacks
#: (outage duration is source 4 "power off"; apparent energies have no source id: 0xFF).
_SUMMATION_SOURCE_FALLBACK = {"power_outage_duration_s": 4}
_NO_SOURCE = 0xFF


def bt00(profile: SimProfile) -> GeneralConfiguration:
    """BT00 with the guide's values (MEP guide, BT00 "Value" column)."""
    gen4 = profile.meter.dims.generation == 4
    return GeneralConfiguration(
        data_order_msb_first=False,
        char_format=1,
        time_format=2,
        data_access_method=1,
        id_format_bcd=True,
        integer_format=0,
        ni_format_1=_NI_FORMAT_INT32,
        ni_format_2=_NI_FORMAT_INT32,
        manufacturer=MANUFACTURER,
        nameplate_type=2,
        default_set_used=0,
        max_procedure_parameter_length=255,
        max_response_data_length=12,
        standard_version=1,
        standard_revision=0,
        dim_basic_tables_used=10,
        dim_extended_tables_used=20 if gen4 else 13,
        dim_basic_procedures_used=2,
        dim_extended_procedures_used=12,
        manufacturer_status_length=profile.meter.dims.mfg_status_length,
        number_of_pending_tables=4 if gen4 else 2,
    )


def bt01(profile: SimProfile) -> ManufacturerInformation:
    word = profile.firmware_word
    return ManufacturerInformation(
        manufacturer=MANUFACTURER,
        model=profile.model,
        firmware_version=word >> 8,
        firmware_revision=word & 0xFF,
    )


def bt03(dims: Dimensions) -> EndDeviceStatus:
    """A healthy meter in metering mode, no alarms."""
    return EndDeviceStatus(
        metering_mode=True,
        test_mode=False,
        meter_shop_mode=False,
        unprogrammed=False,
        configuration_error=False,
        system_reset=False,
        ram_failure=False,
        rom_failure=False,
        nonvolatile_memory_failure=False,
        clock_error=False,
        measurement_error=False,
        low_battery=False,
        low_loss_potential=False,
        demand_overload=False,
        power_failure=False,
        cover_removed=False,
        reverse_energy=False,
        data_backup_incomplete=False,
        disconnect_switch_error=False,
        lp_set2_unread_entries=False,
        lp_set3_unread_entries=False,
        lp_set4_unread_entries=False,
        neutral_current_deviation=False,
        manufacturer_status=(False,) * (8 * dims.mfg_status_length),
    )


def bt22(dims: Dimensions) -> DataSelection:
    """Which source each BT23 summation and demand holds (summations in the guide's order)."""
    reg = dims.register
    summation_sources = tuple(
        SOURCE_IDS.get(name, _SUMMATION_SOURCE_FALLBACK.get(name, _NO_SOURCE))
        for name in SUMMATION_FIELDS[: reg.number_of_summations]
    )
    selection = dims.present_selection
    demand_sources = selection.present_demand_sources if selection is not None else ()
    demand_sources = (demand_sources + (_NO_SOURCE,) * reg.number_of_demands)[
        : reg.number_of_demands
    ]
    return DataSelection(
        summation_sources=summation_sources,
        demand_sources=demand_sources,
        demand_is_maximum=(True,) * reg.number_of_demands,
        coincident_sources=(0,) * reg.number_of_coincident_values,
        coincident_demand_index=(0,) * reg.number_of_coincident_values,
    )


def et03(seed: int) -> UtilityInformation:
    rng = random.Random(f"{seed}:serial")
    return UtilityInformation(
        utility_serial_number=f"57{rng.randrange(10**12):012d}",
        image_crc=rng.randrange(1 << 16),
    )


def et04(profile: SimProfile, seed: int, *, idt_version: int) -> SystemInformation:
    rng = random.Random(f"{seed}:system")
    gen4 = profile.meter.dims.generation == 4
    single = profile.meter.phases == 1
    return SystemInformation(
        plc_sequence_number=rng.randrange(1 << 20),
        transceiver_id=rng.randbytes(6),
        subnet_id=rng.randrange(1, 255),
        node_id=rng.randrange(1, 127),
        explicit_message_received=False,
        force_neuron_config=False,
        request_neuron_state=False,
        disable_plc_encryption=False,
        disable_neuron_eeprom_lock=False,
        neuron_phase=0,
        rated_frequency_hz=50,
        program_id=profile.program_id,
        self_identification=bytes(30),
        pk_access_disabled=0,
        max_power_outages_recorded=10,
        max_total_energy_registers=profile.meter.dims.register.number_of_summations,
        registration_current_ma=20,
        max_current_a=profile.max_current_a,
        rated_voltage_v=230,
        inactive_voltage_l1=False,
        inactive_voltage_l2=single,
        inactive_voltage_l3=single,
        separate_voltage_current_phases=False,
        inactive_current_l1=False,
        inactive_current_l2=single,
        inactive_current_l3=single,
        dst_off_time_delta_min=0,
        self_read_hour=0,
        self_read_minute=0,
        stop_mode_days=0,
        neuron_state=0,
        phase=1,
        plc_comm_threshold_min=0,
        broadcast_time=LTimeDate(year=2000, month=0, day=0, hour=0, minute=0, second=0),
        broadcast_base=0,
        broadcast_delta=0,
        reverse_energy_current_threshold_ma=0,
        plc_signal=0,
        idt_version=idt_version,
        security_mode=0,
        mep_sequence_numbers=(0, 0) if gen4 else None,
    )


def et55(dims: Dimensions) -> MeterConfiguration:
    gen4 = dims.generation == 4
    return MeterConfiguration(
        consumption_based_tariff_enabled=False,
        step_tariff_enabled=False,
        step_tariff_thresholds=(0,) * (dims.register.number_of_tiers - 1),
        step_tariff_source=0,
        step_tariff_tou_id=0,
        step_tariff_reset_day=0,
        step_tariff_reset_hour=0,
        step_tariff_reset_minute=0,
        step_tariff_reset_second=0,
        mains_cycles_for_rms_voltage=50,
        average_rms_voltage_period_s=600,
        average_rms_voltage_count=1,
        delta_adsup_mv=23_000,
        delta_adinf_mv=23_000,
        delta_prsup_mv=23_000,
        delta_prinf_mv=23_000,
        mvd_time_threshold_lower_cycles=0,
        mvd_time_threshold_upper_cycles=0,
        mvd_sag_low_percent=0,
        mvd_sag_high_percent=0,
        mvd_swell_low_percent=0,
        energy_register_unit=dims.energy_register_unit,
        house_icon_control=0 if gen4 else None,
        mbus_discovery_auto_confirmation=False if gen4 else None,
    )
