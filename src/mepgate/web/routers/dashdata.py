"""``/getDashDataWS``: the Dabbler MEP module's JSON, for scripts and integrations written
against it (FIELD-NOTES: same field names; integers in Wh, W, mHz, mA and mV)."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, HTTPException, status

from mepgate import __version__
from mepgate.service.reading import Reading
from mepgate.service.view import MeterIdentity
from mepgate.web.deps import ReaderDep, ViewDep
from mepgate.web.routers.common import NOT_FOUND, UNAUTHORIZED, default_meter, latest_reading
from mepgate.web.schemas import DashDataOut

router = APIRouter(tags=["compatibility"], responses=UNAUTHORIZED)


def _int(value: float | None, scale: float = 1.0) -> int:
    """The old firmware printed unsigned integers; a missing value was 0."""
    return round(value * scale) if value is not None else 0


def _firmware(identity: MeterIdentity | None) -> str:
    if identity is None:
        return ""
    match = re.search(r"(\d+)\.(\d+)", identity.firmware)
    return f"{int(match[1])}.{int(match[2])}" if match else identity.firmware


def dash_data(reading: Reading, identity: MeterIdentity | None, zone: dt.tzinfo) -> DashDataOut:
    local = reading.at.astimezone(zone)
    r = reading
    return DashDataOut.model_validate(
        {
            "ESP_SW_Version": __version__,
            "Meter_Manufacturer": identity.manufacturer if identity else "",
            "Meter_Model": identity.model if identity else "",
            "Meter_SW_Version": _firmware(identity),
            "Utility_SN": (identity.utility_serial_number or identity.serial_number)
            if identity
            else "",
            "CurrentDateTimeString": local.strftime("%Y-%m-%d %H:%M:%S"),
            "CurrentDateTime": local.replace(microsecond=0).isoformat(),
            "Fwd_Act_Wh": _int(r.forward_active_energy_wh),
            "Rev_Act_Wh": _int(r.reverse_active_energy_wh),
            "Fwd_W": _int(r.active_power_import_w),
            "Rev_W": _int(r.active_power_export_w),
            "Freq_mHz": _int(r.frequency_hz, 1000),
            "L1_RMS_A": _int(r.current_l1_a, 1000),
            "L2_RMS_A": _int(r.current_l2_a, 1000),
            "L3_RMS_A": _int(r.current_l3_a, 1000),
            "L1_RMS_V": _int(r.voltage_l1_v, 1000),
            "L2_RMS_V": _int(r.voltage_l2_v, 1000),
            "L3_RMS_V": _int(r.voltage_l3_v, 1000),
            "L1_Fwd_W": _int(r.active_power_import_l1_w),
            "L2_Fwd_W": _int(r.active_power_import_l2_w),
            "L3_Fwd_W": _int(r.active_power_import_l3_w),
            "L1_Rev_W": _int(r.active_power_export_l1_w),
            "L2_Rev_W": _int(r.active_power_export_l2_w),
            "L3_Rev_W": _int(r.active_power_export_l3_w),
            "Fwd_Avg_W": _int(r.active_power_import_w),
            "Rev_Avg_W": _int(r.active_power_export_w),
            "L1_Fwd_Avg_W": _int(r.active_power_import_l1_w),
            "L2_Fwd_Avg_W": _int(r.active_power_import_l2_w),
            "L3_Fwd_Avg_W": _int(r.active_power_import_l3_w),
            "L1_Rev_Avg_W": _int(r.active_power_export_l1_w),
            "L2_Rev_Avg_W": _int(r.active_power_export_l2_w),
            "L3_Rev_Avg_W": _int(r.active_power_export_l3_w),
        }
    )


@router.get("/getDashDataWS", responses=NOT_FOUND)
async def get_dash_data(view: ViewDep, _: ReaderDep, meter: str | None = None) -> DashDataOut:
    """The newest reading of ``meter`` (default: the first) in the old firmware's format."""
    name = default_meter(view, meter)
    reading = await latest_reading(view, name)
    if reading is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"meter {name!r} has no reading yet")
    identity = next((s.identity for s in view.meters() if s.name == name), None)
    try:
        zone: dt.tzinfo = ZoneInfo(view.settings.storage.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = dt.UTC
    return dash_data(reading, identity, zone)
