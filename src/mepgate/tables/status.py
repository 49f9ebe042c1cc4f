"""BT03 "End Device Mode Status" -- the meter's alarms.

The MEP guide refers to BT03 but does not lay it out; the layout here is the one the OSGP
Optical Port Programmer's Guide gives ("BT03 (0x0003): End Device Mode Status"), which is the
ANSI C12.19 status table: mode byte, 16 standard status bits, one extended byte, then
BT00.17 ("Manufacturer Status Length") bytes of manufacturer alarm bits.
"""

from __future__ import annotations

from dataclasses import dataclass

from mepgate.tables._layout import BoolSet, Field, Layout, flag, packed
from mepgate.tables.dimensions import Dimensions
from mepgate.tables.ids import TableId
from mepgate.tables.table import DimensionedTable

#: Manufacturer alarm bit -> name (bit n is bit n%8 of manufacturer status byte n//8).
MFG_ALARMS: tuple[str, ...] = (
    "load_profile_overflow",
    "self_read_occurred",
    "load_disconnect_changed_state",
    "control_relay_1_open",
    "phase_loss",
    "phase_inversion",
    "plc_config_failure",
    "general_error",
    "invalid_password",
    "remote_communications_inactive",
    "current_on_missing_phase",
    "pulse_input_1_tamper",
    "pulse_input_2_tamper",
    "software_crc_error",
    "code_bank_changed",
    "load_profile_backfill_failed",
    "mep_installed_or_removed",
    "mbus_alarm",
    "mbus_auto_discovery_complete",
    "phase_rotation_changed",
    "prepay_credit_exhausted",
    "prepay_warning_acknowledged",
    "event_log_overflow_pending",
    "mfg_log_entry_available",
    "dimension_change",
    "magnetic_tamper_detected",
    "access_lockout_override",
    "power_quality_event_detected",
    "event_log_unread_entries",
    "thd_state_changed",
    "load_profile_1_unread_entries",
    "load_side_voltage_detected",
    "unbalanced_voltage_detected",
    "password_table_written",
    "password_expiration_pending",
    "p2p_security",
    "firmware_separation_violation",
    "modem_error",
    "g3_alarm",
    "g3_event_logged",
    "control_relay_2_open",
)


@dataclass(frozen=True, kw_only=True, slots=True)
class EndDeviceStatus:
    """BT03 "End Device Mode Status"."""

    metering_mode: bool
    test_mode: bool
    meter_shop_mode: bool
    unprogrammed: bool
    configuration_error: bool
    system_reset: bool
    ram_failure: bool
    rom_failure: bool
    nonvolatile_memory_failure: bool
    clock_error: bool
    measurement_error: bool
    low_battery: bool
    low_loss_potential: bool
    demand_overload: bool
    power_failure: bool
    cover_removed: bool
    reverse_energy: bool
    data_backup_incomplete: bool
    disconnect_switch_error: bool
    lp_set2_unread_entries: bool
    lp_set3_unread_entries: bool
    lp_set4_unread_entries: bool
    neutral_current_deviation: bool
    manufacturer_status: tuple[bool, ...] | None = None

    def active_mfg_alarms(self) -> tuple[str, ...]:
        """Names of the manufacturer alarm bits that are set."""
        bits = self.manufacturer_status or ()
        return tuple(
            MFG_ALARMS[i] if i < len(MFG_ALARMS) else f"mfg_alarm_{i}"
            for i, on in enumerate(bits)
            if on
        )


_STD1 = (
    "unprogrammed",
    "configuration_error",
    "system_reset",
    "ram_failure",
    "rom_failure",
    "nonvolatile_memory_failure",
    "clock_error",
    "measurement_error",
    "low_battery",
    "low_loss_potential",
    "demand_overload",
    "power_failure",
    "cover_removed",
    "reverse_energy",
    "data_backup_incomplete",
    "disconnect_switch_error",
)


def bt03_layout(dims: Dimensions) -> Layout[EndDeviceStatus]:
    """Optical Port guide, BT03: offsets 0 (mode), 1..2 (standard), 3 (extended), 4.. (mfg)."""
    return Layout(
        "BT03",
        EndDeviceStatus,
        [
            packed(1, flag("metering_mode", 0), flag("test_mode", 1), flag("meter_shop_mode", 2)),
            packed(2, *(flag(name, bit) for bit, name in enumerate(_STD1))),
            packed(
                1,
                flag("lp_set2_unread_entries", 0),
                flag("lp_set3_unread_entries", 1),
                flag("lp_set4_unread_entries", 2),
                flag("neutral_current_deviation", 3),
            ),
            Field("manufacturer_status", BoolSet(8 * dims.mfg_status_length)),
        ],
        required=3,
        hint="re-read BT00 (its manufacturer status length sizes BT03)",
    )


BT03 = DimensionedTable(TableId.BT03, EndDeviceStatus, bt03_layout)
